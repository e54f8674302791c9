"""Latency of one built engine on device tensors (no host copies), CPU or CUDA.

    python benchmarks/engine_latency.py --engine trt/engines/....ts --size 1920x1080 --json OUT

The engine runs on a random ``1 x 3 x H x W`` input already on its device, in its own
precision; CUDA calls are timed with CUDA events inside the timed region. The FP32
eager network runs on the same input in the same process as the baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report, timeit

from srsdk.engine import load_engine
from srsdk.pretrained import load_pretrained


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--size", default="1920x1080", help="LR input WxH")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    engine = load_engine(args.engine)
    cuda = engine.device.type == "cuda"
    x = torch.rand(1, 3, height, width, device=engine.device)
    x_engine = x.to(engine.dtype)
    net = load_pretrained(engine.scale).deploy().to(engine.device)
    with torch.inference_mode():
        timed = {
            "engine": timeit(lambda: engine(x_engine), repeats=args.repeats, cuda=cuda),
            "eager_fp32": timeit(lambda: net(x), repeats=args.repeats, cuda=cuda),
        }
    result = {
        "benchmark": "engine_latency",
        "engine": str(args.engine),
        "backend": engine.backend.value,
        "precision": engine.precision.value,
        "device": str(engine.device),
        "input": [height, width],
        "scale": engine.scale,
        "timings": timed,
        "engine_fps": 1e3 / timed["engine"]["median_ms"],
        "speedup_vs_eager_fp32": timed["eager_fp32"]["median_ms"] / timed["engine"]["median_ms"],
        "quality": engine.manifest["quality"],
    }
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
