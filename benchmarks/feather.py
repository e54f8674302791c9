"""How much feather blending can do for this network at a too-small halo, and how much it does.

    python benchmarks/feather.py --json benchmarks/results/feather-cpu.json

On 240x240 crops of BSDS500 *training* photos (not the eval sets), with the shipped x2
network, tile 48 and halo 2 (the receptive radius is 10):

* ``edge_rms``: the RMS error (grey levels) of a tile's output against whole-frame output,
  by HR pixel distance from an edge the tile shares with a neighbour. Where it falls
  steeply, the best mix of two overlapping tiles (weights inversely proportional to their
  error variance, if their errors are independent) is close to crop mode's hard cut.
* per image, for ``crop`` and ``feather``: the RMS error of the whole output, the RMS error
  in the bands around the seams (``2 * halo`` LR pixels wide, where feather acts), and the
  seam step: per row across each vertical seam, the largest jump of the error between
  neighbouring pixels within 2 HR pixels of the seam, as an RMS over rows and seams.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report

from srsdk import tiling
from srsdk.inference import upscale_array, upscale_tiled
from srsdk.pretrained import load_pretrained

TRAIN = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "train" / "bsds500"


def edge_rms(net: torch.nn.Module, photos: list[np.ndarray], tile: int, scale: int) -> list[float]:
    """RMS error by HR distance from a tile's left edge, for tiles well inside the frame."""
    total, count = np.zeros(tile * scale), 0
    with torch.inference_mode():
        for rgb in photos:
            x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
            whole = net(x)[0]
            for left in range(40, rgb.shape[1] - tile - 40 + 1, 40):
                error = (net(x[:, :, :, left : left + tile])[0] - whole[:, :, left * scale : (left + tile) * scale]) * 255
                total += (error**2).mean(dim=(0, 1)).numpy()
                count += 1
    rms = np.sqrt(total / count)
    return [round(float(v), 4) for v in rms[: tile * scale // 2]]


def seam_errors(net: torch.nn.Module, rgb: np.ndarray, tile: int, halo: int, scale: int) -> dict[str, dict[str, float]]:
    whole = upscale_array(net, rgb).astype(np.float64)  # type: ignore[arg-type]
    plan = tiling.plan_tiles(rgb.shape[0], rgb.shape[1], tile=tile, halo=halo)
    seams = [span.interior[0] * scale for span in plan.cols.spans if span.interior[0] > 0]
    bands = np.zeros(whole.shape[1], dtype=bool)
    for seam in seams:
        bands[seam - halo * scale : seam + halo * scale] = True
    found = {}
    for mode in ("crop", "feather"):
        error = upscale_tiled(net, rgb, tile=tile, halo=halo, blend=mode).astype(np.float64) - whole  # type: ignore[arg-type]
        jumps = np.abs(np.diff(error, axis=1))  # jumps[:, j] = |e[:, j + 1] - e[:, j]|
        steps = np.stack([jumps[:, seam - 3 : seam + 2].max(axis=1) for seam in seams])
        found[mode] = {
            "rms": float(np.sqrt(np.mean(error**2))),
            "rms_in_seam_bands": float(np.sqrt(np.mean(error[:, bands] ** 2))),
            "seam_step_rms": float(np.sqrt(np.mean(steps**2))),
        }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--images", type=int, default=8, help="BSDS500 training photos to use")
    parser.add_argument("--photos", type=Path, default=TRAIN)
    args = parser.parse_args(argv)
    tile, halo, scale, size = 48, 2, 2, 240
    files = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.images]
    photos = [np.asarray(Image.open(f).convert("RGB"))[:size, :size] for f in files]
    net = load_pretrained(scale).deploy()
    per_image = {f.name: seam_errors(net, rgb, tile, halo, scale) for f, rgb in zip(files, photos, strict=True)}
    ratios = {
        key: [v["feather"][key] / v["crop"][key] for v in per_image.values()]
        for key in ("rms", "rms_in_seam_bands", "seam_step_rms")
    }
    result = {
        "benchmark": "feather",
        "photos": f"{args.photos.name}, first {len(files)} files, top-left {size}x{size}",
        "scale": scale,
        "tile": tile,
        "halo": halo,
        "edge_rms": edge_rms(net, photos, tile, scale),
        "images": per_image,
        "feather_over_crop": {key: {"min": min(v), "max": max(v), "mean": float(np.mean(v))} for key, v in ratios.items()},
    }
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
