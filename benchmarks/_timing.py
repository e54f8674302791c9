"""Timing and provenance shared by the benchmark scripts (see benchmarks/README.md, Method)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from srsdk.bench import environment
from srsdk.bench import samples as bench_samples

__all__ = ["environment", "report", "summary", "timeit"]


def timeit(run: Callable[[], object], *, repeats: int, warmup: int = 2, cuda: bool = False) -> dict[str, float]:
    """Median and spread (ms) of ``repeats`` timed calls after ``warmup`` untimed ones.

    On CUDA each call is bracketed by CUDA events and synchronised inside the timed region.
    """
    return summary(bench_samples(run, repeats, cuda=cuda, warmup=warmup))


def summary(samples: list[float]) -> dict[str, float]:
    """Median and quartiles (ms) of timed calls, and how many."""
    q = np.percentile(samples, [25, 75])
    return {"median_ms": statistics.median(samples), "p25_ms": float(q[0]), "p75_ms": float(q[1]), "runs": len(samples)}


def report(result: dict[str, Any], path: Path | None) -> int:
    """Add the environment, print the JSON, and write it to ``path`` when given."""
    text = json.dumps({**result, "environment": environment()}, indent=2)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    print(text)
    return 0
