"""Multi-task training of :class:`srsdk.model.SPNet` on photos with boundary annotations.

Loss (``|.|`` is the mean absolute error, or with ``pixel_loss="l2"`` the root of the
mean squared error; with ``boundary_emphasis`` A, each pixel's error counts ``1 + A *
boundary_target`` times in those means; with ``chroma_weight`` W, each pixel's error is
measured in BT.601 luma and colour differences, the latter weighted W)::

    image_weight    * |image - hr|
  + boundary_weight * BCE(boundary_logits, boundary_target)
  + residual_weight * |residual - (hr - image.detach())|
  + final_weight    * |image + residual - hr|

``single_task`` trains the same network with one SR loss on its output, ``|image +
residual - hr|``, and nothing else: the ablation for the multi-task claim. Training is seeded and reproducible: the model
initialisation and every batch come from ``seed``, and a checkpoint holds the
sampler's state, so a resumed run continues the same sequence.

With ``ema`` set, an exponential moving average of the weights
(:class:`torch.optim.swa_utils.AveragedModel`) is updated after every step, and it is
what the saved weights hold; the checkpoint keeps both, so resuming is still exact.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from srsdk import _interrupts as interrupts
from srsdk.data import Batch, TrainingSet
from srsdk.errors import InputError, SrsdkError
from srsdk.io.atomic import atomic_output, make_folder
from srsdk.model import Architecture, SPNet
from srsdk.pretrained import read_metadata, save_weights, sha256
from srsdk.train_config import PixelLoss, TrainConfig

__all__ = ["TrainConfig", "TrainResult", "learning_rate", "losses", "train", "write_summary"]


def _rmse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(prediction, target).sqrt()


_PIXEL_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"l1": F.l1_loss, "l2": _rmse}

_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
"""RGB -> BT.601 luma (Y, the direction of the luma :func:`srsdk.metrics.luma` scores, with
weights summing to 1) and colour differences (Cb, Cr), without offsets: a grey error (equal
in R, G and B) is the same error in Y and none in Cb or Cr."""


def _distance(
    pixel_loss: PixelLoss, emphasis: torch.Tensor | None, chroma_weight: float | None
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The distance of the image, residual and final terms.

    Plain, it is ``pixel_loss`` over every RGB value. With ``emphasis`` ``(N,1,H,W)``, the
    mean over pixels is weighted by it. With ``chroma_weight`` W, each pixel's error is its
    luma error plus W times its Cb and Cr errors (absolute or squared), so that a grey
    error measures what it does in RGB.
    """
    if emphasis is None and chroma_weight is None:
        return _PIXEL_LOSSES[pixel_loss]

    def distance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        error = prediction - target
        if chroma_weight is not None:
            error = torch.einsum("ck,nkhw->nchw", _YCBCR.to(error), error)
        error = error.abs() if pixel_loss == "l1" else error.square()
        if chroma_weight is None:
            per_pixel = error.mean(dim=1, keepdim=True)
        else:
            channel_weights = error.new_tensor([1.0, chroma_weight, chroma_weight]).view(1, 3, 1, 1)
            per_pixel = (error * channel_weights).sum(dim=1, keepdim=True)
        mean = per_pixel.mean() if emphasis is None else (per_pixel * emphasis).sum() / emphasis.sum()
        return mean if pixel_loss == "l1" else mean.sqrt()

    return distance


def losses(
    net: SPNet,
    batch: Batch,
    weights: dict[str, float],
    pixel_loss: PixelLoss = "l1",
    boundary_emphasis: float = 0.0,
    chroma_weight: float | None = None,
) -> dict[str, torch.Tensor]:
    """Each loss term (unweighted) and their weighted ``total``. With ``boundary_emphasis``
    A, the image, residual and final terms weight each pixel by ``1 + A * boundary_target``;
    with ``chroma_weight`` W, they measure each pixel's error as its luma error plus W times
    its colour-difference errors (:data:`_YCBCR`)."""
    out = net(batch.lr)
    emphasis = 1.0 + boundary_emphasis * batch.boundary if boundary_emphasis else None
    distance = _distance(pixel_loss, emphasis, chroma_weight)
    terms: dict[str, torch.Tensor] = {}
    if weights["image"]:
        terms["image"] = distance(out.image, batch.hr)
    if weights["boundary"]:
        terms["boundary"] = F.binary_cross_entropy_with_logits(out.boundary, batch.boundary)
    if weights["residual"]:
        terms["residual"] = distance(out.residual, batch.hr - out.image.detach())
    if weights["final"]:
        terms["final"] = distance(out.image + out.residual, batch.hr)
    terms["total"] = sum(weights[k] * v for k, v in terms.items())  # type: ignore[assignment]
    return terms


def learning_rate(config: TrainConfig, step: int) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@dataclasses.dataclass
class TrainResult:
    weights: Path
    checkpoint: Path
    steps: int
    seconds: float
    final_loss: float
    loss_history: list[tuple[int, float]]


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    progress: bool = True,
    log_every: int = 100,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train (or resume) into ``out_dir``: ``checkpoint.pt`` and ``srsdk_x{scale}.safetensors``.

    A checkpoint already in ``out_dir`` from the same config is resumed. Ctrl-C saves a
    checkpoint and the weights reached so far before re-raising ``KeyboardInterrupt``.
    On CUDA, cuDNN is held to deterministic convolution algorithms for the run, so a seed
    gives the same weights there too (on the same GPU and software).
    """
    cudnn = torch.backends.cudnn
    saved = cudnn.benchmark, cudnn.deterministic  # only these: TF32 and the rest stay the caller's
    cudnn.benchmark, cudnn.deterministic = False, True  # benchmark's timed choice of algorithm varies
    try:
        return _train(config, out_dir, progress=progress, log_every=log_every, on_log=on_log)
    finally:
        cudnn.benchmark, cudnn.deterministic = saved


def _train(
    config: TrainConfig,
    out_dir: Path,
    *,
    progress: bool,
    log_every: int,
    on_log: Callable[[int, dict[str, float]], None] | None,
) -> TrainResult:
    if out_dir.exists() and not out_dir.is_dir():
        make_folder(out_dir)  # the one-line error, before any work
    ckpt_path = out_dir / "checkpoint.pt"
    weights_path = out_dir / f"srsdk_x{config.scale}.safetensors"
    if config.init is not None and Path(config.init).resolve() == weights_path.resolve():
        raise InputError(f"--init {config.init} is the file this run writes; copy it elsewhere, or train into a new folder")
    if weights_path.exists() and not ckpt_path.exists():  # weights no run here made: never overwritten
        raise InputError(f"{weights_path} exists, with no checkpoint of a run that made it; use a new output folder")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    arch = Architecture(scale=config.scale, trunk_layers=config.trunk_layers, residual_context=config.residual_context)
    net = SPNet(arch=arch)
    state = _read_checkpoint(ckpt_path) if ckpt_path.exists() else None
    # A resumed run starts from its checkpoint, so the warm start's file may be gone by now:
    # the one the checkpoint records by this path and sha256 (not a mistyped path).
    init_gone = (
        config.init is not None
        and state is not None
        and not Path(config.init).exists()
        and state["config"].get("init") == str(config.init)
        and state.get("init_sha256") is not None
    )
    if config.init is not None and not init_gone:
        _load_matching(net, config.init)
    net = net.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    average = _averaged(net, config.ema)
    sampler = torch.Generator().manual_seed(config.seed)
    data = TrainingSet(config.images, config.boundaries, scale=config.scale, downscales=config.downscales)
    data.check_patch(config.patch)
    make_folder(out_dir)  # after the inputs are known good: a refused run leaves no empty folder

    # Which file the run started from, so srsdk.pretrained.lineage can tell if it was replaced.
    origin: dict[str, str | None] = {}
    if config.init is not None:  # a gone file is known by the checkpoint's record of it
        origin["init_sha256"] = state.get("init_sha256") if state is not None and init_gone else sha256(config.init)
    identity = {"data_sha256": data.sha256, "init_sha256": origin.get("init_sha256")}
    step, seconds, history = 0, 0.0, []
    running: dict[str, torch.Tensor] = {}
    """Each loss term summed over the steps since the last log line (on the device)."""
    since_log = 0
    sessions: list[dict[str, Any]] = []
    """The runs before this one that trained the checkpoint, so the weights say where every
    step ran (a run started on a GPU and resumed on a CPU records both)."""
    if state is not None:
        differ = _differences(state, config, identity)
        if differ:
            raise InputError(
                f"{ckpt_path} was made with another config ({', '.join(differ)} differ); use a new output folder"
            )
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sampler.set_state(state["sampler"])
        if average is not None:
            average.load_state_dict(state["average"])
        step, seconds = state["step"], state["seconds"]
        history = [tuple(h) for h in state["history"]]
        # The log window the interruption cut, so the resumed run logs what the uninterrupted one would.
        running = {k: torch.tensor(v, device=device) for k, v in state.get("running", {}).items()}
        since_log = state.get("since_log", 0)
        # Checkpoints from before sessions were recorded say only how far they got.
        sessions = state.get("sessions") or [{"device": "not recorded", "steps": [0, step], "seconds": round(seconds, 1)}]
        if step < config.steps:
            logging.getLogger("srsdk").info(
                "resuming %s at step %d of %d (%.0f s of training so far)", out_dir, step, config.steps, seconds
            )
    this_session: dict[str, Any] = {"device": _device_name(device), "threads": torch.get_num_threads()}
    step_before, seconds_before = step, seconds
    if step >= config.steps and _steps_done(weights_path) == step:
        # Rerunning a finished run changes nothing: rewriting its weights would change their
        # sha256, and so orphan every eval and every run warm-started from them.
        return _result(weights_path, ckpt_path, step, seconds, history)

    weights = config.loss_weights()
    net.train()

    def save() -> Path:
        this_session.update(steps=[step_before, step], seconds=round(seconds - seconds_before, 1))
        # Through memory: torch's zip writer says a full disk as an "enforce fail" RuntimeError.
        buffer = io.BytesIO()
        torch.save(
            {
                "config": config.to_json(),
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "sampler": sampler.get_state(),
                "step": step,
                "seconds": seconds,
                "history": history,
                "running": {k: float(v) for k, v in running.items()},
                "since_log": since_log,
                "sessions": [*sessions, this_session],
                **identity,
                **({"average": average.state_dict()} if average is not None else {}),
            },
            buffer,
        )
        with atomic_output(ckpt_path) as tmp:
            tmp.write_bytes(buffer.getvalue())
        # No wall-clock times in the weights (the checkpoint and summary.json keep them): the
        # same command on the same machine then writes the same file, sha256 included.
        untimed = [{k: v for k, v in session.items() if k != "seconds"} for session in [*sessions, this_session]]
        meta = {"training": {**config.to_json(), **origin, "steps_done": step, "sessions": untimed}}
        saved: SPNet = net if average is None else average.module  # type: ignore[assignment]
        return save_weights(saved, weights_path, metadata=meta)

    bar = _progress(config.steps, step, enabled=progress)
    started = time.perf_counter() - seconds
    between_steps = True
    """False while a step runs: its optimiser and sampler may be half-advanced, so a checkpoint
    saved then would not resume as the uninterrupted run."""
    try:
        with interrupts.StopAtStepEnd() as stop:
            while step < config.steps:
                between_steps = False
                for group in opt.param_groups:
                    group["lr"] = learning_rate(config, step)
                batch = data.sample(config.batch, config.patch, sampler)
                batch = Batch(
                    *(t.to(device).contiguous(memory_format=torch.channels_last) for t in dataclasses.astuple(batch))
                )
                terms = losses(net, batch, weights, config.pixel_loss, config.boundary_emphasis, config.chroma_weight)
                opt.zero_grad(set_to_none=True)
                terms["total"].backward()
                opt.step()
                if average is not None:
                    average.update_parameters(net)
                step += 1
                between_steps = True
                since_log += 1
                for k, v in terms.items():  # summed on the device: no host sync every step
                    running[k] = running[k] + v.detach() if k in running else v.detach()
                if step % log_every == 0 or step == config.steps:
                    avg = {k: float(v) / since_log for k, v in running.items()}
                    running.clear()
                    since_log = 0
                    history.append((step, avg["total"]))
                    bar.set_postfix(loss=f"{avg['total']:.4f}")
                    if on_log is not None:
                        on_log(step, avg)
                if step % 2000 == 0:
                    seconds = time.perf_counter() - started
                    save()
                bar.update(1)
                if stop.requested is not None and step < config.steps:  # on the last step: finish the run
                    stop.stop()
    except KeyboardInterrupt:
        bar.close()
        if between_steps:  # else the last checkpoint saved stands
            seconds = time.perf_counter() - started
            with interrupts.held():  # a second Ctrl-C now would lose this checkpoint: it waits for the save
                save()
        raise
    bar.close()
    seconds = time.perf_counter() - started
    with interrupts.held():
        weights_file = save()
    return _result(weights_file, ckpt_path, step, seconds, history)


def _result(weights: Path, checkpoint: Path, steps: int, seconds: float, history: list[tuple[int, float]]) -> TrainResult:
    final_loss = history[-1][1] if history else float("nan")
    return TrainResult(weights, checkpoint, steps, seconds, final_loss, loss_history=history)


def _steps_done(weights: Path) -> int | None:
    """How many steps the weights file ``weights`` says it holds (None: no readable file)."""
    try:
        return int(json.loads(read_metadata(weights)["training"])["steps_done"])
    except (SrsdkError, KeyError, TypeError, ValueError):
        return None


def _device_name(device: torch.device) -> str:
    """``cpu`` or the GPU's name, for the record of where steps ran."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _averaged(net: SPNet, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """The weight average that ``ema=decay`` asks for, or None when it is off."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _recipe(config: dict[str, object]) -> dict[str, object]:
    """The fields of a config that decide the result (not where or how fast it runs).

    Fields a checkpoint predates take their defaults, which is what that run used.
    """
    full = {**TrainConfig().to_json(), **config}
    return {k: v for k, v in full.items() if k not in ("device", "threads")}


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, or a one-line error for a file that is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _recipe(state["config"])
    except Exception as e:  # torch.load raises many kinds on a foreign file
        raise InputError(f"{path} is not an srsdk checkpoint ({type(e).__name__}); use a new output folder") from e
    return state  # type: ignore[no-any-return]


def _differences(state: dict[str, Any], config: TrainConfig, identity: dict[str, str | None]) -> list[str]:
    """The recipe fields a checkpoint was made with otherwise than ``config``.

    Checkpoints that record their data's and warm start's sha256 are compared on those, not
    on the folders' paths, so a run resumes after its data moved; older ones on the paths.
    """
    saved, now = _recipe(state["config"]), _recipe(config.to_json())
    if "data_sha256" in state:
        for key in ("images", "boundaries", "init"):
            del saved[key], now[key]
        for key, value in identity.items():
            saved[key], now[key] = state[key], value
    return sorted(key for key in saved.keys() | now.keys() if saved.get(key) != now.get(key))


def _load_matching(net: SPNet, path: Path) -> None:
    """Copy every tensor of ``path`` whose name and shape match ``net`` (warm start).

    Trunk layers that ``path`` lacks (a deeper trunk than it was trained with) start as the
    identity, a Dirac convolution and a PReLU of slope 1, so the deeper network computes what
    the file did and training only adds to it (Net2Net's deepening).
    """
    from safetensors.torch import load_file

    from srsdk.pretrained import check_regular, not_finite

    check_regular(path)
    try:
        source = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise InputError(f"cannot read weights {path}: {e}") from e
    if bad := not_finite(source):
        raise InputError(f"--init {path} holds values that are not finite (NaN or infinity) in {bad}")
    own = net.state_dict()
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise InputError(f"no layer of {path} fits this network")
    if skipped := sorted(set(source) - set(matched)):
        logging.getLogger("srsdk").info(
            "--init %s: %d of its %d tensors fit this network and are copied; not used: %s",
            path, len(matched), len(source), ", ".join(skipped),
        )  # fmt: skip
    net.load_state_dict(matched, strict=False)
    body = net.trunk.body
    for i in range(0, len(body), 2):
        if f"trunk.body.{i}.weight" not in matched:
            conv, act = body[i], body[i + 1]
            assert isinstance(conv, torch.nn.Conv2d) and isinstance(act, torch.nn.PReLU)
            with torch.no_grad():
                torch.nn.init.dirac_(conv.weight)
                torch.nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
                torch.nn.init.ones_(act.weight)


def _progress(total: int, initial: int, *, enabled: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)


def write_summary(result: TrainResult, path: Path) -> None:
    path.write_text(json.dumps(dataclasses.asdict(result), default=str, indent=2) + "\n")
