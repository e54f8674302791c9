"""The CPU Upscaler with torch's huge pages (what importing srsdk asks for) against without.

    python benchmarks/huge_pages.py --json benchmarks/results/huge-pages-cpu.json

``THP_MEM_ALLOC_ENABLE`` is read when torch first allocates, so each setting runs in a
fresh child process of this one: it builds (or reuses from the engine cache) the default CPU
engine, upscales ``--frames`` camera frames (``../shared/data/video/car-detection.mp4``
resized to ``--size``, as ``backends.py`` loads them) x2 through ``Upscaler`` after two
untimed ones, and reports the median latency and the minor page faults per frame. The two
settings alternate over ``--rounds`` rounds (the first in each round alternates too), so a
drift of the machine's speed falls on both alike; ``off_over_on`` is the ratio of each
round's pair of medians (above 1: huge pages faster), with its quartiles and the share of
rounds huge pages won. Not part of ``make test`` beyond a tiny run; the JSON is committed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report
from backends import load_frames

SETTINGS = ("1", "0")  # THP_MEM_ALLOC_ENABLE: on (srsdk's default), off


def child(frames_wanted: int, width: int, height: int) -> dict[str, float | str]:
    """Time the CPU Upscaler in this process, under whatever THP_MEM_ALLOC_ENABLE it got."""
    from srsdk import Upscaler

    frames, _ = load_frames(frames_wanted, width, height)
    with Upscaler(scale=2, device="cpu") as up:
        for frame in frames[:2]:
            up(frame)
        times, faults = [], []
        for frame in frames:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.perf_counter()
            up(frame)
            times.append((time.perf_counter() - started) * 1e3)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return {"median_ms": statistics.median(times), "minor_faults_per_frame": statistics.median(faults),
                "backend": up.backend, "precision": up.precision}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="960x540", help="input frame WxH")
    parser.add_argument("--frames", type=int, default=8, help="timed frames per child")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    if args.child:
        print(json.dumps(child(args.frames, width, height)))
        return 0
    runs: dict[str, list[dict[str, float | str]]] = {setting: [] for setting in SETTINGS}
    for r in range(args.rounds):
        for setting in SETTINGS if r % 2 == 0 else SETTINGS[::-1]:
            command = [sys.executable, __file__, "--child", "--size", args.size, "--frames", str(args.frames)]
            env = {**os.environ, "THP_MEM_ALLOC_ENABLE": setting}
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            runs[setting].append(json.loads(done.stdout.splitlines()[-1]))
            print(f"round {r} THP_MEM_ALLOC_ENABLE={setting}: {runs[setting][-1]['median_ms']:.1f} ms", file=sys.stderr)
    on = [float(run["median_ms"]) for run in runs["1"]]
    off = [float(run["median_ms"]) for run in runs["0"]]
    ratios = np.array(off) / np.array(on)
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    result = {
        "benchmark": "huge_pages",
        "input": [height, width],
        "scale": 2,
        "frames_per_child": args.frames,
        "engine": f"{runs['1'][0]['backend']} {runs['1'][0]['precision']}",
        "median_ms": {"huge_pages": statistics.median(on), "no_huge_pages": statistics.median(off)},
        "minor_faults_per_frame": {
            "huge_pages": statistics.median(float(run["minor_faults_per_frame"]) for run in runs["1"]),
            "no_huge_pages": statistics.median(float(run["minor_faults_per_frame"]) for run in runs["0"]),
        },
        "off_over_on": {
            "median": float(q50),
            "p25": float(q25),
            "p75": float(q75),
            "rounds": len(ratios),
            "share_huge_pages_faster": float(np.mean(ratios > 1)),
        },
        "runs": runs,
    }
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
