"""Shared fixtures: where ../shared/data is, and CPU-friendly torch settings."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# ../shared/data beside the checkout; a GPU machine gets a copy under .device/ (make gpu-stage).
SHARED_DATA = Path(os.environ.get("SRSDK_SHARED_DATA", ROOT.parent / "shared" / "data"))



def shared(*parts: str) -> Path:
    """A path under ../shared/data; skips the test where it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (these tests read the project's shared data)")
    return path


@pytest.fixture(scope="session")
def set5() -> Path:
    return shared("eval", "set5")


@pytest.fixture(scope="session")
def set14() -> Path:
    return shared("eval", "set14")


@pytest.fixture(scope="session")
def videos() -> Path:
    return shared("video")


@pytest.fixture
def bsds_train() -> tuple[Path, Path]:
    return shared("train", "bsds500"), shared("train", "bsds500_boundaries")


def pytest_configure(config: pytest.Config) -> None:
    # Engines the Upscaler builds for itself, and compiled CUDA kernels, go to a throwaway
    # cache (subprocesses inherit it), not the user's ~/.cache.
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="srsdk-test-cache-")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none here; these run on a lent GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
