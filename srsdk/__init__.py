"""srsdk: real-time structure-preserving super-resolution for images and video.

The network is the contextualized multi-task model of Shi et al. (IEEE TMM 2017); the
trained weights for x2, x3 and x4 ship with the package. Frame loops use
:class:`Upscaler`; :func:`build_engine` / :func:`load_engine` make and load deployable
TorchScript, AOTInductor, ONNX and Torch-TensorRT engines. Importing ``srsdk`` is cheap: the names
below load their modules (and torch) on first use. Training, evaluation and tiling live in
``srsdk.train``, ``srsdk.evaluate`` and ``srsdk.tiling``.

Importing ``srsdk`` sets ``THP_MEM_ALLOC_ENABLE=1`` unless it is already set: torch then
asks for transparent huge pages for its large CPU buffers. Every frame allocates a few
dozen fresh activation buffers of 10-35 MB, and faulting them in 4 KiB pages cost a quarter
to a third of the CPU frame time on the machines srsdk is measured on
(``benchmarks/backends.py``; README, "CPU memory"). It takes effect when set before torch's first large allocation;
set it to 0 to opt out.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from srsdk._version import __version__

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

if TYPE_CHECKING:
    from srsdk.engine.build import build_engine
    from srsdk.engine.config import Backend, BuildConfig, Precision, ShapeProfile
    from srsdk.engine.load import Engine, load_engine
    from srsdk.errors import (
        EngineBuildError,
        EngineMismatchError,
        InputError,
        ShapeError,
        SrsdkError,
        WeightsError,
    )
    from srsdk.inference import upscale_array, upscale_tiled
    from srsdk.model import Architecture, DeployNet, SPNet, cost, receptive_radius
    from srsdk.pretrained import load_pretrained, load_weights, save_weights
    from srsdk.train_config import TrainConfig
    from srsdk.upscaler import Upscaler

__all__ = [
    "Architecture",
    "Backend",
    "BuildConfig",
    "DeployNet",
    "Engine",
    "EngineBuildError",
    "EngineMismatchError",
    "InputError",
    "Precision",
    "SPNet",
    "ShapeError",
    "ShapeProfile",
    "SrsdkError",
    "TrainConfig",
    "Upscaler",
    "WeightsError",
    "__version__",
    "build_engine",
    "cost",
    "load_engine",
    "load_pretrained",
    "load_weights",
    "receptive_radius",
    "save_weights",
    "upscale_array",
    "upscale_tiled",
]

_HOMES = {
    "Architecture": "srsdk.model",
    "DeployNet": "srsdk.model",
    "SPNet": "srsdk.model",
    "cost": "srsdk.model",
    "receptive_radius": "srsdk.model",
    "InputError": "srsdk.errors",
    "SrsdkError": "srsdk.errors",
    "WeightsError": "srsdk.errors",
    "ShapeError": "srsdk.errors",
    "EngineBuildError": "srsdk.errors",
    "EngineMismatchError": "srsdk.errors",
    "Backend": "srsdk.engine.config",
    "BuildConfig": "srsdk.engine.config",
    "Precision": "srsdk.engine.config",
    "ShapeProfile": "srsdk.engine.config",
    "build_engine": "srsdk.engine.build",
    "Engine": "srsdk.engine.load",
    "load_engine": "srsdk.engine.load",
    "upscale_tiled": "srsdk.inference",
    "Upscaler": "srsdk.upscaler",
    "TrainConfig": "srsdk.train_config",
    "upscale_array": "srsdk.inference",
    "load_pretrained": "srsdk.pretrained",
    "load_weights": "srsdk.pretrained",
    "save_weights": "srsdk.pretrained",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'srsdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
