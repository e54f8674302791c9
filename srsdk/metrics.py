"""Image-quality metrics on the luma channel, as the SR literature computes them.

All functions take two same-shaped images (``HxW`` luma or ``HxWx3`` uint8 RGB, numpy)
and compute in float64 on the 0-255 scale:

* :func:`psnr` -- peak signal-to-noise ratio in dB (peak 255);
* :func:`ssim` -- mean SSIM with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
  K2 = 0.03, over the "valid" region, as Wang et al.'s reference ``ssim_index.m``;
* :func:`gmsd` -- gradient magnitude similarity deviation (Xue et al. 2014): 2x2 mean
  filter and stride-2 downsampling, 3x3 Prewitt gradients, c = 170, the standard
  deviation of the similarity map; 0 for identical images, higher is worse.

:func:`luma` is ITU-R BT.601 Y with MATLAB ``rgb2ycbcr``'s coefficients (16-235), kept in
floating point as the common Python evaluations do (bicubic Set5 x2 = 33.67 dB; rounding
Y to integers, as MATLAB does for uint8 input, gives 33.64 dB).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from srsdk.errors import ShapeError


def luma(rgb: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 RGB -> ``HxW`` float64 BT.601 Y on the 16-235 scale (not rounded)."""
    if rgb.ndim == 2:
        return rgb.astype(np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ShapeError(f"expected HxW luma or HxWx3 RGB, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:  # floats in [0, 1] would be scored on the wrong scale
        raise ShapeError(f"expected uint8 RGB, got {rgb.dtype}")
    x = rgb.astype(np.float64) / 255.0
    y = 16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]
    return y


def shave(image: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels at each edge (the SR convention: ``border`` = scale)."""
    if border < 0 or 2 * border >= min(image.shape[:2]):
        raise ShapeError(f"shave: a border of {border} leaves nothing of a {image.shape[0]}x{image.shape[1]} image")
    if border == 0:
        return image
    return image[border:-border, border:-border]


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape:
        raise ShapeError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ShapeError(f"empty images: {a.shape}")
    ya, yb = luma(a), luma(b)
    return torch.from_numpy(ya)[None, None], torch.from_numpy(yb)[None, None]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of the luma of ``a`` against ``b`` (``inf`` when identical)."""
    ya, yb = _pair(a, b)
    mse = float(((ya - yb) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _gaussian_blur(maps: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """'Valid' Gaussian filtering of ``(N,1,H,W)`` maps, as two separable passes."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return F.conv2d(F.conv2d(maps, g.view(1, 1, 1, size)), g.view(1, 1, size, 1))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luma of ``a`` against ``b`` (1 when identical)."""
    x, y = _pair(a, b)
    if min(x.shape[-2:]) < 11:
        raise ShapeError(f"SSIM needs images of at least 11x11, got {tuple(x.shape[-2:])}")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my, xx, yy, xy = _gaussian_blur(torch.cat([x, y, x * x, y * y, x * y]))
    sxx, syy, sxy = xx - mx**2, yy - my**2, xy - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(m.mean())


def gmsd(a: np.ndarray, b: np.ndarray) -> float:
    """GMSD of the luma of ``a`` (distorted) against ``b`` (reference); 0 when identical."""
    x, y = _pair(a, b)
    mean2 = torch.full((1, 1, 2, 2), 0.25, dtype=torch.float64)
    prewitt = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=torch.float64)[None, None] / 3.0

    def grad_mag(img: torch.Tensor) -> torch.Tensor:
        # MATLAB conv2(..., 'same') with a 2x2 kernel pads only after the last row/column.
        img = F.conv2d(F.pad(img, (0, 1, 0, 1)), mean2)[..., ::2, ::2]
        gx = F.conv2d(img, prewitt, padding=1)
        gy = F.conv2d(img, prewitt.transpose(2, 3), padding=1)
        return torch.sqrt(gx**2 + gy**2)

    c = 170.0
    gx, gy = grad_mag(x), grad_mag(y)
    sim = (2 * gx * gy + c) / (gx**2 + gy**2 + c)
    return float(sim.std(unbiased=True))
