"""``srsdk.build_engine(config)``: the shipped network as a deployable file plus its manifest."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srsdk import _features
from srsdk.engine import manifest, quality
from srsdk.engine.config import Backend, BuildConfig, Precision
from srsdk.engine.load import open_engine
from srsdk.errors import EngineBuildError
from srsdk.inference import upscale_array
from srsdk.io.atomic import atomic_output, write_text
from srsdk.model import DeployNet, receptive_radius
from srsdk.pretrained import load_pretrained, load_weights, sha256
from srsdk.pretrained import manifest as weights_manifest

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class BuiltEngine:
    """Where the engine is, what its manifest says, and whether an identical one was reused."""

    path: Path
    manifest: dict[str, Any]
    reused: bool


def resolve_backend(backend: Backend) -> Backend:
    """``auto`` -> TensorRT where Torch-TensorRT and a CUDA GPU are present, else TorchScript."""
    if backend != Backend.AUTO:
        return backend
    return Backend.TENSORRT if _features.has_torch_tensorrt() and torch.cuda.is_available() else Backend.TORCHSCRIPT


def cpu_backend() -> Backend:
    """The fastest CPU backend that is installed: ONNX Runtime ran the x2 network 2x faster
    than torch eager and TorchScript on 960x540 frames here
    (``benchmarks/results/backends-cpu.json``), TorchScript is the fallback."""
    return Backend.ONNX if _features.has_onnxruntime() else Backend.TORCHSCRIPT


def _check_possible(config: BuildConfig, backend: Backend) -> None:
    flag = f"--{config.precision.value}"
    if backend == Backend.TENSORRT and not _features.has_torch_tensorrt():
        raise EngineBuildError("--backend tensorrt needs Torch-TensorRT and TensorRT: pip install 'srsdk[trt]'")
    if backend == Backend.ONNX and not _features.has_onnxruntime():
        raise EngineBuildError("--backend onnx needs onnx, onnxscript and onnxruntime: pip install 'srsdk[onnx]'")
    if config.precision == Precision.INT8 and backend != Backend.TENSORRT:
        raise EngineBuildError(f"--int8 needs --backend tensorrt (ModelOpt quantisation); got --backend {backend.value}")
    if config.precision == Precision.FP16 and backend == Backend.ONNX:
        raise EngineBuildError("--fp16 is not offered for --backend onnx (ONNX Runtime on CPU runs FP32); use --fp32")
    if config.precision != Precision.FP32 and not torch.cuda.is_available():
        raise EngineBuildError(f"{flag} needs a CUDA GPU and torch sees none; build --fp32 here or {flag} on a GPU machine")
    if backend == Backend.TENSORRT and not torch.cuda.is_available():
        raise EngineBuildError("--backend tensorrt needs a CUDA GPU and torch sees none")


def _weights(config: BuildConfig) -> tuple[DeployNet, str, str]:
    """The FP32 deploy graph, its weights' sha256 and a label for the manifest."""
    if config.weights is None:
        entry = weights_manifest()["weights"][str(config.scale)]
        return load_pretrained(config.scale).deploy(), entry["sha256"], f"srsdk/weights/{entry['file']}"
    return load_weights(config.weights, scale=config.scale).deploy(), sha256(config.weights), str(config.weights)


def _export_torchscript(net: DeployNet, path: Path) -> None:
    frozen = torch.jit.freeze(torch.jit.script(net.eval()))
    torch.jit.save(frozen, str(path))


class _MaxPReLU(nn.Module):
    """PReLU as ONNX Runtime runs it fast: ``s * max(s * x, s * x * a)`` with ``s = sign(1 - a)``
    per channel (``s = 1`` everywhere when no slope exceeds 1, and the sign flips vanish).

    For ``a <= 1`` that is ``max(x, a x)``, for ``a > 1`` it is ``min(x, a x)``; both equal
    ``x if x >= 0 else a x`` bit for bit (sign flips are exact). ORT's PRelu kernel is the
    slower of the two here (benchmarks/onnx_options.py, results/onnx-options-cpu.json).
    """

    slope: torch.Tensor
    sign: torch.Tensor

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        slope = prelu.weight.detach().reshape(1, -1, 1, 1)
        self.register_buffer("slope", slope.clone())
        self.flip = bool((slope > 1).any())
        self.register_buffer("sign", torch.where(slope > 1, -1.0, 1.0).to(slope.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.flip:
            return torch.maximum(x, x * self.slope)
        u = x * self.sign
        return torch.maximum(u, u * self.slope) * self.sign


def _for_onnx_runtime(net: nn.Module) -> nn.Module:
    """``net`` with every PReLU replaced by :class:`_MaxPReLU` (in place)."""
    for module in list(net.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.PReLU):
                setattr(module, child_name, _MaxPReLU(child))
    return net


def _export_onnx(net: DeployNet, path: Path) -> None:
    import onnxruntime as ort

    fast = _for_onnx_runtime(net)
    example = torch.rand(1, 3, 24, 32)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # the exporter logs about optional packages it skips
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # and warns about its own internals
            torch.onnx.export(
                fast.eval(),
                (example,),
                str(path),
                input_names=["lr"],
                output_names=["hr"],
                dynamic_shapes={"x": {0: "n", 2: "h", 3: "w"}},
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probe = torch.rand(1, 3, 37, 23, generator=torch.Generator().manual_seed(0))
    (got,) = session.run(None, {"lr": probe.numpy()})
    with torch.no_grad():
        error = (torch.from_numpy(got) - fast(probe)).abs().max().item()
    if error > 1e-4:
        raise EngineBuildError(f"ONNX Runtime disagrees with PyTorch by {error:.2e} (> 1e-4) on a 37x23 input")


def check_precision(engine_out: torch.Tensor, fp32_out: torch.Tensor, precision: Precision) -> float:
    """The largest difference from the FP32 network. A reduced-precision engine that matches
    FP32 to within 2e-5 was silently built in FP32 (the classic TensorRT failure), which is
    refused; whether any engine is good enough is the quality gate's call."""
    difference = (engine_out.float().cpu() - fp32_out.float().cpu()).abs().max().item()
    if precision != Precision.FP32 and difference <= 2e-5:
        raise EngineBuildError(
            f"the {precision.value} engine matches FP32 to {difference:.1e}: it was silently built in FP32"
        )
    return difference


def _reusable(path: Path, key: str) -> dict[str, Any] | None:
    try:
        data = manifest.read(path)
        manifest.check(data, path)
    except Exception:  # noqa: BLE001 - anything wrong means: build it again
        return None
    return data if data.get("key") == key else None


def build_engine(config: BuildConfig, *, log: Log | None = None) -> BuiltEngine:
    """Build (or reuse) the engine ``config`` describes; see ``srsdk-build-engine --help``."""
    say = log or (lambda _: None)
    backend = resolve_backend(config.backend)
    if config.backend == Backend.AUTO:
        say(f"backend auto: chose {backend.value}")
    _check_possible(config, backend)
    device = "cuda" if backend == Backend.TENSORRT or config.precision != Precision.FP32 else "cpu"
    net, weights_sha, weights_label = _weights(config)
    net = net.to(device)
    key = manifest.engine_key(config, backend, weights_sha, device)
    path = config.output or manifest.default_path(config, backend, key)
    if (cached := _reusable(path, key)) is not None:
        say(f"reusing {path}: an identical engine (key {key}) is already built")
        return BuiltEngine(path, cached, reused=True)
    path.parent.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    with atomic_output(path) as tmp:
        say(f"building {backend.value} {config.precision.value} x{config.scale} ...")
        exported = copy.deepcopy(net)  # builds may cast or quantise it; `net` stays the FP32 reference
        if backend == Backend.TORCHSCRIPT:
            _export_torchscript(exported.half() if config.precision == Precision.FP16 else exported, tmp)
        elif backend == Backend.ONNX:
            _export_onnx(exported, tmp)
        else:
            from srsdk.engine import tensorrt

            tensorrt.build(exported, config, tmp, device)
        seconds = time.perf_counter() - started
        data: dict[str, Any] = {
            "format": manifest.FORMAT,
            "key": key,
            "scale": config.scale,
            "backend": backend.value,
            "precision": config.precision.value,
            "profile": config.profile.to_json(),
            "device": device,
            "gpu": manifest.gpu(device),
            "software": manifest.software(backend),
            "weights": weights_label,
            "weights_sha256": weights_sha,
            "receptive_radius": receptive_radius(net),
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(seconds, 2),
        }
        engine = open_engine(tmp, data, device)
        reference = net.eval()
        probe = torch.rand(1, 3, *config.profile.min, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            data["max_abs_difference_vs_fp32"] = check_precision(engine(probe), reference(probe.to(device)), config.precision)
        folder = quality.quality_images(config.quality_set)
        say(f"quality gate: PSNR-Y on {folder} against the FP32 weights ...")
        gate = quality.measure(
            engine.upscale, lambda lr: upscale_array(reference, lr), folder,
            scale=config.scale, precision=config.precision,
        )  # fmt: skip
        gate["forced"] = config.force and not gate["passed"]
        data["quality"] = gate
        if not gate["passed"] and not config.force:
            raise EngineBuildError(
                f"quality gate: the engine loses {gate['loss_db']:.3f} dB PSNR-Y on {folder} "
                f"(limit {gate['limit_db']} dB for {config.precision.value}); not kept (--force keeps it)"
            )
        data["engine_sha256"] = sha256(tmp)
    write_text(manifest.manifest_path(path), _json(data))
    return BuiltEngine(path, data, reused=False)


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, indent=2) + "\n"
