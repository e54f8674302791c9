"""Inference with a deploy graph, whole-image or tiled: uint8 RGB in, uint8 RGB out."""

from __future__ import annotations

import numpy as np
import torch

from srsdk.errors import InputError, ShapeError, check_int
from srsdk.model import DeployNet, SPNet
from srsdk.row_blend import RowBlend
from srsdk.tiling import BlendMode, pack, pack_row, plan_tiles
from srsdk.tiling import blend as blend_tiles


@torch.inference_mode()
def upscale_array(net: DeployNet, rgb: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 RGB -> ``(sH)x(sW)x3`` uint8 RGB, clamped and rounded."""
    _check_deploy(net)
    _check_rgb(rgb)
    param = next(net.parameters())
    x = torch.from_numpy(np.require(rgb, requirements=['C', 'W'])).to(param.device).permute(2, 0, 1)[None]
    y = net(x.to(net.input_dtype()).div_(255))
    out = y[0].clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0)
    return out.cpu().numpy()


@torch.inference_mode()
def upscale_tiled(
    net: DeployNet,
    rgb: np.ndarray,
    *,
    tile: int | tuple[int, int],
    halo: int,
    blend: BlendMode = "crop",
    batch: int = 1,
) -> np.ndarray:
    """:func:`upscale_array` in overlapping tiles (see :mod:`srsdk.tiling`).

    With ``blend="crop"`` and ``halo >= receptive_radius(net)`` the result equals
    :func:`upscale_array` (tested with ``batch=1``), but for float rounding: the convolutions
    of a tile and of the whole frame may round differently, which flips a value landing on a
    .5 boundary by one level (README, Tiling). ``batch`` tiles run through the
    network together; on CPU they are taken from one row of the grid at a time (at most that
    row's tiles a call), and blended a row at a time, so a large image's tile outputs never
    all exist at once. All tiles as one batch also matched on Set14 ``comic.png``
    (``benchmarks/tiling_exactness.py``), but only one at a time is tested across images.
    """
    _check_deploy(net)
    batch = check_int("batch", batch, minimum=1, error=ShapeError)
    _check_rgb(rgb)
    if any(stride < 0 for stride in rgb.strides):  # pack reads non-negative strides only
        rgb = np.ascontiguousarray(rgb)
    plan = plan_tiles(rgb.shape[0], rgb.shape[1], tile=tile, halo=halo)
    param = next(net.parameters())
    if param.device.type != "cpu":  # the device holds the whole batch
        tiles = torch.from_numpy(pack(rgb, plan)).to(param.device, net.input_dtype())
        outputs = torch.cat([net(tiles[i : i + batch]) for i in range(0, len(tiles), batch)])
        return blend_tiles(outputs.float().cpu(), plan, scale=net.arch.scale, mode=blend).numpy()
    assembled = RowBlend(plan, scale=net.arch.scale, mode=blend)
    for row in range(plan.grid[0]):
        tiles = torch.from_numpy(pack_row(rgb, plan, row)).to(net.input_dtype())
        outputs = torch.cat([net(tiles[i : i + batch]) for i in range(0, len(tiles), batch)])
        assembled.add(outputs.float().numpy())
    return assembled.frame


def _check_deploy(net: DeployNet) -> None:
    if isinstance(net, SPNet) and not isinstance(net, DeployNet):  # the training graph: three maps, not an image
        raise InputError("net: expected a DeployNet, got the training SPNet (call .deploy() on it)")
    if not isinstance(getattr(net, "_orig_mod", net), DeployNet):  # torch.compile(net) wraps it
        raise InputError(f"net: expected a DeployNet (load_pretrained(scale).deploy()), got {type(net).__name__}")


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray):  # the Upscaler is the one that takes tensors and PIL images
        raise ShapeError(f"expected a non-empty HxWx3 uint8 numpy array, got {type(rgb).__name__} (Upscaler takes others)")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ShapeError(f"expected a non-empty HxWx3 uint8 array, got {rgb.dtype} {rgb.shape}")
