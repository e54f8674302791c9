"""RowBlend against the whole-batch blend (srsdk/row_blend.py), and pack_row against pack."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srsdk import tiling
from srsdk.errors import ShapeError
from srsdk.row_blend import RowBlend


@settings(max_examples=150, deadline=None)
@given(
    height=st.integers(1, 90),
    width=st.integers(1, 90),
    tile=st.integers(1, 40),
    halo=st.integers(0, 6),
    scale=st.integers(1, 4),
    mode=st.sampled_from(tiling.BLEND_MODES),
    dtype=st.sampled_from(["float32", "float16"]),
)
def test_row_by_row_pack_and_blend_equal_the_whole_batch_holding_at_most_two_rows(
    height: int, width: int, tile: int, halo: int, scale: int, mode: tiling.BlendMode, dtype: str
) -> None:
    tile = max(tile, 2 * halo + 1)
    plan = tiling.plan_tiles(height, width, tile=tile, halo=halo)
    rng = np.random.default_rng(height * 1000 + width)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    th, tw = plan.tile_shape
    batch = (rng.random((len(plan), 3, th * scale, tw * scale)) * 1.2 - 0.1).astype(dtype)
    rows, cols = plan.grid
    assembled = RowBlend(plan, scale=scale, mode=mode)
    packed = tiling.pack(frame, plan, dtype=dtype)  # type: ignore[arg-type]
    buffer = np.empty_like(batch[:cols])  # one buffer for every row, as a caller may reuse one
    for r in range(rows):
        np.testing.assert_array_equal(tiling.pack_row(frame, plan, r, dtype=dtype), packed[r * cols : (r + 1) * cols])  # type: ignore[arg-type]
        assert not assembled.done
        buffer[...] = batch[r * cols : (r + 1) * cols]
        assembled.add(buffer)
        # Kept: nothing in crop mode; in feather mode at most the few HR rows of this row a seam reads.
        assert set(assembled._held) <= ({r} if mode == "feather" else set())
        assert all(kept.shape[2] <= scale for _, kept in assembled._held.values())
    np.testing.assert_array_equal(assembled.frame, tiling.blend(batch, plan, scale=scale, mode=mode))


def test_row_blend_refuses_extra_rows_wrong_shapes_and_an_unfinished_frame() -> None:
    plan = tiling.plan_tiles(20, 30, tile=12, halo=2)
    rows, cols = plan.grid
    assembled = RowBlend(plan, scale=2)
    with pytest.raises(ShapeError, match=f"{rows} of {rows} rows of tiles not added yet"):
        assembled.frame  # noqa: B018
    with pytest.raises(ShapeError, match=r"tiles: expected float32/float16 of shape \(4, 3, 24, 24\)"):
        assembled.add(np.zeros((cols + 1, 3, 24, 24), np.float32))
    for _ in range(rows):
        assembled.add(np.zeros((cols, 3, 24, 24), np.float32))
    with pytest.raises(ShapeError, match="already added"):
        assembled.add(np.zeros((cols, 3, 24, 24), np.float32))
    assert assembled.frame.shape == (40, 60, 3)
    with pytest.raises(ShapeError, match=f"row: expected < {rows}"):
        tiling.pack_row(np.zeros((20, 30, 3), np.uint8), plan, rows)
