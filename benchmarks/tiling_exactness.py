"""Why tiled inference is exact only as srsdk runs it: the evidence behind three choices.

    python benchmarks/tiling_exactness.py --json benchmarks/results/tiling-exactness-cpu.json

On Set14 ``comic.png`` (361x250) with the shipped network, crop blending and halo =
receptive radius, this compares tiled against whole-frame output with:

* ``batched``: all tiles through the network in one batch instead of one at a time
  (float outputs that differ, and the largest difference);
* ``conv_transpose``: the deconvolution evaluated with ``F.conv_transpose2d`` instead of
  srsdk's conv + pixel shuffle, at x2 on 2 threads (largest uint8 difference);
* ``interpolate``: the bicubic skip evaluated with ``F.interpolate`` instead of srsdk's
  fixed convolution, at x3 (largest uint8 difference);
* ``srsdk``: as shipped, for x2 and x3 (largest uint8 difference; 0 means exact).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report

from srsdk import tiling
from srsdk.inference import upscale_array, upscale_tiled
from srsdk.model import receptive_radius
from srsdk.pretrained import load_pretrained

PHOTO = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "eval" / "set14" / "comic.png"


def _uint8_difference(net: torch.nn.Module, rgb: np.ndarray, tile: int) -> int:
    whole = upscale_array(net, rgb)
    tiled = upscale_tiled(net, rgb, tile=tile, halo=receptive_radius(net))
    return int(np.abs(tiled.astype(np.int16) - whole).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    result: dict[str, object] = {"benchmark": "tiling_exactness", "image": PHOTO.name, "tile": args.tile,
                                 "threads": args.threads}  # fmt: skip

    net = load_pretrained(2).deploy()
    plan = tiling.plan_tiles(*rgb.shape[:2], tile=args.tile, halo=receptive_radius(net))
    batch = torch.from_numpy(tiling.pack(rgb, plan))
    with torch.inference_mode():
        whole = net(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float() / 255)[0]
        together = net(batch)
        apart = torch.cat([net(batch[i : i + 1]) for i in range(len(batch))])
    for name, outputs in (("batched", together), ("one_at_a_time", apart)):
        differing, largest = 0, 0.0
        for t in plan.tiles():
            y0, y1, x0, x1 = t.interior
            ours = outputs[t.index][:, (y0 - t.y) * 2 : (y1 - t.y) * 2, (x0 - t.x) * 2 : (x1 - t.x) * 2]
            delta = (ours - whole[:, y0 * 2 : y1 * 2, x0 * 2 : x1 * 2]).abs()
            differing += int((delta > 0).sum())
            largest = max(largest, float(delta.max()))
        result[name] = {"tiles": len(plan), "float_values_differing": differing, "of": whole.numel(),
                        "largest_float_difference": largest}  # fmt: skip

    result["srsdk_x2_uint8"] = _uint8_difference(net, rgb, args.tile)
    deconv = net.trunk.deconv
    deconv.forward = lambda x, output_size=None: F.conv_transpose2d(  # type: ignore[method-assign]
        x, deconv.weight, deconv.bias, stride=deconv.stride, padding=deconv.padding
    )
    result["conv_transpose_x2_uint8"] = _uint8_difference(net, rgb, args.tile)

    net3 = load_pretrained(3).deploy()
    result["srsdk_x3_uint8"] = _uint8_difference(net3, rgb, args.tile)
    net3.bicubic.forward = lambda x: F.interpolate(  # type: ignore[method-assign]
        x, scale_factor=3, mode="bicubic", align_corners=False
    )
    result["interpolate_x3_uint8"] = _uint8_difference(net3, rgb, args.tile)
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
