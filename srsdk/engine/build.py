"""``srsdk.build_engine(config)``: the shipped network as a deployable file plus its manifest."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import io
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from srsdk import _features
from srsdk.engine import calibration, manifest, prelu, quality
from srsdk.engine.config import MAX_BATCH, Backend, BuildConfig, Precision, ShapeProfile
from srsdk.engine.load import open_engine
from srsdk.errors import EngineBuildError, InputError, disk_error
from srsdk.inference import upscale_array
from srsdk.io.atomic import atomic_output, check_output, make_folder, write_text
from srsdk.io.image import image_files, images_sha256, read_rgb
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


def resolve_backend(backend: Backend, precision: Precision = Precision.FP32) -> Backend:
    """``auto`` -> TorchScript for BF16 (a CPU precision); else TensorRT where Torch-TensorRT
    and a CUDA GPU are present, else TorchScript."""
    if backend != Backend.AUTO:
        return backend
    if precision == Precision.BF16:
        return Backend.TORCHSCRIPT
    return Backend.TENSORRT if _features.has_torch_tensorrt() and torch.cuda.is_available() else Backend.TORCHSCRIPT


class CpuEngine(NamedTuple):
    """What :func:`fastest_cpu_engine` picks: the fields of a :class:`BuildConfig`."""

    backend: Backend
    precision: Precision
    optimize_for_inference: bool = False


def fastest_cpu_engine(precision: Precision | None = None) -> CpuEngine:
    """The fastest CPU engine this machine can run (of ``precision``, FP32 or BF16, where
    given), by the 960x540 x2 frames of ``benchmarks/backends.py`` on the two kinds of CPU
    measured:

    * bfloat16 units (AMX, AVX-512 BF16): TorchScript BF16, same Set5 quality as FP32 within
      the gate's 0.1 dB (``backends-cpu.json``, an Intel Xeon with AMX);
    * AVX-512 without them: ONNX Runtime FP32, which beat FP32 TorchScript with and without
      ``optimize_for_inference`` on that Xeon too;
    * AVX2 only: AOTInductor FP32 where a C++ compiler can build it, else TorchScript FP32
      with ``optimize_for_inference``; both faster than ONNX Runtime on an AMD EPYC
      (``backends-cpu-amd.json``), AOTInductor the fastest;
    * ONNX Runtime where AVX-512 asks for it but it is not installed: TorchScript FP32, optimised.
    """
    if precision not in (None, Precision.FP32, Precision.BF16):
        raise EngineBuildError(f"CPU engines are fp32 or bf16, not {precision.value}")
    if precision == Precision.BF16 or (precision is None and _features.has_fast_bf16()):
        return CpuEngine(Backend.TORCHSCRIPT, Precision.BF16)
    if _features.has_avx512() and _features.has_onnxruntime():
        return CpuEngine(Backend.ONNX, Precision.FP32)
    if not _features.has_avx512() and _features.has_cxx_compiler():
        return CpuEngine(Backend.AOTI, Precision.FP32)
    return CpuEngine(Backend.TORCHSCRIPT, Precision.FP32, optimize_for_inference=True)


def _check_possible(config: BuildConfig, backend: Backend) -> None:
    flag = f"--{config.precision.value}"
    if config.optimize_for_inference and (backend != Backend.TORCHSCRIPT or config.precision != Precision.FP32):
        raise EngineBuildError(
            "--optimize-for-inference is for --backend torchscript --fp32 (a CPU engine); "
            f"got --backend {backend.value} {flag}"
        )
    if backend == Backend.TENSORRT and not _features.has_torch_tensorrt():
        raise EngineBuildError("--backend tensorrt needs Torch-TensorRT and TensorRT: pip install 'srsdk[trt]'")
    if backend == Backend.AOTI:
        if config.precision != Precision.FP32:
            raise EngineBuildError(f"--backend aoti builds --fp32 CPU engines; got {flag}")
        if not _features.has_cxx_compiler():
            raise EngineBuildError("--backend aoti needs a C++ compiler to build (g++ or clang++ on PATH, or CXX)")
        return
    if backend == Backend.ONNX and not _features.has_onnxruntime():
        raise EngineBuildError("--backend onnx needs onnx, onnxscript and onnxruntime: pip install 'srsdk[onnx]'")
    if config.precision == Precision.INT8 and backend != Backend.TENSORRT:
        raise EngineBuildError(f"--int8 needs --backend tensorrt (ModelOpt quantisation); got --backend {backend.value}")
    if config.precision == Precision.BF16:
        if backend != Backend.TORCHSCRIPT:
            raise EngineBuildError(f"--bf16 is a CPU precision for --backend torchscript; got --backend {backend.value}")
        return
    if config.precision == Precision.FP16 and backend == Backend.ONNX:
        raise EngineBuildError("--fp16 is not offered for --backend onnx (ONNX Runtime on CPU runs FP32); use --fp32")
    if config.precision != Precision.FP32 and not torch.cuda.is_available():
        hint = " (or --bf16, the CPU's reduced precision)" if config.precision == Precision.FP16 else ""
        raise EngineBuildError(
            f"{flag} needs a CUDA GPU and torch sees none; build --fp32{hint} here or {flag} on a GPU machine"
        )
    if backend == Backend.TENSORRT and not torch.cuda.is_available():
        raise EngineBuildError("--backend tensorrt needs a CUDA GPU and torch sees none")


def _device(backend: Backend, config: BuildConfig) -> str:
    """Where the engine is built and runs: ``"cuda"`` for TensorRT, FP16 and INT8, else ``"cpu"``."""
    on_gpu = backend == Backend.TENSORRT or config.precision in (Precision.FP16, Precision.INT8)
    return "cuda" if on_gpu else "cpu"


def _weights(config: BuildConfig) -> tuple[DeployNet, str, str]:
    """The FP32 deploy graph, its weights' sha256 and a label for the manifest."""
    if config.weights is None:
        entry = weights_manifest()["weights"][str(config.scale)]
        return load_pretrained(config.scale).deploy(), entry["sha256"], f"srsdk/weights/{entry['file']}"
    return load_weights(config.weights, scale=config.scale).deploy(), sha256(config.weights), str(config.weights)


def _for_torchscript(net: DeployNet, precision: Precision) -> nn.Module:
    """``net`` in the form a TorchScript engine of ``precision`` runs."""
    if precision == Precision.FP16:
        return net.half()
    if precision == Precision.BF16:
        return prelu.replace_prelu(net.reduced_precision(torch.bfloat16), prelu.RowPReLU)
    return net


def _export_torchscript(net: nn.Module, path: Path) -> None:
    frozen = torch.jit.freeze(torch.jit.script(net.eval()))
    # Through memory: torch's zip writer, failing on a full disk, aborts the process.
    buffer = io.BytesIO()
    torch.jit.save(frozen, buffer)
    path.write_bytes(buffer.getvalue())


def _export_aoti(net: DeployNet, profile: ShapeProfile, path: Path) -> None:
    """``torch.export`` with dynamic batch, H and W (within ``profile``), compiled by
    AOTInductor with frozen weights into a ``.pt2`` package at ``path``."""
    from torch._inductor import aoti_compile_and_package

    h = torch.export.Dim("h", min=profile.min[0], max=profile.max[0])
    w = torch.export.Dim("w", min=profile.min[1], max=profile.max[1])
    n = torch.export.Dim("n", min=1, max=MAX_BATCH[Backend.AOTI])  # else export fixes the batch at the example's
    example = torch.rand(2, 3, *(max(s, 2) for s in profile.min))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.export's own deprecation notices
        program = torch.export.export(net.eval(), (example,), dynamic_shapes={"x": {0: n, 2: h, 3: w}})
        with path.open("wb") as f:
            aoti_compile_and_package(program, package_path=f, inductor_configs={"freezing": True})


def _export_onnx(net: DeployNet, path: Path, *, max_prelu: bool = True) -> None:
    """Export ``net`` (with :class:`~srsdk.engine.prelu.MaxPReLU` unless ``max_prelu`` is
    False) and check ONNX Runtime agrees with PyTorch."""
    import onnxruntime as ort

    fast = prelu.replace_prelu(net, prelu.MaxPReLU) if max_prelu else net
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
    """The largest difference from the FP32 network. An FP16 or INT8 engine that matches
    FP32 to within 2e-5 was silently built in FP32 (the classic TensorRT failure), which is
    refused; whether any engine is good enough is the quality gate's call.

    Not applied to BF16: its output and bicubic skip are float32 by design, so with weights
    whose learned layers contribute little (an untrained network) it can legitimately come
    within 2e-5; srsdk casts those layers itself (``DeployNet.reduced_precision``)."""
    difference = (engine_out.float().cpu() - fp32_out.float().cpu()).abs().max().item()
    if precision in (Precision.FP16, Precision.INT8) and difference <= 2e-5:
        raise EngineBuildError(
            f"the {precision.value} engine matches FP32 to {difference:.1e}: it was silently built in FP32"
        )
    return difference


def _reusable(path: Path, key: str, config: BuildConfig, folder: Path) -> dict[str, Any] | None:
    """The manifest of the engine at ``path`` where it is the one ``config`` asks for: the
    same key, passed its gate (or kept with ``--force`` when ``config.force`` asks for that
    again), and, where ``config`` names a quality set, scored on the same images (by their
    names and bytes, not the folder's spelling). The default gate set depends on the folder
    srsdk runs in (Set5 beside a checkout, else the packaged photo): any passed gate will do."""
    try:
        data = manifest.read(path)
        gate = data["quality"]
        if data.get("key") != key or not (gate["passed"] or config.force):  # the cheap checks first
            return None
        if config.quality_set is not None and gate.get("images_sha256") != images_sha256(folder):
            return None
        manifest.check(data, path)  # hashes the engine file
        return data
    except Exception:  # noqa: BLE001 - anything wrong means: build it again
        return None


def _check_quality_images(folder: Path, config: BuildConfig) -> None:
    """Refuse, before a build of minutes, a quality gate image that cannot be read (the gate
    would certify the engine on the others without a word), or whose size once downscaled is
    below the profile's smallest input (the gate could not score the engine on it)."""
    low_h, low_w = config.profile.min
    for path in image_files(folder):
        try:
            width, height = read_rgb(path).size  # the pixels too: a truncated file opens
        except InputError as e:
            raise EngineBuildError(f"quality gate: {e}; remove it, or give --quality-set another folder") from e
        if height // config.scale < low_h or width // config.scale < low_w:
            raise EngineBuildError(
                f"quality gate: {path.name} is {width // config.scale}x{height // config.scale} (WxH) at "
                f"x{config.scale}, below the profile's smallest input {low_w}x{low_h}; lower --min or give "
                "--quality-set a folder of larger images"
            )


def _check_largest_input(config: BuildConfig, radius: int) -> None:
    """Refuse, before the build, a profile whose largest input cannot be a tile: larger
    frames run as tiles of that size, each needing its ``radius`` of halo on both sides."""
    smallest = 2 * radius + 1
    if min(config.profile.max) < smallest:
        height, width = config.profile.max
        raise EngineBuildError(
            f"--max {height}x{width}: frames larger than the largest input run as tiles of that size, which "
            f"need at least {smallest}x{smallest} (the network sees {radius} pixels to each side); raise --max"
        )


def build_engine(
    config: BuildConfig, *, log: Log | None = None, on_build: Callable[[int], None] | None = None
) -> BuiltEngine:
    """Build (or reuse) the engine ``config`` describes; see ``srsdk-build-engine --help``.

    ``log`` receives progress lines; ``on_build`` is called with the network's receptive
    radius once when no built engine can be reused and the build (tens of seconds to minutes)
    is about to start; an exception from it refuses the build."""
    say = log or (lambda _: None)
    backend = resolve_backend(config.backend, config.precision)
    if config.backend == Backend.AUTO:
        say(f"backend auto: chose {backend.value}")
    _check_possible(config, backend)
    device = _device(backend, config)
    if config.output is not None:
        check_output(config.output)
        if config.output.suffix == ".safetensors" or (
            config.weights is not None and config.output.resolve() == Path(config.weights).resolve()
        ):
            raise EngineBuildError(f"-o {config.output}: that is a weights file's name; give the engine its own")
    folder = quality.quality_images(config.quality_set)
    if not image_files(folder):  # before the build: a TensorRT build takes minutes
        raise InputError(f"quality gate: no images in {folder}")
    _check_quality_images(folder, config)
    net, weights_sha, weights_label = _weights(config)
    radius = receptive_radius(net)
    _check_largest_input(config, radius)
    if config.precision == Precision.INT8:
        calibration.check_apart(config.calib, folder)
    net = net.to(device).eval()
    key = manifest.engine_key(config, backend, weights_sha, device)
    path = config.output or manifest.default_path(config, backend, key)
    if (cached := _reusable(path, key, config, folder)) is not None:
        say(f"reusing {path}: an identical engine (key {key}) is already built")
        return BuiltEngine(path, cached, reused=True)
    make_folder(path.parent)  # a one-line error where it cannot be made or written (a read-only cache)
    check_output(manifest.manifest_path(path))  # the manifest beside it, before the build too
    # One build of a path at a time: two processes (two Upscalers on an empty cache) would
    # each rename their engine into place and could leave one's manifest beside the other's
    # engine, whose bytes differ. The second waits, then reuses the first's.
    with _build_lock(path, say):
        if (cached := _reusable(path, key, config, folder)) is not None:
            say(f"reusing {path}: built meanwhile by another process")
            return BuiltEngine(path, cached, reused=True)
        if on_build is not None:
            on_build(radius)
        started = time.perf_counter()
        with atomic_output(path) as tmp:
            say(f"building {backend.value} {config.precision.value} x{config.scale} ...")
            try:
                _export(copy.deepcopy(net), backend, config, tmp)  # a copy: `net` stays the FP32 reference
            except OSError:
                raise  # writing the engine itself: atomic_output names it
            except Exception as e:
                if (disk := disk_error(e)) is None:
                    raise
                raise EngineBuildError(
                    f"the {backend.value} build could not write its files ({disk.strerror}): "
                    f"it writes the engine to {path.parent} and its compiler's files to {_scratch_folder(backend)}"
                ) from e
            data = _manifest(config, backend, net, key, weights_sha, weights_label)
            data["build_seconds"] = round(time.perf_counter() - started, 2)
            engine = open_engine(tmp, data, device)
            probe = torch.rand(1, 3, *config.profile.min, generator=torch.Generator().manual_seed(1))
            with torch.inference_mode():
                data["max_abs_difference_vs_fp32"] = check_precision(engine(probe), net(probe.to(device)), config.precision)
            say(f"quality gate: PSNR-Y on {folder} against the FP32 weights ...")
            gate = quality.measure(
                engine.upscale, lambda lr: upscale_array(net, lr), folder, scale=config.scale, precision=config.precision
            )
            gate["forced"] = config.force and not gate["passed"]
            data["quality"] = gate
            if not gate["passed"] and not config.force:
                raise EngineBuildError(
                    f"quality gate: the engine loses {gate['loss_db']:.3f} dB PSNR-Y on {folder} "
                    f"(limit {gate['limit_db']} dB for {config.precision.value}); not kept (--force keeps it)"
                )
            data["engine_sha256"] = sha256(tmp)
            # Before the engine is renamed into place: no engine without its manifest.
            write_text(manifest.manifest_path(path), _json(data))
        return BuiltEngine(path, data, reused=False)


@contextlib.contextmanager
def _build_lock(path: Path, say: Log) -> Iterator[None]:
    """Hold an exclusive lock on the folder ``path`` is built in (POSIX ``flock`` on the
    folder itself, so no lock file is left beside the engine; no lock where there is none):
    builds into one folder take turns, and one that waits says so."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another build in {path.parent} to finish ...")
            fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # releases the lock


def _export(net: DeployNet, backend: Backend, config: BuildConfig, path: Path) -> None:
    """Write ``net`` as a ``backend`` engine of ``config`` at ``path`` (it may cast or quantise ``net``)."""
    if backend == Backend.TORCHSCRIPT:
        _export_torchscript(_for_torchscript(net, config.precision), path)
    elif backend == Backend.ONNX:
        _export_onnx(net, path)
    elif backend == Backend.AOTI:
        _export_aoti(net, config.profile, path)
    else:
        from srsdk.engine import tensorrt

        tensorrt.build(net, config, path, _device(backend, config))


def _scratch_folder(backend: Backend) -> str:
    """Where ``backend``'s compiler writes files of its own (Inductor's cache for AOTI)."""
    if backend == Backend.AOTI:
        with contextlib.suppress(ImportError):  # a private module: its place may change
            from torch._inductor.runtime.cache_dir_utils import cache_dir

            return str(cache_dir())
    return tempfile.gettempdir()


def _manifest(
    config: BuildConfig, backend: Backend, net: DeployNet, key: str, weights_sha: str, weights_label: str
) -> dict[str, Any]:
    """The manifest of an engine just built, before its timing, precision check and quality gate."""
    device = _device(backend, config)
    data: dict[str, Any] = {
        "format": manifest.FORMAT,
        "key": key,
        "recipe": manifest.recipe(),
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
        "architecture": net.arch.to_dict(),
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if config.optimize_for_inference:
        data["optimize_for_inference"] = True
    if (isa := manifest.cpu_isa(backend)) is not None:
        data["cpu_isa"] = isa
    return data


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, indent=2) + "\n"
