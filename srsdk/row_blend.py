"""Blending a tiled frame's network output one row of tiles at a time, on CPU.

:func:`srsdk.tiling.blend` takes every tile's output at once: for a large frame, a float
batch several times the size of the uint8 result. :class:`RowBlend` takes the outputs a grid
row at a time (the tiles :func:`srsdk.tiling.pack_row` packs) and writes each HR row as soon
as every tile it reads has arrived, through the same native blend, so the frame is the same
byte for byte. The CPU :class:`~srsdk.upscaler.Upscaler` and
:func:`~srsdk.inference.upscale_tiled` assemble frames with it.
"""

from __future__ import annotations

import numpy as np

from srsdk.errors import ShapeError, check_int
from srsdk.tiling import BLEND_MODES, BlendMode, TilePlan, _load_native, blend_table, check_plan

__all__ = ["RowBlend"]


class RowBlend:
    """:func:`srsdk.tiling.blend` one grid row of output tiles at a time, for CPU (numpy) outputs.

    Each :meth:`add` takes the next row's ``len(plan.cols.spans) x 3 x th*s x tw*s`` outputs
    and writes every HR row it finishes. Of a row of tiles only the few HR rows a later
    feather seam reads are kept (copied; at most ``scale`` of them), none in crop mode. So
    the outputs of a large frame's tiles never all exist at once: ``blend`` needs the
    whole float32 batch, 4.7 times the uint8 result for 384-pixel tiles with a halo of 10 on
    a 3840x2160 frame, where one row of tiles is a sixth of that. :attr:`frame` equals
    ``blend`` of the whole batch, byte for byte (same sources, same order, same
    arithmetic).
    """

    def __init__(self, plan: TilePlan, *, scale: int, mode: BlendMode = "crop") -> None:
        if mode not in BLEND_MODES:
            raise ShapeError(f"blend: expected one of {BLEND_MODES}, got {mode!r}")
        check_plan(plan)
        self.scale = check_int("scale", scale, minimum=1, error=ShapeError)
        self.plan, self.mode = plan, mode
        height, width = plan.frame_shape
        self._frame = np.empty((height * self.scale, width * self.scale, 3), np.uint8)
        self._rows = blend_table(plan.rows, self.scale, mode)
        self._cols = blend_table(plan.cols, self.scale, mode)
        self._next = 0
        offsets, index, local = self._rows.offsets, self._rows.index, self._rows.local
        first, last = index[offsets[:-1]], index[offsets[1:] - 1]  # sources come in span order
        grid_rows = plan.grid[0]
        # Grid row r finishes the HR rows whose last source it is: bands[r] = (lo, mid, hi),
        # where [lo, mid) also reads earlier rows (a feather seam) and [mid, hi) row r alone.
        self._bands: list[tuple[int, int, int]] = []
        # Of grid row j, the local HR rows [a, b) later seams read, and the last row that reads them.
        self._keep: dict[int, tuple[int, int]] = {}
        self._reader: dict[int, int] = {}
        for r in range(grid_rows):
            hr = np.flatnonzero(last == r)
            lo, hi = (int(hr[0]), int(hr[-1]) + 1) if len(hr) else (0, 0)
            mid = lo + int(np.count_nonzero(first[lo:hi] < r))
            self._bands.append((lo, mid, hi))
            sources = slice(int(offsets[lo]), int(offsets[mid]))
            for j, (a, b) in _local_ranges(index[sources], local[sources]).items():
                if j < r:
                    old = self._keep.get(j, (a, b))
                    self._keep[j], self._reader[j] = (min(a, old[0]), max(b, old[1])), r
        self._held: dict[int, tuple[int, np.ndarray]] = {}  # grid row -> (a, its local rows a:b)

    @property
    def done(self) -> bool:
        """Whether every row of tiles has been added."""
        return self._next == self.plan.grid[0]

    @property
    def frame(self) -> np.ndarray:
        """The uint8 ``(H*s)x(W*s)x3`` frame, once every row has been added."""
        if not self.done:
            raise ShapeError(f"frame: {self.plan.grid[0] - self._next} of {self.plan.grid[0]} rows of tiles not added yet")
        return self._frame

    def add(self, tiles: np.ndarray) -> None:
        """Blend the next grid row's output tiles (float32 or float16, any strides; the
        array is not used after this call returns, so one buffer may serve every row)."""
        if self.done:
            raise ShapeError(f"tiles: all {self.plan.grid[0]} rows of tiles were already added")
        if not isinstance(tiles, np.ndarray):
            raise ShapeError(f"tiles: expected a numpy array, got {type(tiles).__name__}")
        th, tw = self.plan.tile_shape
        cols = self.plan.grid[1]
        expected = (cols, 3, th * self.scale, tw * self.scale)
        if tiles.dtype.name not in ("float32", "float16") or tiles.shape != expected:
            raise ShapeError(f"tiles: expected float32/float16 of shape {expected}, got {tiles.dtype} {tiles.shape}")
        row, native = self._next, tiles.dtype.newbyteorder("=")
        offsets, index, local, weight = self._rows.as_tuple()
        lo, mid, hi = self._bands[row]
        blend = _load_native().blend
        if mid > lo:  # a feather seam: the rows it reads from each grid row, stacked
            k0, k1 = int(offsets[lo]), int(offsets[mid])
            ranges = _local_ranges(index[k0:k1], local[k0:k1])
            top = min(ranges)
            parts = []
            for j in range(top, row + 1):
                a, b = ranges.get(j, (0, 0))
                kept_from, kept = self._held[j] if j < row else (0, tiles)
                parts.append(kept[:, :, a - kept_from : b - kept_from])
            batch = np.zeros((len(parts) * cols, 3, max(p.shape[2] for p in parts), tw * self.scale),
                             np.result_type(*parts).newbyteorder("="))  # fmt: skip
            for n, part in enumerate(parts):
                batch[n * cols : (n + 1) * cols, :, : part.shape[2]] = part
            moved = np.array([ranges.get(j, (0, 0))[0] for j in range(top, row + 1)], np.int32)
            seam = (offsets[lo : mid + 1] - k0, index[k0:k1] - top, local[k0:k1] - moved[index[k0:k1] - top], weight[k0:k1])
            blend(batch, len(parts), cols, seam, self._cols.as_tuple(), self.mode == "crop", self._frame[lo:mid])
        if hi > mid:
            k0, k1 = int(offsets[mid]), int(offsets[hi])
            alone = (offsets[mid : hi + 1] - k0, index[k0:k1] - row, local[k0:k1], weight[k0:k1])
            blend(np.ascontiguousarray(tiles, dtype=native), 1, cols, alone, self._cols.as_tuple(),
                  self.mode == "crop", self._frame[mid:hi])  # fmt: skip
        if row in self._keep:  # copied: the caller may reuse its buffer
            a, b = self._keep[row]
            self._held[row] = (a, np.array(tiles[:, :, a:b], dtype=native, order="C"))
        for j in [j for j in self._held if self._reader[j] <= row]:
            del self._held[j]
        self._next += 1


def _local_ranges(index: np.ndarray, local: np.ndarray) -> dict[int, tuple[int, int]]:
    """For each span in ``index``, the range ``[min, max + 1)`` of its ``local`` pixels."""
    ranges = {}
    for j in np.unique(index):
        mine = local[index == j]
        ranges[int(j)] = (int(mine.min()), int(mine.max()) + 1)
    return ranges
