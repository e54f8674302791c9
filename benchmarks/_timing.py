"""Timing and provenance shared by the benchmark scripts (see benchmarks/README.md, Method)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import srsdk


def timeit(run: Callable[[], object], *, repeats: int, warmup: int = 2, cuda: bool = False) -> dict[str, float]:
    """Median and spread (ms) of ``repeats`` timed calls after ``warmup`` untimed ones.

    On CUDA each call is bracketed by CUDA events and synchronised inside the timed region.
    """
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            run()
            samples.append((time.perf_counter() - t0) * 1e3)
    q = np.percentile(samples, [25, 75])
    return {"median_ms": statistics.median(samples), "p25_ms": float(q[0]), "p75_ms": float(q[1]), "runs": repeats}


def environment() -> dict[str, Any]:
    """Machine, versions and commit, for the JSON every benchmark writes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--", ".", ":!benchmarks/results"], capture_output=True, text=True, check=True
            ).stdout
        )
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    info: dict[str, Any] = {
        "srsdk": srsdk.__version__,
        "git_commit": commit + ("+dirty" if dirty else ""),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda}
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
