"""Optional dependencies, detected once and without importing them (no CUDA is touched).

``find_spec`` answers "is it installed" cheaply; the modules themselves are imported only
by the code that uses them.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util


@functools.cache
def version(distribution: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def has_torch_tensorrt() -> bool:
    return has_module("torch_tensorrt")


def has_onnxruntime() -> bool:
    return has_module("onnxruntime")


def has_modelopt() -> bool:
    return has_module("modelopt")
