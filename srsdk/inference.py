"""Whole-image inference with a deploy graph: uint8 RGB in, uint8 RGB out."""

from __future__ import annotations

import numpy as np
import torch

from srsdk.errors import ShapeError
from srsdk.model import DeployNet


@torch.inference_mode()
def upscale_array(net: DeployNet, rgb: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 RGB -> ``(sH)x(sW)x3`` uint8 RGB, clamped and rounded."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ShapeError(f"expected a non-empty HxWx3 uint8 array, got {rgb.dtype} {rgb.shape}")
    param = next(net.parameters())
    x = torch.from_numpy(np.require(rgb, requirements=['C', 'W'])).to(param.device).permute(2, 0, 1)[None]
    y = net(x.to(param.dtype).div_(255))
    out = y[0].clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0)
    return out.cpu().numpy()
