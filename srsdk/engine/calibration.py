"""INT8 calibration data: real photos, degraded exactly as in training and evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from srsdk.data import downscale, modcrop
from srsdk.engine.config import ShapeProfile
from srsdk.errors import InputError
from srsdk.io.image import image_files, read_rgb
from srsdk.pretrained import sha256


def check_apart(calib: Path, gate: Path) -> None:
    """Refuse calibration photos that the quality gate also scores (by their bytes, whatever
    their names): an INT8 engine calibrated on its own test images would flatter its gate."""
    if not calib.is_dir():
        return  # calibration_batches says so
    scored = {sha256(path): path.name for path in image_files(gate)}
    shared = sorted(scored[digest] for path in image_files(calib) if (digest := sha256(path)) in scored)
    if shared:
        raise InputError(
            f"--calib {calib}: {len(shared)} of its images are the quality gate's ({', '.join(shared[:3])}"
            f"{', ...' if len(shared) > 3 else ''}); calibrate on training photos, never on what scores the engine"
        )


def calibration_batches(folder: Path, *, scale: int, count: int, profile: ShapeProfile) -> Iterator[torch.Tensor]:
    """Up to ``count`` LR images from ``folder`` (sorted, so every build sees the same), as
    ``(1, 3, h, w)`` float tensors in ``[0, 1]``, centre-cropped to the profile's ``opt``
    size at most and skipped where smaller than its ``min``."""
    files = image_files(folder) if folder.is_dir() else []
    if not files:
        raise InputError(f"no calibration images in {folder} (--calib DIR: a folder of photos)")
    used = 0
    for path in files:
        if used == count:
            return
        lr = np.asarray(downscale(modcrop(read_rgb(path), scale), scale))
        h, w = min(lr.shape[0], profile.opt[0]), min(lr.shape[1], profile.opt[1])
        if h < profile.min[0] or w < profile.min[1]:
            continue
        top, left = (lr.shape[0] - h) // 2, (lr.shape[1] - w) // 2
        crop = np.ascontiguousarray(lr[top : top + h, left : left + w])
        yield torch.from_numpy(crop).permute(2, 0, 1)[None].float().div_(255)
        used += 1
    if used == 0:
        raise InputError(f"no image in {folder} is at least {profile.min[0]}x{profile.min[1]} after downscaling")
