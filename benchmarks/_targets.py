"""The speed and memory targets the benchmarks are held to, and whether a result meets them.

Each target is a ratio measured against a baseline in the same process (README, "How to
work"); a benchmark writes :func:`judge`'s verdict into its JSON and RESULTS.md prints it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

__all__ = ["TARGETS", "judge", "verdict"]

_COMPARE: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt, ">=": operator.ge}
TARGETS: dict[str, tuple[str, float, str]] = {
    "overhead_ratio": ("<=", 1.10, "<= 1.10"),  # benchmarks/upscaler.py: Upscaler / bare engine
    "rss_growth": ("<", 0.05, "< 5 %"),  # benchmarks/soak.py: resident memory growth over the soak
    "pack_blend_speedup_vs_torch": (">=", 3.0, ">= 3x"),  # benchmarks/tiling.py (CPU): torch reference / native
    "pack_blend_vs_memcpy": ("<=", 2.5, "<= 2.5x"),  # benchmarks/tiling.py (CPU): native / the copy floor
}
"""Each measured ratio's comparison, bound, and the bound as RESULTS.md writes it."""


def judge(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each target ``result`` measures: the target (``"<= 1.10"``) and whether it is met."""
    return {
        name: {"target": shown, "met": _COMPARE[op](float(result[name]), bound)}
        for name, (op, bound, shown) in TARGETS.items()
        if name in result
    }


def verdict(result: dict[str, Any], name: str) -> str:
    """``"target <= 1.10: met"`` (or ``missed``) for one of ``result``'s measured targets."""
    judged = judge(result)[name]
    return f"target {judged['target']}: {'met' if judged['met'] else 'missed'}"
