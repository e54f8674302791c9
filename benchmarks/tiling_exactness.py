"""Why tiled inference is exact only as srsdk runs it: the evidence behind three choices.

    python benchmarks/tiling_exactness.py --json benchmarks/results/tiling-exactness-cpu.json

On Set14 ``comic.png`` (361x250) with the shipped network, crop blending and halo =
receptive radius, this compares tiled against whole-frame output with:

* ``srsdk_x2`` / ``srsdk_x3``: as shipped, tiles one at a time;
* ``*_batched``: all tiles through the network in one batch;
* ``conv_transpose_x2``: the deconvolution evaluated with ``F.conv_transpose2d`` instead of
  srsdk's conv + pixel shuffle;
* ``interpolate_x3``: the bicubic skip evaluated with ``F.interpolate`` instead of srsdk's
  fixed convolution.

Each reports the float outputs that differ (tile interiors against the whole frame), the
largest difference, and the largest difference after rounding to uint8 (0 = exact).

``noise_uint8_values_differing``: the uint8 values tiled output changes (as shipped, one tile
at a time) on a 48x64 frame of uniform noise at x2, x3 and x4, for tiles 25, 33 and 64 (one
tile: the control): where the floats move at all, a value that lands that close to a .5
rounding boundary flips a level.
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


def _uint8_values_differing(net: torch.nn.Module, rgb: np.ndarray, tile: int) -> int:
    tiled = upscale_tiled(net, rgb, tile=tile, halo=receptive_radius(net))
    return int((tiled != upscale_array(net, rgb)).sum())


def _float_difference(net: torch.nn.Module, rgb: np.ndarray, tile: int, *, batched: bool) -> dict[str, object]:
    """Tiled (interiors) against whole-frame network output, before rounding to uint8."""
    s = net.arch.scale
    plan = tiling.plan_tiles(*rgb.shape[:2], tile=tile, halo=receptive_radius(net))
    batch = torch.from_numpy(tiling.pack(rgb, plan))
    with torch.inference_mode():
        whole = net(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float() / 255)[0]
        step = len(plan) if batched else 1
        outputs = torch.cat([net(batch[i : i + step]) for i in range(0, len(plan), step)])
    differing, largest = 0, 0.0
    for t in plan.tiles():
        y0, y1, x0, x1 = t.interior
        ours = outputs[t.index][:, (y0 - t.y) * s : (y1 - t.y) * s, (x0 - t.x) * s : (x1 - t.x) * s]
        delta = (ours - whole[:, y0 * s : y1 * s, x0 * s : x1 * s]).abs()
        differing += int((delta > 0).sum())
        largest = max(largest, float(delta.max()))
    return {"tiles": len(plan), "float_values_differing": differing, "of": whole.numel(),
            "largest_float_difference": largest, "uint8_largest_difference": _uint8_difference(net, rgb, tile)}  # fmt: skip


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
    result["srsdk_x2"] = _float_difference(net, rgb, args.tile, batched=False)
    result["srsdk_x2_batched"] = _float_difference(net, rgb, args.tile, batched=True)
    deconv = net.trunk.deconv
    deconv.forward = lambda x, output_size=None: F.conv_transpose2d(  # type: ignore[method-assign]
        x, deconv.weight, deconv.bias, stride=deconv.stride, padding=deconv.padding
    )
    result["conv_transpose_x2"] = _float_difference(net, rgb, args.tile, batched=False)
    result["conv_transpose_x2_batched"] = _float_difference(net, rgb, args.tile, batched=True)

    net3 = load_pretrained(3).deploy()
    result["srsdk_x3"] = _float_difference(net3, rgb, args.tile, batched=False)
    net3.bicubic.forward = lambda x: F.interpolate(  # type: ignore[method-assign]
        x, scale_factor=3, mode="bicubic", align_corners=False
    )
    result["interpolate_x3"] = _float_difference(net3, rgb, args.tile, batched=False)
    noise = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    result["noise_uint8_values_differing"] = {
        f"x{s}": {"of": noise.size * s * s, **{f"tile_{t}": _uint8_values_differing(load_pretrained(s).deploy(), noise, t)
                                               for t in (25, 33, 64)}}
        for s in (2, 3, 4)
    }  # fmt: skip
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
