"""What runs the network for an :class:`~srsdk.upscaler.Upscaler`: the eager deploy graph or
a built engine, behind one small interface (``scale``, ``device``, ``dtype``, ``precision``,
``backend``, ``receptive_radius``, ``architecture``, ``max_shape``, and a call on a batch),
and the choice between them, including the CPU engine an Upscaler builds for itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from srsdk.cache import engine_cache
from srsdk.errors import InputError
from srsdk.model import Architecture


def _note_build(config: Any) -> None:
    """Say through ``logging.getLogger("srsdk")`` that the CPU engine is being built (tens of
    seconds, with its quality gate) and will be reused."""
    optimized = " optimize_for_inference" if config.optimize_for_inference else ""
    logging.getLogger("srsdk").info(
        "building the x%d CPU engine for this machine (%s %s%s; once, later runs reuse it from %s)",
        config.scale, config.backend.value, config.precision.value, optimized, config.directory,
    )  # fmt: skip


class EagerRunner:
    """The deploy graph as a runner (no size limit), for CUDA and where no engine applies."""

    def __init__(self, scale: int, weights: Path | None, device: torch.device, dtype: torch.dtype) -> None:
        from srsdk.model import receptive_radius
        from srsdk.pretrained import load_pretrained, load_weights

        net = (load_pretrained(scale) if weights is None else load_weights(weights, scale=scale)).deploy()
        self.receptive_radius = receptive_radius(net)
        self.architecture: Architecture | None = net.arch
        self.net = net.to(device, dtype).eval()
        self.scale, self.device, self.dtype = scale, device, dtype
        self.precision = "fp16" if dtype == torch.float16 else "fp32"
        self.backend = "eager"
        self.max_shape: tuple[int, int] | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.device, self.dtype))


class EngineRunner:
    """A built engine as a runner (sizes limited by its profile)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.scale = engine.scale
        self.device, self.dtype = engine.device, engine.dtype
        self.precision: str = engine.precision.value
        optimized = "+optimize_for_inference" if engine.manifest.get("optimize_for_inference") else ""
        self.backend = engine.backend.value + optimized
        self.receptive_radius: int = engine.receptive_radius
        self.architecture: Architecture | None = engine.architecture
        self.max_shape: tuple[int, int] | None = engine.profile.max

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.engine(x)


def select_runner(
    scale: int | None,
    engine: str | Path | None,
    weights: str | Path | None,
    precision: str,
    device: torch.device,
    check_radius: Callable[[int], None] = lambda radius: None,
) -> EagerRunner | EngineRunner:
    """What runs the network for an Upscaler of these options (checked here): the engine
    given, else on CUDA the eager graph, else the fastest CPU engine for this machine (built
    once into :func:`engine_cache`). ``check_radius`` is called with the network's receptive
    radius before a CPU engine is built, so an option that radius rules out is refused
    without waiting for the build."""
    from srsdk.engine import load_engine

    if engine is not None:
        loaded = load_engine(engine, scale=scale, device=str(device))
        if precision not in ("auto", loaded.precision.value):
            raise InputError(f"precision: {precision!r} asked for, but the engine is {loaded.precision.value}")
        return EngineRunner(loaded)
    on_cuda = device.type == "cuda"
    if precision == "int8":
        raise InputError("precision: int8 needs an INT8 engine (srsdk-build-engine --int8), pass engine=")
    if precision == "fp16" and not on_cuda:
        raise InputError("precision: fp16 needs a CUDA device (bf16 is the CPU's reduced precision)")
    if precision == "bf16" and on_cuda:
        raise InputError("precision: bf16 is for the CPU; on CUDA use fp16")
    weights_path = Path(weights) if weights is not None else None
    from srsdk.pretrained import scale_for

    scale = scale_for(scale, weights_path)
    if on_cuda:
        dtype = torch.float32 if precision == "fp32" else torch.float16
        return EagerRunner(scale, weights_path, device, dtype)
    from srsdk.engine.build import build_engine, fastest_cpu_engine
    from srsdk.engine.config import BuildConfig, Precision, ShapeProfile
    from srsdk.io.atomic import make_folder

    try:
        make_folder(engine_cache())
    except InputError as e:  # a read-only or misdirected cache: say which setting moves it
        raise InputError(f"{e} (the engine cache; set XDG_CACHE_HOME to move it)") from e
    fastest = fastest_cpu_engine(None if precision == "auto" else Precision(precision))
    profile = ShapeProfile(min=(1, 1), opt=(540, 960), max=(1080, 1920))
    config = BuildConfig(scale=scale, backend=fastest.backend, precision=fastest.precision, profile=profile,
                         optimize_for_inference=fastest.optimize_for_inference, weights=weights_path,
                         directory=engine_cache())  # fmt: skip
    def on_build(radius: int) -> None:
        check_radius(radius)
        _note_build(config)

    built = build_engine(config, on_build=on_build)
    if not built.reused:  # engines older srsdk versions left in the cache can never be reused
        from srsdk.engine.manifest import prune_stale

        prune_stale(engine_cache())
    return EngineRunner(load_engine(built.path))
