"""Pack and blend written with plain torch slicing: the reference the native and CUDA
kernels are tested against, and the baseline ``benchmarks/tiling.py`` measures them by.

Same contract as :func:`srsdk.tiling.pack` and :func:`srsdk.tiling.blend` on torch tensors
(any device), one tile at a time; the arithmetic is the same operations in the same order,
so results agree bit for bit on finite values. Not on non-finite ones: in feather mode the
native and CUDA kernels skip a source of weight 0, where this multiplies it (0 * inf is NaN,
which becomes 0; theirs keeps the other tile's value).
"""

from __future__ import annotations

import torch

from srsdk.tiling import BlendMode, TilePlan, feather_weights


def pack(frame: torch.Tensor, plan: TilePlan, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 ``HxWx3`` -> ``N x 3 x th x tw`` of ``dtype``, divided by 255."""
    th, tw = plan.tile_shape
    out = torch.empty((len(plan), 3, th, tw), dtype=dtype, device=frame.device)
    for tile in plan.tiles():
        window = frame[tile.y : tile.y + th, tile.x : tile.x + tw].permute(2, 0, 1)
        out[tile.index] = (window.to(torch.float32) / 255).to(dtype)
    return out


def blend(batch: torch.Tensor, plan: TilePlan, *, scale: int, mode: BlendMode = "crop") -> torch.Tensor:
    """``N x 3 x th*s x tw*s`` -> uint8 ``(H*s)x(W*s)x3``."""
    height, width = plan.frame_shape
    s = scale
    if mode == "crop":
        value = torch.empty((3, height * s, width * s), dtype=torch.float32, device=batch.device)
        for tile in plan.tiles():
            y0, y1, x0, x1 = tile.interior
            local = batch[tile.index, :, (y0 - tile.y) * s : (y1 - tile.y) * s, (x0 - tile.x) * s : (x1 - tile.x) * s]
            value[:, y0 * s : y1 * s, x0 * s : x1 * s] = local.to(torch.float32)
    else:
        th, tw = plan.tile_shape
        ry = [torch.from_numpy(w).to(batch.device) for w in feather_weights(plan.rows, s)]
        rx = [torch.from_numpy(w).to(batch.device) for w in feather_weights(plan.cols, s)]
        total = torch.zeros((3, height * s, width * s), dtype=torch.float32, device=batch.device)
        weight = torch.zeros((height * s, width * s), dtype=torch.float32, device=batch.device)
        columns = len(plan.cols.spans)
        for tile in plan.tiles():
            w = ry[tile.index // columns][:, None] * rx[tile.index % columns][None, :]
            rows = slice(tile.y * s, (tile.y + th) * s)
            cols = slice(tile.x * s, (tile.x + tw) * s)
            total[:, rows, cols] += w * batch[tile.index].to(torch.float32)
            weight[rows, cols] += w
        value = total / weight
    return (value.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
