"""Peak memory of tiled CPU inference: blending one row of tiles at a time against the whole batch.

    python benchmarks/tiled_memory.py --json benchmarks/results/tiled-memory-cpu.json

One LR frame (a Set14 photo resized to ``--size``, noise where ../shared is absent) is
upscaled x2 by the shipped network (eager FP32) in ``--tile`` tiles at its receptive radius,
two ways: ``whole_batch`` packs every tile, runs them one at a time into one output batch
and blends it (what the CPU Upscaler did before rows); ``rows`` is
:func:`srsdk.inference.upscale_tiled`, which packs and blends one row of tiles at a time
(:class:`srsdk.row_blend.RowBlend`, as the CPU Upscaler does). Each run is a fresh child
process of this one (so no way inherits memory the other left cached): after loading the
network and a warm-up upscale it takes its resident memory, runs the way once, and reports
how far peak resident memory (VmHWM) rose above it. The ways alternate over ``--repeats``
rounds; the median rises are reported, with ``rows_over_whole_batch``, and the two ways'
outputs must be identical. Not part of ``make test`` beyond a tiny run (it takes minutes);
the JSON is committed.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report

from srsdk import tiling
from srsdk.inference import upscale_tiled
from srsdk.model import DeployNet, receptive_radius
from srsdk.pretrained import load_pretrained

WAYS = ("whole_batch", "rows")
PHOTO = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "eval" / "set14" / "zebra.png"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


@torch.inference_mode()
def whole_batch(net: DeployNet, rgb: np.ndarray, tile: int, halo: int) -> np.ndarray:
    """Every tile packed, run one at a time into one batch, the batch blended."""
    plan = tiling.plan_tiles(rgb.shape[0], rgb.shape[1], tile=tile, halo=halo)
    batch = torch.from_numpy(tiling.pack(rgb, plan))
    first = net(batch[:1])
    out = first.new_empty((len(plan), *first.shape[1:]))
    out[:1] = first
    for i in range(1, len(plan)):
        out[i : i + 1] = net(batch[i : i + 1])
    return tiling.blend(out.numpy(), plan, scale=net.arch.scale)


def _frame(width: int, height: int) -> np.ndarray:
    if PHOTO.is_file():
        return np.asarray(Image.open(PHOTO).convert("RGB").resize((width, height), Image.Resampling.BICUBIC))
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def child(way: str, width: int, height: int, tile: int, digest_to: Path) -> float:
    """Run ``way`` once in this process; the rise of peak resident memory (MiB) it cost."""
    rgb = _frame(width, height)
    net = load_pretrained(2).deploy().eval()
    halo = receptive_radius(net)
    small = np.ascontiguousarray(rgb[: min(height, 2 * tile), : min(width, 2 * tile)])
    upscale_tiled(net, small, tile=tile, halo=halo)  # warm-up: lazy inits, thread pools
    run = whole_batch if way == "whole_batch" else lambda *a: upscale_tiled(a[0], a[1], tile=a[2], halo=a[3])
    before = _status_mb("VmRSS")
    out = run(net, rgb, tile, halo)
    rise = _status_mb("VmHWM") - before
    digest_to.write_text(hashlib.sha256(out.tobytes()).hexdigest())
    return rise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="3840x2160", help="LR frame WxH (default 3840x2160)")
    parser.add_argument("--tile", type=int, default=384, help="tile side in LR pixels (default: the CPU Upscaler's)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--digest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    if args.child:
        print(child(args.child, width, height, args.tile, args.digest))
        return 0
    rises: dict[str, list[float]] = {way: [] for way in WAYS}
    digests = set()
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for way in WAYS:
                digest = Path(tmp) / way
                command = [sys.executable, __file__, "--child", way, "--size", args.size, "--tile", str(args.tile),
                           "--digest", str(digest)]  # fmt: skip
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                rises[way].append(float(done.stdout.split()[-1]))
                digests.add(digest.read_text())
    if len(digests) != 1:
        raise SystemExit("rows and whole_batch outputs differ")
    halo = receptive_radius(load_pretrained(2).deploy())
    plan = tiling.plan_tiles(height, width, tile=args.tile, halo=halo)
    median = {way: statistics.median(values) for way, values in rises.items()}
    result = {
        "benchmark": "tiled_memory",
        "lr_size": [height, width],
        "scale": 2,
        "tile": args.tile,
        "halo": halo,
        "grid": list(plan.grid),
        "output_mb": height * width * 4 * 3 / 2**20,
        "peak_rise_mb": median,
        "peak_rise_mb_runs": rises,
        # None where the baseline fits in memory already held (tiny frames)
        "rows_over_whole_batch": median["rows"] / median["whole_batch"] if median["whole_batch"] > 0 else None,
    }
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
