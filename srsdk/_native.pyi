"""Type stub for srsdk's compiled tiling kernels (csrc/bindings.cpp). Private: use srsdk.tiling."""

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

_Table: TypeAlias = tuple[np.ndarray, np.ndarray, np.ndarray, npt.ArrayLike]
"""offsets, index, local: 1-D integer arrays (values that fit int32); weight: floats."""

parallel: str
"""How the loops run in parallel: "std::thread" or "openmp" (a build option)."""

def pack(
    frame: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    tile_h: int,
    tile_w: int,
    out: np.ndarray,
    threads: int = 0,
) -> None: ...
def blend(
    batch: np.ndarray,
    grid_rows: int,
    grid_cols: int,
    rows: _Table,
    cols: _Table,
    crop: bool,
    out: np.ndarray,
    threads: int = 0,
) -> None: ...
