"""The Upscaler's overhead over its bare engine, on the same frames in one run.

    python benchmarks/upscaler.py --json benchmarks/results/upscaler-cpu.json

Frames: the first ``--frames`` frames of ``car-detection.mp4`` resized to ``--size``
(960x540 by default; see backends.py). Timed, per frame:

* ``bare_engine``: the engine the Upscaler runs (on CPU the fastest one here, see
  backends.py), called on pre-converted ``1x3xHxW`` float tensors: the network alone;
* ``upscaler_call``: ``Upscaler(frame)`` from a uint8 HxWx3 frame to a uint8 frame
  (conversion, pack, network, blend, rounding);
* ``upscaler_stream``: ``Upscaler.stream`` over the frames, time per frame.

The two are timed interleaved, frame by frame. ``overhead_ratio`` = upscaler_call /
bare_engine (median per-frame latency); latency
percentiles p50/p95/p99 are reported for each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _targets import judge
from _timing import report
from backends import load_frames

from srsdk.upscaler import Upscaler


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(samples_ms, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "fps": 1e3 / float(p50),
            "runs": len(samples_ms)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--size", default="960x540", help="input frame WxH")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=40, help="timed frames per contender")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    frames, source = load_frames(args.frames, width, height)
    tensors = [torch.from_numpy(f.copy()).permute(2, 0, 1)[None].float().div(255) for f in frames]
    with Upscaler(scale=2, device="cpu") as up:
        engine = up._runner
        runs = {"bare_engine": lambda i: engine(tensors[i % len(tensors)]), "upscaler_call": lambda i: up(frames[i % len(frames)])}
        timed: dict[str, list[float]] = {name: [] for name in runs}
        for run in runs.values():
            for i in range(2):
                run(i)  # warm-up
        # Interleaved, the order swapped every frame: this machine's speed drifts by 10-30 %
        # within a minute, which timing one contender after the other charges to one of them.
        for i in range(args.repeats):
            for name in list(runs) if i % 2 == 0 else list(runs)[::-1]:
                t0 = time.perf_counter()
                runs[name](i)
                timed[name].append((time.perf_counter() - t0) * 1e3)
        sequence = [frames[i % len(frames)] for i in range(args.repeats)]
        t0 = time.perf_counter()
        count = sum(1 for _ in up.stream(iter(sequence)))
        stream_ms = (time.perf_counter() - t0) * 1e3 / count
        runner = type(engine).__name__ + (f" ({engine.engine.backend.value})" if hasattr(engine, "engine") else "")
    results = {name: _percentiles(samples) for name, samples in timed.items()}
    result = {
        "benchmark": "upscaler",
        "device": "cpu",
        "runner": runner,
        "frames": source,
        "input": [height, width],
        "scale": 2,
        "timings": results,
        "upscaler_stream": {"mean_ms_per_frame": stream_ms, "fps": 1e3 / stream_ms, "frames": count},
        "overhead_ratio": results["upscaler_call"]["p50_ms"] / results["bare_engine"]["p50_ms"],
    }
    result["targets"] = judge(result)
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
