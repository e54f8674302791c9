"""Where srsdk keeps what it builds for this machine: CPU engines and compiled CUDA kernels."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/srsdk``, or ``~/.cache/srsdk`` where that is unset or relative (the
    XDG spec says to ignore relative paths: they would put a cache in whatever folder a
    program runs in)."""
    root = Path(os.environ.get("XDG_CACHE_HOME", ""))
    return (root if root.is_absolute() else Path.home() / ".cache") / "srsdk"


def engine_cache() -> Path:
    """Where engines the Upscaler builds for itself live: ``cache_root() / "engines"``."""
    return cache_root() / "engines"


def kernel_cache() -> Path:
    """Where the CUDA tiling kernels, compiled once per GPU architecture, live."""
    return cache_root() / "kernels"
