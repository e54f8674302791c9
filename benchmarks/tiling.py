"""Fused pack + blend against the torch reference and the memory-copy floor.

    python benchmarks/tiling.py --json benchmarks/results/tiling-cpu.json
    python benchmarks/tiling.py --device cuda --json $OUT/tiling-cuda.json

One 1920x1080 uint8 frame, x2 (a 3840x2160 output), 256-pixel tiles with the shipped x2
network's receptive radius as halo, float32 batches, crop blending. The network itself is
not run: the blend reads a batch of the right shape filled with values in [0, 1].
Reported, all in the same process on the same buffers:

* ``pack_blend_speedup_vs_torch``: torch-reference time / native time (pack + blend);
* ``pack_1_thread``, ``blend_1_thread`` (CPU): the native kernels on one thread;
* ``pack_blend_vs_memcpy``: native time / the time to copy the same bytes, i.e. one numpy
  copy of the pack's output batch plus one of the blend's input batch (the two large
  streams the kernels must move; numpy's copy runs on one core). On CUDA the floor is
  ``Tensor.copy_`` of the same two buffers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _targets import judge
from _timing import report, timeit

from srsdk import tiling, tiling_torch
from srsdk.model import receptive_radius
from srsdk.pretrained import load_pretrained


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--size", default="1920x1080", help="input frame WxH")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    width, height = (int(v) for v in args.size.split("x"))
    scale = 2
    halo = receptive_radius(load_pretrained(scale).deploy())
    plan = tiling.plan_tiles(height, width, tile=args.tile, halo=halo)
    th, tw = plan.tile_shape
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    batch = rng.random((len(plan), 3, th * scale, tw * scale), dtype=np.float32)
    cuda = args.device == "cuda"
    timed: dict[str, dict[str, float]] = {}

    def measure(name: str, run: object) -> None:
        timed[name] = timeit(run, repeats=args.repeats, cuda=cuda)  # type: ignore[arg-type]
        print(f"{name:24s} {timed[name]['median_ms']:9.2f} ms", file=sys.stderr)

    if cuda:
        frame_t, batch_t = torch.from_numpy(frame).cuda(), torch.from_numpy(batch).cuda()
        packed_t = tiling.pack(frame_t, plan)
        packed_copy_t, batch_copy_t = torch.empty_like(packed_t), torch.empty_like(batch_t)
        measure("pack", lambda: tiling.pack(frame_t, plan))
        measure("blend", lambda: tiling.blend(batch_t, plan, scale=scale))
        measure("torch_pack", lambda: tiling_torch.pack(frame_t, plan))
        measure("torch_blend", lambda: tiling_torch.blend(batch_t, plan, scale=scale))
        measure("memcpy_pack_bytes", lambda: packed_copy_t.copy_(packed_t))
        measure("memcpy_blend_bytes", lambda: batch_copy_t.copy_(batch_t))
    else:
        frame_t, batch_t = torch.from_numpy(frame), torch.from_numpy(batch)
        packed = tiling.pack(frame, plan)
        packed_copy, batch_copy_np = np.empty_like(packed), np.empty_like(batch)
        measure("pack", lambda: tiling.pack(frame, plan))
        measure("blend", lambda: tiling.blend(batch, plan, scale=scale))
        measure("torch_pack", lambda: tiling_torch.pack(frame_t, plan))
        measure("torch_blend", lambda: tiling_torch.blend(batch_t, plan, scale=scale))
        measure("memcpy_pack_bytes", lambda: np.copyto(packed_copy, packed))
        measure("memcpy_blend_bytes", lambda: np.copyto(batch_copy_np, batch))
        # The same kernels on one thread, to show what the second core buys.
        native = tiling._load_native()
        ys, xs = (np.array([s.start for s in axis.spans], np.int32) for axis in (plan.rows, plan.cols))
        rows, cols = (tiling.blend_table(axis, scale, "crop").as_tuple() for axis in (plan.rows, plan.cols))
        out = np.empty((height * scale, width * scale, 3), np.uint8)
        measure("pack_1_thread", lambda: native.pack(frame, ys, xs, th, tw, packed_copy, threads=1))
        measure("blend_1_thread", lambda: native.blend(batch, *plan.grid, rows, cols, True, out, threads=1))

    def total(*names: str) -> float:
        return sum(timed[n]["median_ms"] for n in names)

    native = total("pack", "blend")
    result = {
        "benchmark": "tiling",
        "device": args.device,
        "frame": [height, width],
        "scale": scale,
        "tile": args.tile,
        "halo": halo,
        "tiles": len(plan),
        "batch_bytes": {"pack_output": int(batch.nbytes // scale**2), "blend_input": int(batch.nbytes)},
        "native_parallel": None if cuda else tiling._load_native().parallel,
        "timings": timed,
        "pack_blend_ms": native,
        "pack_blend_speedup_vs_torch": total("torch_pack", "torch_blend") / native,
        "pack_blend_vs_memcpy": native / total("memcpy_pack_bytes", "memcpy_blend_bytes"),
    }
    if not cuda:  # the targets are for the CPU
        result["targets"] = judge(result)
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
