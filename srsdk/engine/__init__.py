"""Deployable engines: build (``srsdk-build-engine``, :func:`build_engine`) and load
(:func:`load_engine`) TorchScript, ONNX and Torch-TensorRT artifacts with JSON manifests.

Loading never imports a compiler; building imports only what its backend needs. Importing
this package is cheap: the names below load their modules (and torch) on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from srsdk.engine.build import BuiltEngine, build_engine
    from srsdk.engine.config import Backend, BuildConfig, Precision, ShapeProfile
    from srsdk.engine.load import Engine, load_engine

__all__ = ["Backend", "BuildConfig", "BuiltEngine", "Engine", "Precision", "ShapeProfile", "build_engine", "load_engine"]

_HOME = {
    "BuiltEngine": "build", "build_engine": "build",
    "Backend": "config", "BuildConfig": "config", "Precision": "config", "ShapeProfile": "config",
    "Engine": "load", "load_engine": "load",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"srsdk.engine.{_HOME[name]}"), name)
    raise AttributeError(f"module 'srsdk.engine' has no attribute {name!r}")
