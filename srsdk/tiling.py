"""Tiled inference geometry, and the fused pack and blend that run over it.

A frame larger than an engine's maximum shape (or than memory allows) is cut into
overlapping tiles of one shape. :func:`plan_tiles` decides where they go; :func:`pack` copies
a uint8 ``HxWx3`` frame into a float ``N x 3 x th x tw`` batch in one pass; the network runs
on the batch; :func:`blend` writes its ``N x 3 x th*s x tw*s`` output back into a uint8
``(H*s)x(W*s)x3`` frame, clamping and rounding in the same pass.

Seam-free by construction: every tile lies inside the frame (the last row and column of
tiles is moved back to end at the frame edge, never padded past it), so a tile at the edge
sees the same zero padding the whole frame sees, and each tile is responsible for an
*interior* at least ``halo`` LR pixels away from any edge it shares with another tile. With
``blend="crop"`` and ``halo >= receptive_radius(net)``, the tiled output equals whole-frame
inference, up to float rounding. ``blend="feather"`` is for smaller halos: neighbouring tiles are crossfaded over
one LR pixel at each seam, which softens the step a too-small halo leaves but is not exact.

CPU frames (numpy arrays, CPU tensors) go through the compiled ``srsdk._native``; CUDA
tensors through the NVRTC kernels in :mod:`srsdk.tiling_cuda`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from srsdk.errors import ShapeError, check_int

if TYPE_CHECKING:
    import torch

BlendMode = Literal["crop", "feather"]
BLEND_MODES: tuple[BlendMode, ...] = ("crop", "feather")
Frame = TypeVar("Frame", "np.ndarray", "torch.Tensor")


@dataclasses.dataclass(frozen=True)
class Span:
    """One tile along one axis: it reads LR pixels ``[start, start + tile)`` and is
    responsible (in crop mode) for ``[interior[0], interior[1])``."""

    start: int
    interior: tuple[int, int]


@dataclasses.dataclass(frozen=True)
class AxisPlan:
    """The tiles along one axis of a frame. ``tile`` is the tile length actually used:
    ``min(requested tile, size)``."""

    size: int
    tile: int
    halo: int
    spans: tuple[Span, ...]


@dataclasses.dataclass(frozen=True)
class Tile:
    """Tile ``index`` of a plan: it reads the LR window whose top-left pixel is ``(y, x)`` and is
    responsible for rows ``interior[0]:interior[1]`` and columns ``interior[2]:interior[3]``."""

    index: int
    y: int
    x: int
    interior: tuple[int, int, int, int]


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """Tiles on a grid: tile ``n = r * len(cols.spans) + c`` is row span ``r`` by column span ``c``."""

    rows: AxisPlan
    cols: AxisPlan

    @property
    def frame_shape(self) -> tuple[int, int]:
        """The LR frame's (height, width)."""
        return self.rows.size, self.cols.size

    @property
    def tile_shape(self) -> tuple[int, int]:
        """Every tile's LR (height, width), halo included."""
        return self.rows.tile, self.cols.tile

    @property
    def grid(self) -> tuple[int, int]:
        """Tiles down and across."""
        return len(self.rows.spans), len(self.cols.spans)

    def __len__(self) -> int:
        return len(self.rows.spans) * len(self.cols.spans)

    def tiles(self) -> list[Tile]:
        """Every tile, in row-major order (the batch order :func:`pack` uses)."""
        return [
            Tile(
                index=r * len(self.cols.spans) + c,
                y=row.start,
                x=col.start,
                interior=(*row.interior, *col.interior),
            )
            for r, row in enumerate(self.rows.spans)
            for c, col in enumerate(self.cols.spans)
        ]


def plan_axis(size: int, tile: int, halo: int) -> AxisPlan:
    """Place tiles of length ``min(tile, size)`` along an axis of ``size`` LR pixels."""
    size, tile, halo = (check_int(name, v, error=ShapeError) for name, v in (("frame size", size), ("tile", tile), ("halo", halo)))
    if size < 1:
        raise ShapeError(f"frame size: expected >= 1 pixel, got {size}")
    if halo < 0:
        raise ShapeError(f"halo: expected >= 0, got {halo}")
    if tile < 2 * halo + 1 and tile < size:  # one tile over the whole axis needs no halo
        raise ShapeError(f"tile: expected >= 2 * halo + 1 = {2 * halo + 1}, got {tile}")
    tile = min(tile, size)
    spans = []
    begin = 0
    while begin < size:
        # Start `halo` before the interior, but never before 0 or past the last full tile.
        start = min(max(begin - halo, 0), size - tile)
        end = size if start + tile == size else start + tile - halo
        spans.append(Span(start=start, interior=(begin, end)))
        begin = end
    return AxisPlan(size=size, tile=tile, halo=halo, spans=tuple(spans))


def plan_tiles(height: int, width: int, *, tile: int | tuple[int, int], halo: int) -> TilePlan:
    """Plan same-shape tiles over an ``height x width`` LR frame.

    ``tile`` is the tile side (or ``(th, tw)``) in LR pixels, ``halo`` the context each tile
    keeps around its interior. A frame smaller than a tile is one tile of the frame's size,
    whatever the halo; an axis that needs several tiles needs ``tile >= 2 * halo + 1``.
    """
    if isinstance(tile, (tuple, list)):
        if len(tile) != 2:
            raise ShapeError(f"tile: expected an int or (th, tw), got {tile!r}")
        tile_h, tile_w = tile
    else:
        tile_h = tile_w = tile
    return TilePlan(rows=plan_axis(height, tile_h, halo), cols=plan_axis(width, tile_w, halo))


def check_plan(plan: TilePlan) -> None:
    """Raise :class:`ShapeError` unless every tile of ``plan`` lies inside the frame and the
    interiors cover each axis exactly once, in order (what :func:`plan_tiles` makes; a plan
    built by hand may not, and blending it would leave pixels unwritten)."""
    for name, axis in (("rows", plan.rows), ("cols", plan.cols)):
        try:
            # Cached by the plan's hash and its repr: a plan of floats equals one of ints.
            _check_axis(name, axis, repr(axis))
        except TypeError as e:  # a hand-built plan holding lists
            raise ShapeError(f"plan {name}: expected an AxisPlan of tuples (hashable), got {axis!r}") from e


@functools.lru_cache(maxsize=256)
def _check_axis(name: str, axis: AxisPlan, key: str) -> None:
    if not isinstance(axis.size, int) or not isinstance(axis.tile, int) or not 1 <= axis.tile <= axis.size:
        raise ShapeError(f"plan {name}: expected 1 <= tile <= size, got tile {axis.tile!r}, size {axis.size!r}")
    if not isinstance(axis.halo, int) or axis.halo < 0:  # feather mode's ramps would leave pixels unweighted
        raise ShapeError(f"plan {name}: expected halo >= 0, got {axis.halo!r}")
    covered = 0
    for span in axis.spans:
        lo, hi = span.interior
        if not all(isinstance(v, int) for v in (span.start, lo, hi)):
            raise ShapeError(f"plan {name}: expected int positions, got {span}")
        if not 0 <= span.start <= axis.size - axis.tile:
            raise ShapeError(f"plan {name}: a tile at {span.start} does not lie inside 0..{axis.size}")
        if lo != covered or not span.start <= lo < hi <= span.start + axis.tile:
            raise ShapeError(
                f"plan {name}: interiors must cover 0..{axis.size} in order, each inside its tile; {span} follows {covered}"
            )
        covered = hi
    if covered != axis.size:
        raise ShapeError(f"plan {name}: interiors cover 0..{covered}, not 0..{axis.size}")


def feather_weights(axis: AxisPlan, scale: int) -> list[np.ndarray]:
    """Per span, the float32 weight of each of its ``tile * scale`` HR pixels in feather mode.

    A linear crossfade ``min(scale, 2 * halo * scale)`` HR pixels wide (one LR pixel),
    centred on each seam crop mode would cut; 1 inside the interior, 0 beyond the ramp.
    Neighbouring tiles' weights sum to 1 everywhere. Why so narrow: a tile's output gets
    worse towards its edge, so mixing in more of the neighbour's outer pixels costs more
    than it hides (wider ramps raised the error; see the README).
    """
    length = axis.tile * scale
    ramp = min(scale, 2 * axis.halo * scale)
    centre = np.arange(length) + 0.5
    weights = []
    for span in axis.spans:
        hr = centre + span.start * scale  # frame coordinates of this tile's pixel centres
        lo, hi = span.interior[0] * scale, span.interior[1] * scale
        if ramp == 0:
            w = ((hr > lo) & (hr < hi)).astype(np.float64)
        else:
            up = np.clip((hr - lo) / ramp + 0.5, 0, 1) if span.interior[0] > 0 else 1.0
            down = np.clip((hi - hr) / ramp + 0.5, 0, 1) if span.interior[1] < axis.size else 1.0
            w = np.minimum(up, down) * np.ones(length)
        weights.append(w.astype(np.float32))
    return weights


@dataclasses.dataclass(frozen=True)
class BlendTable:
    """For each HR coordinate ``i`` along an axis, its sources ``k`` in
    ``offsets[i]:offsets[i + 1]``: span ``index[k]``, pixel ``local[k]`` in it, ``weight[k]``."""

    offsets: np.ndarray
    index: np.ndarray
    local: np.ndarray
    weight: np.ndarray

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(offsets, index, local, weight)``, the order the native blend kernels take them."""
        return self.offsets, self.index, self.local, self.weight


@functools.lru_cache(maxsize=64)
def blend_table(axis: AxisPlan, scale: int, mode: BlendMode) -> BlendTable:
    """The sources of every HR coordinate along ``axis``, in span order (cached, read-only)."""
    table = _blend_table(axis, scale, mode)
    for array in table.as_tuple():
        array.flags.writeable = False
    return table


def _blend_table(axis: AxisPlan, scale: int, mode: BlendMode) -> BlendTable:
    hr = axis.size * scale
    if mode == "crop":
        index = np.empty(hr, np.int32)
        local = np.empty(hr, np.int32)
        for j, span in enumerate(axis.spans):
            lo, hi = span.interior[0] * scale, span.interior[1] * scale
            index[lo:hi] = j
            local[lo:hi] = np.arange(lo, hi) - span.start * scale
        return BlendTable(np.arange(hr + 1, dtype=np.int32), index, local, np.ones(hr, np.float32))
    if mode != "feather":
        raise ShapeError(f"blend: expected one of {BLEND_MODES}, got {mode!r}")
    sources: list[list[tuple[int, int, float]]] = [[] for _ in range(hr)]
    for j, (span, weights) in enumerate(zip(axis.spans, feather_weights(axis, scale), strict=True)):
        for pixel in np.flatnonzero(weights):  # zero weights add nothing: skip them
            sources[span.start * scale + pixel].append((j, int(pixel), float(weights[pixel])))
    counts = np.array([len(s) for s in sources], np.int32)
    flat = [source for pixel in sources for source in pixel]
    return BlendTable(
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int32),
        index=np.array([s[0] for s in flat], np.int32),
        local=np.array([s[1] for s in flat], np.int32),
        weight=np.array([s[2] for s in flat], np.float32),
    )


def check_frame(shape: Sequence[int], strides: Sequence[int], dtype: str, plan: TilePlan) -> None:
    """Raise :class:`ShapeError` unless a frame is uint8 ``HxWx3`` of the plan's size with
    non-negative strides."""
    expected = (*plan.frame_shape, 3)
    if dtype != "uint8" or tuple(shape) != expected:
        raise ShapeError(f"frame: expected uint8 array of shape {expected}, got {dtype} {tuple(shape)}")
    if any(s < 0 for s in strides):
        raise ShapeError(f"frame: expected non-negative strides, got {tuple(strides)} (copy it first)")


def check_batch(shape: Sequence[int], dtype: str, plan: TilePlan, scale: int) -> None:
    """Raise :class:`ShapeError` unless a network output batch fits ``plan`` at ``scale``."""
    scale = check_int("scale", scale, minimum=1, error=ShapeError)
    th, tw = plan.tile_shape
    expected = (len(plan), 3, th * scale, tw * scale)
    if dtype not in ("float32", "float16") or tuple(shape) != expected:
        raise ShapeError(f"batch: expected float32/float16 of shape {expected}, got {dtype} {tuple(shape)}")


def _as_array(value: Any) -> Any:
    """numpy arrays and tensors as they are; other device arrays as zero-copy torch tensors."""
    import torch

    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value
    if hasattr(value, "__dlpack__"):  # first: it hands over the producer's stream (CuPy has both)
        from srsdk._dlpack import from_dlpack

        return from_dlpack(value)
    if hasattr(value, "__cuda_array_interface__"):
        from srsdk import tiling_cuda

        # On the array's own GPU: as_tensor copies to the device it is given (the current one).
        return torch.as_tensor(value, device=tiling_cuda.device_of(value.__cuda_array_interface__["data"][0]))
    return value


def _foreign(value: Any) -> bool:
    """Whether :func:`_as_array` wraps ``value`` (neither a numpy array nor a torch tensor)."""
    import torch

    return not isinstance(value, (np.ndarray, torch.Tensor))


def _release_after_use(array: Any) -> None:
    """Wait for the work queued on ``array``, a wrapper of a foreign device array: its producer
    may free or reuse the memory, on a stream of its own, once the wrapper is dropped."""
    import torch

    torch.cuda.current_stream(array.device).synchronize()


def _host_or_cuda(value: Any, argument: str) -> None:
    import torch

    if value.device.type not in ("cpu", "cuda"):
        raise ShapeError(f"{argument}: expected a CPU or CUDA tensor, got one on {value.device}")
    if value.layout != torch.strided:
        raise ShapeError(f"{argument}: expected a dense tensor, got layout {value.layout} (call .to_dense() first)")


def _dtype_name(dtype: object) -> str:
    return str(dtype).removeprefix("torch.")


def pack(frame: Frame, plan: TilePlan, *, dtype: Literal["float32", "float16"] = "float32") -> Frame:
    """Tiles of a uint8 ``HxWx3`` frame as a contiguous ``N x 3 x th x tw`` batch, divided by 255.

    The frame is a numpy array or torch tensor (CPU or CUDA, any non-negative strides), or
    any object with ``__cuda_array_interface__`` or DLPack (used without a copy; the batch
    is then a torch tensor on its device). CUDA work runs on torch's current stream; for such
    a foreign array, this waits for that work before returning, as its producer may reuse the
    memory once it is handed back.
    """
    import torch

    if dtype not in ("float32", "float16"):
        raise ShapeError(f"dtype: expected 'float32' or 'float16', got {dtype!r}")
    check_plan(plan)
    foreign = _foreign(frame)
    frame = _as_array(frame)
    if isinstance(frame, torch.Tensor):
        _host_or_cuda(frame, "frame")
        frame = frame.resolve_neg()  # a lazily negated view has no numpy form
        check_frame(frame.shape, frame.stride(), _dtype_name(frame.dtype), plan)
        if frame.is_cuda:
            from srsdk import tiling_cuda

            batch = tiling_cuda.pack(frame, plan, dtype=getattr(torch, dtype))
            if foreign:
                _release_after_use(frame)
            return batch
        return torch.from_numpy(_pack_numpy(frame.numpy(), plan, dtype))
    if not isinstance(frame, np.ndarray):
        raise ShapeError(f"frame: expected a numpy array or torch tensor, got {type(frame).__name__}")
    check_frame(frame.shape, frame.strides, frame.dtype.name, plan)
    return _pack_numpy(frame, plan, dtype)


def _pack_numpy(frame: np.ndarray, plan: TilePlan, dtype: str, row: int | None = None) -> np.ndarray:
    """Every tile of ``plan``, or those of grid row ``row``."""
    th, tw = plan.tile_shape
    spans = plan.rows.spans if row is None else plan.rows.spans[row : row + 1]
    ys = np.array([s.start for s in spans], np.int32)
    xs = np.array([s.start for s in plan.cols.spans], np.int32)
    out = np.empty((len(ys) * len(xs), 3, th, tw), dtype)
    _load_native().pack(frame, ys, xs, th, tw, out)
    return out


def blend(batch: Frame, plan: TilePlan, *, scale: int, mode: BlendMode = "crop") -> Frame:
    """The uint8 ``(H*s)x(W*s)x3`` frame assembled from a network's output batch
    (``N x 3 x th*s x tw*s``, float32 or float16, numpy or torch, CPU or CUDA, or a foreign
    device array as :func:`pack` takes)."""
    import torch

    if mode not in BLEND_MODES:
        raise ShapeError(f"blend: expected one of {BLEND_MODES}, got {mode!r}")
    check_plan(plan)
    scale = check_int("scale", scale, minimum=1, error=ShapeError)  # a numpy uint8 would overflow below
    foreign = _foreign(batch)
    batch = _as_array(batch)
    if isinstance(batch, torch.Tensor):
        _host_or_cuda(batch, "batch")
        batch = batch.detach().resolve_neg()  # a network's output outside no_grad still blends
        check_batch(batch.shape, _dtype_name(batch.dtype), plan, scale)
        if batch.is_cuda:
            from srsdk import tiling_cuda

            out = tiling_cuda.blend(batch, plan, scale=scale, mode=mode)
            if foreign:
                _release_after_use(batch)
            return out
        return torch.from_numpy(_blend_numpy(batch.contiguous().numpy(), plan, scale, mode))
    if not isinstance(batch, np.ndarray):
        raise ShapeError(f"batch: expected a numpy array or torch tensor, got {type(batch).__name__}")
    check_batch(batch.shape, batch.dtype.name, plan, scale)
    # Native byte order: a big-endian float32 is float32 too.
    return _blend_numpy(np.ascontiguousarray(batch, dtype=batch.dtype.newbyteorder("=")), plan, scale, mode)


def _blend_numpy(batch: np.ndarray, plan: TilePlan, scale: int, mode: BlendMode) -> np.ndarray:
    native = _load_native()
    height, width = plan.frame_shape
    out = np.empty((height * scale, width * scale, 3), np.uint8)
    rows, cols = blend_table(plan.rows, scale, mode), blend_table(plan.cols, scale, mode)
    native.blend(batch, *plan.grid, rows.as_tuple(), cols.as_tuple(), mode == "crop", out)
    return out


def pack_row(
    frame: np.ndarray, plan: TilePlan, row: int, *, dtype: Literal["float32", "float16"] = "float32"
) -> np.ndarray:
    """The tiles of grid row ``row`` of a uint8 ``HxWx3`` numpy frame (``len(plan.cols.spans)``
    of them, left to right), as :func:`pack` packs them: the input of one
    :meth:`srsdk.row_blend.RowBlend.add`."""
    if dtype not in ("float32", "float16"):
        raise ShapeError(f"dtype: expected 'float32' or 'float16', got {dtype!r}")
    check_plan(plan)
    if not isinstance(frame, np.ndarray):
        raise ShapeError(f"frame: expected a numpy array, got {type(frame).__name__}")
    check_frame(frame.shape, frame.strides, frame.dtype.name, plan)
    row = check_int("row", row, minimum=0, error=ShapeError)
    if row >= plan.grid[0]:
        raise ShapeError(f"row: expected < {plan.grid[0]} (the plan's rows of tiles), got {row}")
    return _pack_numpy(frame, plan, dtype, row)


def _load_native():
    try:
        from srsdk import _native
    except ImportError as error:
        raise ImportError(
            "srsdk's compiled extension srsdk._native is missing or broken "
            f"({error}); reinstall with a C++17 compiler present: pip install --force-reinstall ."
        ) from error
    return _native
