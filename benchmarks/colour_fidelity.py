"""What ``srsdk eval`` does not see: PSNR of the colour differences (Cb, Cr) next to the luma's.

    python benchmarks/colour_fidelity.py DIR [DIR ...] --json benchmarks/results/colour-fidelity-x2.json \\
        --weights A.safetensors [B.safetensors ...]

For each weights file and folder, the evaluation protocol of ``srsdk eval`` (HR cropped to
a multiple of the scale, bicubic LR, ``scale`` pixels shaved) scores the deployed output
and bicubic on BT.601 Y, Cb and Cr (MATLAB ``rgb2ycbcr``'s coefficients, 0-255 peak),
each a mean over the folder's images. The SR literature reports Y only; a loss that
weights colour down (``srsdk train --chroma-weight``) is checked here for what it costs
the colour. Images ``srsdk eval`` skips (unreadable, too small) are skipped here too.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from srsdk.data import downscale, modcrop
from srsdk.errors import InputError
from srsdk.evaluate import too_small
from srsdk.inference import upscale_array
from srsdk.io.image import image_files, read_rgb
from srsdk.metrics import shave
from srsdk.pretrained import load_weights, sha256

_YCBCR = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0
"""MATLAB ``rgb2ycbcr``'s matrix on RGB in [0, 255] (offsets dropped: PSNR is of differences)."""
CHANNELS = ("y", "cb", "cr")


def channel_psnr(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """PSNR in dB of each of Y, Cb and Cr of uint8 RGB ``a`` against ``b`` (capped at 100)."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) @ _YCBCR.T
    mse = (diff**2).reshape(-1, 3).mean(axis=0)
    return {c: 100.0 if m == 0 else min(100.0, 10 * math.log10(255.0**2 / m)) for c, m in zip(CHANNELS, mse, strict=True)}


def score_folder(folder: Path, scale: int, upscale: functools.partial[np.ndarray]) -> dict[str, object]:
    """Mean Y / Cb / Cr PSNR of ``upscale`` and of bicubic over ``folder``'s images."""
    ours: list[dict[str, float]] = []
    bicubic: list[dict[str, float]] = []
    for path in image_files(folder):
        try:
            hr = modcrop(read_rgb(path), scale)
        except InputError as e:
            print(f"skipped: {e}", file=sys.stderr)
            continue
        if too_small(hr, scale):  # as srsdk eval skips it
            print(f"skipped: {path} is too small to evaluate at x{scale}", file=sys.stderr)
            continue
        lr = downscale(hr, scale)
        hr_arr = shave(np.asarray(hr), scale)
        ours.append(channel_psnr(shave(upscale(np.asarray(lr)), scale), hr_arr))
        bic = np.asarray(lr.resize(hr.size, Image.Resampling.BICUBIC))
        bicubic.append(channel_psnr(shave(bic, scale), hr_arr))

    def mean(rows: list[dict[str, float]]) -> dict[str, float]:
        return {f"psnr_{c}": round(float(np.mean([r[c] for r in rows])), 4) for c in CHANNELS}

    return {"n": len(ours), **mean(ours), "bicubic": mean(bicubic)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("--weights", nargs="+", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    results = []
    for path in args.weights:
        net = load_weights(path).deploy()
        upscale = functools.partial(upscale_array, net)
        datasets = {folder.resolve().name.lower(): score_folder(folder, net.scale, upscale) for folder in args.folders}
        results.append({"weights": str(path), "weights_sha256": sha256(path), "datasets": datasets})
        print(f"{path}: {json.dumps(datasets)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
