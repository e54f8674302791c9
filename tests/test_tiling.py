from __future__ import annotations

import ast
import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from srsdk import _native, tiling, tiling_torch
from srsdk.errors import ShapeError
from srsdk.inference import upscale_array, upscale_tiled
from srsdk.model import receptive_radius
from srsdk.pretrained import load_pretrained


@settings(max_examples=300, deadline=None)
@given(
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    tile=st.integers(1, 80),
    halo=st.integers(0, 20),
)
def test_plan_covers_every_pixel_once_with_same_shape_tiles_inside_the_frame(
    height: int, width: int, tile: int, halo: int
) -> None:
    if tile < 2 * halo + 1 and (tile < height or tile < width):
        with pytest.raises(ShapeError, match=r"tile: expected >= 2 \* halo \+ 1"):
            tiling.plan_tiles(height, width, tile=tile, halo=halo)
        return
    plan = tiling.plan_tiles(height, width, tile=tile, halo=halo)
    th, tw = plan.tile_shape
    assert (th, tw) == (min(tile, height), min(tile, width))
    owner = np.zeros((height, width), np.int32)
    for t in plan.tiles():
        assert t.y >= 0 and t.y + th <= height and t.x >= 0 and t.x + tw <= width
        y0, y1, x0, x1 = t.interior
        # Context on every side the tile shares with another: >= halo pixels, or the frame edge.
        assert y0 - t.y >= halo or t.y == 0
        assert t.y + th - y1 >= halo or t.y + th == height
        assert x0 - t.x >= halo or t.x == 0
        assert t.x + tw - x1 >= halo or t.x + tw == width
        assert t.y <= y0 < y1 <= t.y + th and t.x <= x0 < x1 <= t.x + tw
        owner[y0:y1, x0:x1] += 1
    assert (owner == 1).all()
    if height <= tile and width <= tile:
        assert len(plan) == 1


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 7), (5, 3), (37, 53), (64, 64), (300, 129)])
@pytest.mark.parametrize("mode", ["crop", "feather"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_pack_identity_blend_round_trips_the_frame_byte_for_byte(
    height: int, width: int, mode: tiling.BlendMode, dtype: str
) -> None:
    frame = np.random.default_rng(height * width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    plan = tiling.plan_tiles(height, width, tile=16, halo=3)
    batch = tiling.pack(frame, plan, dtype=dtype)  # type: ignore[arg-type]
    assert batch.dtype == dtype and batch.flags.c_contiguous
    np.testing.assert_array_equal(tiling.blend(batch, plan, scale=1, mode=mode), frame)


def test_pack_reads_any_view_with_non_negative_strides() -> None:
    big = np.random.default_rng(0).integers(0, 256, (40, 90, 4), dtype=np.uint8)
    view = big[3:33:2, 5:80:3, 1:]  # strided rows and columns, channels sliced
    plan = tiling.plan_tiles(*view.shape[:2], tile=8, halo=2)
    expected = tiling_torch.pack(torch.from_numpy(np.ascontiguousarray(view)), plan)
    np.testing.assert_array_equal(tiling.pack(view, plan), expected.numpy())
    as_tensor = tiling.pack(torch.from_numpy(big)[3:33:2, 5:80:3, 1:], plan)
    assert isinstance(as_tensor, torch.Tensor)
    torch.testing.assert_close(as_tensor, expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_native_pack_equals_the_torch_reference(dtype: torch.dtype) -> None:
    frame = np.random.default_rng(1).integers(0, 256, (97, 130, 3), dtype=np.uint8)
    frame[0, :, :] = np.arange(130)[:, None]  # every byte value occurs
    frame[1, :126, :] = np.arange(130, 256)[:, None]
    plan = tiling.plan_tiles(97, 130, tile=40, halo=5)
    native = tiling.pack(frame, plan, dtype=str(dtype).removeprefix("torch."))  # type: ignore[arg-type]
    reference = tiling_torch.pack(torch.from_numpy(frame), plan, dtype=dtype)
    np.testing.assert_array_equal(native.view(np.uint8), reference.numpy().view(np.uint8))


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize("mode", ["crop", "feather"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_native_blend_equals_the_torch_reference(scale: int, mode: tiling.BlendMode, dtype: torch.dtype) -> None:
    plan = tiling.plan_tiles(45, 61, tile=24, halo=4)
    th, tw = plan.tile_shape
    shape = (len(plan), 3, th * scale, tw * scale)
    if dtype == torch.float16:  # every float16 bit pattern, NaN and inf included, then repeated
        bits = torch.arange(2**16, dtype=torch.int32).to(torch.int16)
        batch = bits.repeat(-(-np.prod(shape) // 2**16))[: np.prod(shape)].view(torch.float16).reshape(shape)
        # NaN -> uint8 is unspecified, and feather skips zero weights where torch computes 0 * inf.
        unspecified = batch.isnan() if mode == "crop" else ~batch.isfinite()
        batch = torch.where(unspecified, torch.zeros_like(batch), batch)
    else:
        g = torch.Generator().manual_seed(scale)
        batch = torch.rand(shape, generator=g) * 1.2 - 0.1  # overshoots both ends, exercises the clamp
        batch[0, 0, 0, :8] = torch.tensor([0.5, 1.5, 2.5, 253.5, 254.5, 0.0, 1.0, -0.0]) / 255  # rounding ties
    native = tiling.blend(batch.numpy(), plan, scale=scale, mode=mode)
    reference = tiling_torch.blend(batch, plan, scale=scale, mode=mode)
    np.testing.assert_array_equal(native, reference.numpy())


@pytest.fixture(scope="module")
def x2_net():  # type: ignore[no-untyped-def]
    return load_pretrained(2).deploy()


@pytest.mark.shared
@pytest.mark.parametrize("tile", [64, 96])
def test_tiled_equals_whole_frame_on_a_real_odd_sized_image(x2_net, set14: Path, tile: int) -> None:  # type: ignore[no-untyped-def]
    rgb = np.asarray(Image.open(set14 / "comic.png").convert("RGB"))
    assert rgb.shape[0] % 2 == 1  # 361 x 250: odd, and the last tiles are clamped to the edge
    whole = upscale_array(x2_net, rgb)
    tiled = upscale_tiled(x2_net, rgb, tile=tile, halo=receptive_radius(x2_net))
    assert len(tiling.plan_tiles(*rgb.shape[:2], tile=tile, halo=receptive_radius(x2_net))) > 4
    assert np.abs(tiled.astype(np.int16) - whole).max() == 0


@pytest.mark.shared
@pytest.mark.parametrize("mode", ["crop", "feather"])
def test_a_frame_inside_one_tile_upscales_whole_whatever_the_halo(x2_net, set14: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    rgb = np.asarray(Image.open(set14 / "comic.png").convert("RGB"))[:5, :7]
    # tile 6 < 2 * halo + 1 = 201, yet 5 x 7 fits one 6 x 6 tile down, and not across:
    with pytest.raises(ShapeError, match=r"tile: expected >= 2 \* halo \+ 1 = 201, got 6"):
        upscale_tiled(x2_net, rgb, tile=6, halo=100)
    tiled = upscale_tiled(x2_net, rgb, tile=64, halo=100, blend=mode)  # type: ignore[arg-type]
    np.testing.assert_array_equal(tiled, upscale_array(x2_net, rgb))


@pytest.mark.shared
def test_feather_versus_crop_at_a_too_small_halo(x2_net, set14: Path) -> None:  # type: ignore[no-untyped-def]
    """Reports the seam error of both modes (run with -s). Measured: they are within ~2 % of
    each other, neither mode winning everywhere, so this only guards against regressions."""
    rms: dict[str, list[float]] = {"crop": [], "feather": []}
    steps: dict[str, list[float]] = {"crop": [], "feather": []}
    for name in ("zebra", "comic", "baboon", "barbara", "lenna"):
        rgb = np.asarray(Image.open(set14 / f"{name}.png").convert("RGB"))[:240, :240]
        whole = upscale_array(x2_net, rgb).astype(np.float64)
        for mode in ("crop", "feather"):
            error = upscale_tiled(x2_net, rgb, tile=48, halo=2, blend=mode) - whole  # type: ignore[arg-type]
            rms[mode].append(float(np.sqrt(np.mean(error**2))))
            # A seam is a step in the error field: the largest jump between neighbouring pixels.
            steps[mode].append(float(max(np.abs(np.diff(error, axis=0)).max(), np.abs(np.diff(error, axis=1)).max())))
    print(f"\nSet14 240x240 crops, x2, tile 48, halo 2 (radius 10): RMS error {rms}, largest step {steps}")
    assert min(rms["crop"]) > 0
    assert np.mean(rms["feather"]) <= 1.02 * np.mean(rms["crop"])


@pytest.mark.parametrize("halo", [0, 1, 3])
@pytest.mark.parametrize("scale", [1, 2, 3])
def test_feather_weights_of_neighbouring_tiles_sum_to_one(halo: int, scale: int) -> None:
    axis = tiling.plan_axis(100, 2 * halo + 9, halo)
    total = np.zeros(100 * scale)
    for span, weights in zip(axis.spans, tiling.feather_weights(axis, scale), strict=True):
        total[span.start * scale : (span.start + axis.tile) * scale] += weights
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-6)


def _frame(shape: tuple[int, ...] = (20, 30, 3), dtype: type = np.uint8) -> np.ndarray:
    return np.zeros(shape, dtype)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_frame(dtype=np.float32), r"frame: expected uint8 array of shape \(20, 30, 3\), got float32"),
        (_frame((20, 30, 4)), r"frame: expected uint8 array of shape \(20, 30, 3\), got uint8 \(20, 30, 4\)"),
        (_frame((20, 30)), r"frame: expected uint8 array .* got uint8 \(20, 30\)"),
        (_frame()[::-1], r"frame: expected non-negative strides, got \(-90, 3, 1\)"),
        ([[0, 0, 0]], r"frame: expected a numpy array or torch tensor, got list"),
    ],
)
def test_pack_rejects_bad_frames(frame: np.ndarray, message: str) -> None:
    plan = tiling.plan_tiles(20, 30, tile=16, halo=2)
    with pytest.raises(ShapeError, match=message):
        tiling.pack(frame, plan)


def test_plan_and_blend_reject_bad_arguments() -> None:
    with pytest.raises(ShapeError, match="frame size: expected >= 1 pixel, got 0"):
        tiling.plan_tiles(0, 30, tile=16, halo=2)
    with pytest.raises(ShapeError, match=r"tile: expected >= 2 \* halo \+ 1 = 19, got 18"):
        tiling.plan_tiles(100, 100, tile=18, halo=9)
    with pytest.raises(ShapeError, match=r"tile: expected >= 2 \* halo \+ 1 = 19, got 18"):
        tiling.plan_tiles(18, 19, tile=18, halo=9)  # one tile down, two across
    with pytest.raises(ShapeError, match="halo: expected >= 0, got -1"):
        tiling.plan_tiles(10, 10, tile=4, halo=-1)
    plan = tiling.plan_tiles(20, 30, tile=16, halo=2)
    batch = tiling.pack(_frame(), plan)
    with pytest.raises(ShapeError, match=r"batch: expected float32/float16 of shape \(6, 3, 32, 32\), got float32"):
        tiling.blend(batch, plan, scale=2)
    with pytest.raises(ShapeError, match="got int32"):
        tiling.blend(batch.astype(np.int32), plan, scale=1)
    with pytest.raises(ShapeError, match=r"blend: expected one of \('crop', 'feather'\), got 'mean'"):
        tiling.blend(batch, plan, scale=1, mode="mean")  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="dtype: expected 'float32' or 'float16', got 'float64'"):
        tiling.pack(_frame(), plan, dtype="float64")  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="scale: expected an int >= 1, got 0"):
        tiling.blend(batch, plan, scale=0)
    assert tiling.plan_tiles(20, 30, tile=np.int64(16), halo=np.int32(2)) == plan  # numpy ints are ints
    for bad in ({"tile": 6.0, "halo": 1}, {"tile": 6, "halo": 1.5}, {"tile": (6, 6, 6), "halo": 1},
                {"tile": np.array([6, 6]), "halo": 1}, {"tile": 6, "halo": np.float64(1.0)}):  # fmt: skip
        with pytest.raises(ShapeError, match=r"tile|halo"):
            tiling.plan_tiles(20, 30, **bad)  # type: ignore[arg-type]
    # A plan made by hand whose interiors leave a gap would leave pixels unwritten.
    gap = tiling.TilePlan(
        rows=tiling.AxisPlan(size=20, tile=20, halo=0, spans=(tiling.Span(0, (0, 20)),)),
        cols=tiling.AxisPlan(size=30, tile=10, halo=0, spans=(tiling.Span(0, (0, 10)), tiling.Span(20, (20, 30)))),
    )
    with pytest.raises(ShapeError, match=r"plan cols: interiors must cover 0\.\.30 in order"):
        tiling.blend(np.zeros((2, 3, 20, 10), np.float32), gap, scale=1)
    with pytest.raises(ShapeError, match="plan cols"):
        tiling.pack(_frame(), gap)
    # A negative halo made feather mode's ramps leave pixels with no weight (black on CUDA).
    negative = tiling.TilePlan(rows=dataclasses.replace(plan.rows, halo=-1), cols=plan.cols)
    with pytest.raises(ShapeError, match="plan rows: expected halo >= 0, got -1"):
        tiling.blend(batch[:, :, :16, :16], negative, scale=1, mode="feather")
    grad = torch.from_numpy(np.ascontiguousarray(batch[:, :, :16, :16])).requires_grad_()
    assert tiling.blend(grad, plan, scale=1).shape == (20, 30, 3)  # a network output outside no_grad


def test_the_extension_itself_refuses_what_would_write_out_of_bounds() -> None:
    frame = _frame()
    ys, xs = np.array([0, 4], np.int32), np.array([0, 14], np.int32)
    good = np.empty((4, 3, 16, 16), np.float32)
    _native.pack(frame, ys, xs, 16, 16, good)
    with pytest.raises(ShapeError, match=r"out: expected a writeable C-contiguous array of shape \(4, 3, 16, 16\)"):
        _native.pack(frame, ys, xs, 16, 16, np.empty((3, 3, 16, 16), np.float32))
    with pytest.raises(ShapeError, match="non-contiguous"):
        _native.pack(frame, ys, xs, 16, 16, np.empty((4, 3, 16, 32), np.float32)[..., ::2])
    with pytest.raises(ShapeError, match="read-only"):
        _native.pack(frame, ys, xs, 16, 16, np.broadcast_to(good, good.shape))
    with pytest.raises(ShapeError, match=r"xs: expected tile origins in \[0, 14\], got 15"):
        _native.pack(frame, ys, np.array([0, 15], np.int32), 16, 16, good)
    with pytest.raises(ShapeError, match="xs: expected tiles of at most the frame's 30 pixels, got 32"):
        _native.pack(frame, ys, np.array([0], np.int32), 16, 32, np.empty((2, 3, 16, 32), np.float32))  # not [0, -2]
    with pytest.raises(ShapeError, match="xs: expected values that fit int32, got 4294967296"):
        _native.pack(frame, ys, np.array([0, 2**32], np.int64), 16, 16, good)  # a cast would make it 0
    with pytest.raises(ShapeError, match="xs: expected a 1-D integer array, got float64"):
        _native.pack(frame, ys, np.array([0.0, 14.0]), 16, 16, good)
    _native.pack(frame, ys.astype(np.uint8), xs.astype(np.int64), 16, 16, good)  # other integer types are fine
    with pytest.raises(ShapeError, match="out: expected float32 or float16"):
        _native.pack(frame, ys, xs, 16, 16, good.astype(np.float64))
    with pytest.raises(ShapeError, match="frame: expected non-negative strides"):
        _native.pack(frame[:, ::-1], ys, xs, 16, 16, good)
    table = (np.arange(21, dtype=np.int32), np.zeros(20, np.int32), np.arange(20, dtype=np.int32) % 16, np.ones(20, np.float32))
    cols = (np.arange(31, dtype=np.int32), np.zeros(30, np.int32), np.arange(30, dtype=np.int32), np.ones(30, np.float32))
    with pytest.raises(ShapeError, match="cols local: expected < 16, got 16"):
        _native.blend(good, 2, 2, table, cols, True, np.empty((20, 30, 3), np.uint8))
    with pytest.raises(ShapeError, match=r"rows offsets: expected 19 entries, got 21"):
        _native.blend(good, 2, 2, table, cols, True, np.empty((18, 30, 3), np.uint8))
    with pytest.raises(ShapeError, match="grid: expected 4 tiles in rows x cols, got 2 x 3"):
        _native.blend(good, 2, 3, table, cols, True, np.empty((20, 30, 3), np.uint8))
    with pytest.raises(ShapeError, match="grid: expected 0 tiles in rows x cols"):  # 2**62 * 4 wraps to 0
        _native.blend(good[:0], 2**62, 4, table, cols, True, np.empty((20, 30, 3), np.uint8))
    with pytest.raises(ShapeError, match="batch: expected a C-contiguous array"):
        _native.blend(np.empty((4, 3, 32, 16), np.float32)[:, :, ::2], 2, 2, table, cols, True, np.empty((20, 30, 3), np.uint8))
    with pytest.raises(ShapeError, match="out: expected float32 or float16"):
        _native.pack(frame, ys, xs, 16, 16, good.astype(">f2"))


def test_arrays_whose_dtype_objects_are_their_own_still_pack_and_blend() -> None:
    # Unpickled arrays (what a multiprocessing worker hands back) hold dtype objects equal to,
    # but not the same as, numpy's uint8 and float32; big-endian float32 is float32 too.
    plan = tiling.plan_tiles(20, 30, tile=16, halo=2)
    frame = _frame()
    batch = tiling.pack(frame, plan)
    unpickled_frame, unpickled_batch = pickle.loads(pickle.dumps((frame, batch)))
    assert unpickled_frame.dtype is not np.dtype(np.uint8)
    np.testing.assert_array_equal(tiling.pack(unpickled_frame, plan), batch)
    np.testing.assert_array_equal(tiling.pack(unpickled_frame.copy(), plan), batch)
    np.testing.assert_array_equal(tiling.blend(unpickled_batch, plan, scale=1), frame)
    np.testing.assert_array_equal(tiling.blend(batch.astype(">f4"), plan, scale=1), frame)


def test_blend_takes_the_scale_as_an_int_whatever_integer_type_it_came_as() -> None:
    plan = tiling.plan_tiles(200, 200, tile=64, halo=4)
    th, tw = plan.tile_shape
    batch = np.random.default_rng(0).random((len(plan), 3, th * 2, tw * 2), np.float32)
    want = tiling.blend(batch, plan, scale=2)
    for mode in tiling.BLEND_MODES:
        np.testing.assert_array_equal(tiling.blend(batch, plan, scale=np.uint8(2), mode=mode),
                                      tiling.blend(batch, plan, scale=2, mode=mode))  # fmt: skip
    np.testing.assert_array_equal(tiling.blend(batch, plan, scale=np.uint8(2)), want)  # 200 * uint8 2 overflowed


def test_hand_built_plans_of_lists_and_tensors_off_cpu_and_cuda_are_refused_by_name() -> None:
    listed = tiling.TilePlan(
        rows=tiling.AxisPlan(size=20, tile=20, halo=0, spans=[tiling.Span(0, (0, 20))]),  # type: ignore[arg-type]
        cols=tiling.AxisPlan(size=30, tile=30, halo=0, spans=(tiling.Span(0, (0, 30)),)),
    )
    with pytest.raises(ShapeError, match=r"plan rows: expected an AxisPlan of tuples \(hashable\)"):
        tiling.pack(_frame(), listed)
    plan = tiling.plan_tiles(20, 30, tile=16, halo=2)
    with pytest.raises(ShapeError, match="frame: expected a CPU or CUDA tensor, got one on meta"):
        tiling.pack(torch.empty((20, 30, 3), dtype=torch.uint8, device="meta"), plan)
    with pytest.raises(ShapeError, match="batch: expected a CPU or CUDA tensor, got one on meta"):
        tiling.blend(torch.empty((6, 3, 16, 16), device="meta"), plan, scale=1)
    with pytest.raises(ShapeError, match=r"batch: expected a dense tensor, got layout torch\.sparse_coo"):
        tiling.blend(torch.zeros((6, 3, 16, 16)).to_sparse(), plan, scale=1)
    with pytest.raises(ShapeError, match=r"frame: expected a dense tensor, got layout torch\.sparse_coo"):
        tiling.pack(torch.zeros((20, 30, 3), dtype=torch.uint8).to_sparse(), plan)
    # A plan of floats equal to a checked plan of ints is still checked (not a cache hit).
    tiling.blend(torch.zeros((6, 3, 16, 16)), plan, scale=1)
    floats = tiling.TilePlan(rows=dataclasses.replace(plan.rows, size=20.0), cols=plan.cols)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match=r"plan rows: expected 1 <= tile <= size, got tile 16, size 20\.0"):
        tiling.blend(torch.zeros((6, 3, 16, 16)), floats, scale=1)


def test_a_lazily_negated_batch_blends_as_its_values() -> None:
    plan = tiling.plan_tiles(20, 30, tile=16, halo=2)
    batch = torch.rand((6, 3, 32, 32), generator=torch.Generator().manual_seed(0))
    negated = (-batch)._neg_view()  # what torch hands out for some views: numpy() refuses it as is
    assert negated.is_neg()
    np.testing.assert_array_equal(tiling.blend(negated, plan, scale=2), tiling.blend(batch, plan, scale=2))


@pytest.mark.skipif(getattr(_native, "parallel", "") == "openmp", reason="in an OpenMP build libgomp exits the process")
def test_pack_finishes_when_the_threads_it_asks_for_cannot_all_start() -> None:
    # Under an address-space limit that leaves room for a few thread stacks only, starting 64
    # threads fails part-way: the chunks left run on the calling thread, not std::terminate.
    script = """
import resource, sys
import numpy as np
from srsdk import _native
frame = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
want = np.empty((1, 3, 400, 400), np.float32)
_native.pack(frame, np.array([0]), np.array([0]), 400, 400, want, threads=1)
out = np.empty_like(want)
used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 100 * 2**20, resource.RLIM_INFINITY))
_native.pack(frame, np.array([0]), np.array([0]), 400, 400, out, threads=64)
sys.exit(0 if np.array_equal(out, want) else 3)
"""
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_stub_lists_exactly_what_the_extension_exports() -> None:
    stub = Path(tiling.__file__).with_name("_native.pyi")
    names = set()
    for node in ast.parse(stub.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    public = {name for name in names if not name.startswith("_")}
    assert public == {name for name in dir(_native) if not name.startswith("_")}


def test_a_missing_extension_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import srsdk

    monkeypatch.setitem(sys.modules, "srsdk._native", None)  # what an install without the build looks like
    monkeypatch.delattr(srsdk, "_native")
    with pytest.raises(ImportError, match=r"srsdk._native is missing or broken .* pip install --force-reinstall"):
        tiling.pack(_frame(), tiling.plan_tiles(20, 30, tile=16, halo=2))
