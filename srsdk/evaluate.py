"""Evaluation on folders of images, the SR literature's protocol.

HR is cropped to a multiple of the scale, LR is the bicubic (antialiased) downscale,
the network upscales RGB, and PSNR / SSIM / GMSD are computed on the BT.601 luma with
``scale`` pixels shaved at each border. Bicubic upscaling is evaluated in the same run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srsdk import metrics
from srsdk.data import downscale, modcrop
from srsdk.errors import InputError, ShapeError
from srsdk.io.image import images_in, read_rgb

Upscale = Callable[[np.ndarray], np.ndarray]
"""uint8 ``HxWx3`` LR -> uint8 ``(sH)x(sW)x3`` HR."""


@dataclasses.dataclass
class Report:
    """Results of :func:`evaluate`: ``datasets`` in the JSON shape, ``failures`` apart."""

    datasets: dict[str, dict[str, Any]]
    failures: list[str]


PSNR_CAP = 100.0
"""The PSNR-Y an image reproduced exactly (infinite PSNR, e.g. a flat one) counts as, so a
dataset's mean stays finite and its JSON valid."""


def _scores(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float, float]:
    a, b = metrics.shave(sr, scale), metrics.shave(hr, scale)
    return min(metrics.psnr(a, b), PSNR_CAP), metrics.ssim(a, b), metrics.gmsd(a, b)


def evaluate(
    folders: Sequence[Path], *, scale: int, upscale: Upscale, progress: bool = False
) -> Report:
    """Score ``upscale`` and bicubic on every image of each folder (keyed by lower-case name).

    Unreadable images (and entries named as images that are no files: a link to a missing
    file, a pipe) are recorded in ``failures`` and skipped; the rest still count.
    """
    from tqdm import tqdm

    datasets: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    names = [Path(folder).resolve().name.lower() for folder in folders]
    if len(set(names)) != len(names):
        raise InputError(f"folder names must differ (case-insensitively): {', '.join(names)}")
    for folder in folders:
        name = Path(folder).resolve().name.lower()
        files, unreadable = images_in(Path(folder))
        failures += unreadable
        ours: list[tuple[float, float, float]] = []
        bicubic: list[tuple[float, float, float]] = []
        for path in tqdm(files, desc=name, disable=not progress, unit="img", leave=False):
            try:
                image = read_rgb(path)
            except InputError as e:
                failures.append(str(e))
                continue
            hr = modcrop(image, scale)
            if too_small(hr, scale):
                failures.append(f"{path}: {image.size[0]}x{image.size[1]} is too small to evaluate at x{scale}")
                continue
            lr = downscale(hr, scale)
            hr_arr = np.asarray(hr)
            try:
                sr = upscale(np.asarray(lr))
            except ShapeError as e:  # an engine's profile does not take this size
                failures.append(f"{path}: {e}")
                continue
            ours.append(_scores(sr, hr_arr, scale))
            bic = np.asarray(lr.resize(hr.size, Image.Resampling.BICUBIC))
            bicubic.append(_scores(bic, hr_arr, scale))
        if not ours:
            failures.append(f"{folder}: no image could be evaluated")
            continue
        datasets[name] = {"n": len(ours), **_means(ours), "bicubic": _means(bicubic)}
    return Report(datasets=datasets, failures=failures)


def too_small(hr: Image.Image, scale: int) -> bool:
    """Whether ``hr``, shaved by ``scale`` pixels, leaves no 11x11 SSIM window."""
    return min(hr.size) < 2 * scale + 11


def _means(rows: list[tuple[float, float, float]]) -> dict[str, float]:
    arr = np.asarray(rows, dtype=np.float64)
    psnr, ssim, gmsd = arr.mean(axis=0)
    return {"psnr_y": round(float(psnr), 4), "ssim_y": round(float(ssim), 5), "gmsd": round(float(gmsd), 5)}
