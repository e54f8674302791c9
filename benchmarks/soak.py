"""Soak: many small frames through ``Upscaler.stream`` on CPU; resident memory must not grow.

    python benchmarks/soak.py --frames 10000 --json benchmarks/results/soak-cpu.json

Frames are 48x64 crops of a real photo (Set14 zebra, shifted per frame so no two are the
same). Resident set size (VmRSS) is sampled after a warm-up of ``--warmup`` frames and
then every 500 frames; ``rss_growth`` = (last - after warm-up) / after warm-up.
Not part of ``make test`` (it takes minutes); run by hand, the JSON is committed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _targets import judge
from _timing import report

from srsdk.upscaler import Upscaler

PHOTO = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "eval" / "set14" / "zebra.png"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    photo = np.asarray(Image.open(PHOTO).convert("RGB")) if PHOTO.is_file() else np.zeros((391, 586, 3), np.uint8)

    def frames() -> Iterator[np.ndarray]:
        for i in range(args.frames):
            y, x = (i * 7) % (photo.shape[0] - 48), (i * 13) % (photo.shape[1] - 64)
            yield photo[y : y + 48, x : x + 64]

    samples: list[tuple[int, float]] = []
    started = time.perf_counter()
    with Upscaler(scale=2, device="cpu") as up:
        for i, out in enumerate(up.stream(frames()), start=1):
            assert out.shape == (96, 128, 3)
            if i == args.warmup or (i > args.warmup and i % 500 == 0) or i == args.frames:
                samples.append((i, rss_mb()))
    seconds = time.perf_counter() - started
    baseline, last = samples[0][1], samples[-1][1]
    result = {
        "benchmark": "soak",
        "frames": args.frames,
        "frame_size": [48, 64],
        "seconds": seconds,
        "rss_mb_after_warmup": baseline,
        "rss_mb_last": last,
        "rss_mb_max": max(m for _, m in samples),
        "rss_growth": (last - baseline) / baseline,
        "samples": samples,
    }
    result["targets"] = judge(result)
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
