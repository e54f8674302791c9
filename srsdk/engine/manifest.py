"""The JSON manifest beside every engine (``<engine path>.json``), and the checks that
refuse an engine built for another scale, format, software or GPU, or damaged since."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from srsdk import _features
from srsdk._version import __version__
from srsdk.engine.config import Backend, BuildConfig
from srsdk.errors import EngineMismatchError
from srsdk.pretrained import sha256

FORMAT = "srsdk-engine/1"
SUFFIX = {Backend.TORCHSCRIPT: ".ts", Backend.TENSORRT: ".ts", Backend.ONNX: ".onnx", Backend.AOTI: ".pt2"}


def manifest_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def _base(version: str | None) -> str | None:
    return None if version is None else version.split("+")[0]


def software(backend: Backend) -> dict[str, str | None]:
    """The versions an engine of ``backend`` depends on, as installed here."""
    import torch

    found: dict[str, str | None] = {"srsdk": __version__, "torch": _base(torch.__version__)}
    if backend == Backend.TENSORRT:
        found["torch_tensorrt"] = _base(_features.version("torch-tensorrt") or _features.version("torch_tensorrt"))
        found["tensorrt"] = _base(_tensorrt_version())
    if backend == Backend.ONNX:
        found["onnxruntime"] = _features.version("onnxruntime")
    if backend == Backend.AOTI:  # native code for this vector instruction set
        found["cpu_capability"] = _features.cpu_capability()
    return found


def cpu_isa(backend: Backend) -> list[str] | None:
    """For AOTInductor engines, the instruction-set extensions of the CPU they are built on:
    Inductor compiles for the building CPU (``-march=native``), so an engine may use any of
    them, and two CPUs of one ``cpu_capability`` (AVX-512 with and without AMX) differ."""
    return _features.cpu_isa_flags() if backend == Backend.AOTI else None


def _tensorrt_version() -> str | None:
    for name in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu13_libs", "tensorrt-cu13-libs"):
        if found := _features.version(name):
            return found
    return None


def gpu(device: str) -> dict[str, str] | None:
    """Name and compute capability of a CUDA ``device``; None for the CPU."""
    import torch

    if not device.startswith("cuda"):
        return None
    props = torch.cuda.get_device_properties(torch.device(device))
    return {"name": props.name, "compute_capability": f"{props.major}.{props.minor}"}


def recipe() -> str:
    """A hash of the code that shapes an engine (the network and the build), so an engine
    cached by an older srsdk is rebuilt rather than reused."""
    package = Path(__file__).resolve().parent.parent
    sources = [package / "model.py"] + [package / "engine" / f for f in ("build.py", "prelu.py", "tensorrt.py")]
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]


def engine_key(config: BuildConfig, backend: Backend, weights_sha256: str, device: str) -> str:
    """A short hash of everything that decides the engine's bytes."""
    decides = {
        "recipe": recipe(),
        "format": FORMAT,
        "scale": config.scale,
        "backend": backend.value,
        "precision": config.precision.value,
        "profile": config.profile.to_json(),
        "weights_sha256": weights_sha256,
        "software": software(backend),
        "gpu": gpu(device),
        "calibration": _calibration(config) if config.precision.value == "int8" else None,
    }
    if (isa := cpu_isa(backend)) is not None:  # absent for the other backends: their keys stay
        decides["cpu_isa"] = isa
    if config.optimize_for_inference:  # absent otherwise, so engines built before it keep their keys
        decides["optimize_for_inference"] = True
    return hashlib.sha256(json.dumps(decides, sort_keys=True).encode()).hexdigest()[:12]


def _calibration(config: BuildConfig) -> dict[str, object]:
    """What decides an INT8 engine's calibration: how many images, and the bytes and names
    of the files they come from (the folder's path says nothing: its photos may change)."""
    from srsdk.io.image import image_files, images_sha256

    if not config.calib.is_dir():
        return {"images": config.calib_images, "files": 0, "sha256": None}
    return {"images": config.calib_images, "files": len(image_files(config.calib)), "sha256": images_sha256(config.calib)}


STALE_PART_SECONDS = 24 * 3600
"""A temporary ``.part`` file this old was left by a build that was killed."""


def prune_stale(directory: Path) -> list[Path]:
    """Delete the engines in ``directory`` (an engine cache srsdk owns) that no srsdk of
    this code can reuse: built by other srsdk code (another :func:`recipe`), and the
    temporary files of builds killed a day or more ago. Engines for other software or
    another CPU stay: another environment or machine may share the cache. Returns the
    engine files removed; anything unreadable is left alone."""
    import time

    for part in directory.glob(".*.part"):
        with contextlib.suppress(OSError):
            if time.time() - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()
    removed = []
    for path in sorted(directory.glob("*.json")):
        engine = path.with_name(path.name.removesuffix(".json"))
        try:
            data = json.loads(path.read_text())
            stale = data.get("recipe") != recipe()
        except (OSError, ValueError, TypeError, AttributeError):
            continue
        if stale and data.get("format") == FORMAT:
            try:  # best effort: another user's file, or one open elsewhere, stays
                engine.unlink(missing_ok=True)
                path.unlink(missing_ok=True)
            except OSError:
                continue
            removed.append(engine)
    return removed


def default_path(config: BuildConfig, backend: Backend, key: str) -> Path:
    optimized = "_optimized" if config.optimize_for_inference else ""
    name = f"srsdk_x{config.scale}_{backend.value}_{config.precision.value}{optimized}_{config.profile.label()}_{key}"
    return config.directory / (name + SUFFIX[backend])


def read(engine: Path) -> dict[str, Any]:
    """The manifest of ``engine``, or :class:`EngineMismatchError` saying what is wrong."""
    path = manifest_path(engine)
    if not engine.is_file():
        raise EngineMismatchError(f"{engine}: no such engine file")
    if not path.is_file():
        raise EngineMismatchError(f"{engine}: its manifest {path.name} is missing (rebuild with srsdk-build-engine)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EngineMismatchError(f"{path}: not a readable manifest ({e})") from e
    if not isinstance(data, dict):
        raise EngineMismatchError(f"{path}: not a manifest")
    return data


def check(data: dict[str, Any], engine: Path, *, scale: int | None = None, device: str | None = None) -> None:
    """Refuse, naming the field, an engine this machine should not run."""
    import torch

    def refuse(field: str, found: object, expected: object) -> None:
        raise EngineMismatchError(f"{engine}: {field} is {found!r}, expected {expected!r}; rebuild the engine here")

    if data.get("format") != FORMAT:
        refuse("format", data.get("format"), FORMAT)
    if data.get("engine_sha256") != sha256(engine):
        raise EngineMismatchError(
            f"{engine}: engine_sha256 does not match the file (corrupted or truncated?); rebuild it"
        )
    if scale is not None and data.get("scale") != scale:
        raise EngineMismatchError(
            f"{engine}: an x{data.get('scale')} engine, and x{scale} was asked for; leave the scale out "
            f"(the engine's is used) or build an x{scale} engine"
        )
    backends = [b.value for b in Backend if b != Backend.AUTO]
    if data.get("backend") not in backends:
        refuse("backend", data.get("backend"), backends)
    backend = Backend(data["backend"])
    if data.get("device") not in ("cpu", "cuda"):
        refuse("device", data.get("device"), ["cpu", "cuda"])
    built = data.get("software")
    if not isinstance(built, dict):
        raise EngineMismatchError(f"{engine}: its manifest's software is {built!r}, not versions; rebuild the engine")
    for name, here in software(backend).items():
        if name != "srsdk" and built.get(name) != here:
            refuse(f"software.{name}", built.get(name), here)
    recorded = data.get("cpu_isa")
    if isinstance(recorded, list) and (missing := sorted(set(recorded) - set(cpu_isa(backend) or recorded))):
        raise EngineMismatchError(
            f"{engine}: built on a CPU with instructions this one lacks ({', '.join(missing)}); rebuild the engine here"
        )
    needs_gpu = backend == Backend.TENSORRT or data["device"] == "cuda"
    if needs_gpu and not torch.cuda.is_available():
        refuse("device", "cuda", "cpu (this machine has no CUDA GPU)")
    target = device if device is not None and device.startswith("cuda") else "cuda"
    if backend == Backend.TENSORRT and data.get("gpu") != gpu(target):
        refuse("gpu", data.get("gpu"), gpu(target))
