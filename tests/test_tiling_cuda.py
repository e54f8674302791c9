"""The NVRTC kernels: compiled on every machine, run where a GPU is (``make gpu-check``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srsdk import tiling, tiling_cuda, tiling_torch
from srsdk.errors import ShapeError
from srsdk.inference import upscale_array
from srsdk.model import receptive_radius
from srsdk.pretrained import load_pretrained


def test_kernels_compile_to_ptx_without_a_gpu() -> None:
    ptx = tiling_cuda.compile_kernels("compute_90").decode()
    for name in tiling_cuda.KERNELS:
        assert f".entry {name}(" in ptx
    assert "fma.rn.f32" not in ptx  # --fmad=false: no contraction that torch and C++ do not do


def test_a_kernel_that_does_not_compile_reports_nvrtcs_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "tiling.cu"
    broken.write_text(tiling_cuda.source_path().read_text().replace("return value;", "return valeu;", 1))
    monkeypatch.setattr(tiling_cuda, "source_path", lambda: broken)
    with pytest.raises(tiling_cuda.CudaKernelError, match=r"(?s)could not compile tiling.cu for compute_90.*valeu"):
        tiling_cuda.compile_kernels("compute_90")


def test_compiled_kernels_are_cached_and_a_read_only_cache_only_costs_a_recompile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ptx = tiling_cuda._cubin("compute_90")
    (cached,) = (tmp_path / "srsdk" / "kernels").iterdir()
    assert cached.read_bytes() == ptx and ".entry" in ptx.decode()
    cached.write_bytes(b"from the cache")
    assert tiling_cuda._cubin("compute_90") == b"from the cache"
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    assert tiling_cuda._cubin("compute_90") == ptx
    # A folder that takes no new files (this suite may run as root, where chmod cannot make one)
    (tmp_path / "proc" / "srsdk").mkdir(parents=True)
    (tmp_path / "proc" / "srsdk" / "kernels").symlink_to("/proc")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "proc"))
    assert tiling_cuda._cubin("compute_90") == ptx


def _frame(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_the_cuda_entry_points_refuse_what_their_kernels_would_misread() -> None:
    # They take raw pointers: a host tensor's would be read as a device address.
    plan = tiling.plan_tiles(20, 30, tile=16, halo=2)
    with pytest.raises(ShapeError, match="frame: expected a dense CUDA tensor, got cpu"):
        tiling_cuda.pack(torch.zeros((20, 30, 3), dtype=torch.uint8), plan)
    with pytest.raises(ShapeError, match="batch: expected a dense CUDA tensor, got ndarray"):
        tiling_cuda.blend(np.zeros((6, 3, 16, 16), np.float32), plan, scale=1)  # type: ignore[arg-type]


@pytest.mark.gpu
def test_the_cuda_entry_points_refuse_dtypes_their_kernels_do_not_have() -> None:
    # The float32 kernels would write (pack) or read (blend) past a narrower tensor's end.
    plan = tiling.plan_tiles(20, 30, tile=16, halo=2)
    frame = torch.zeros((20, 30, 3), dtype=torch.uint8, device="cuda")
    with pytest.raises(ShapeError, match=r"dtype: expected torch\.float32 or torch\.float16, got torch\.bfloat16"):
        tiling_cuda.pack(frame, plan, dtype=torch.bfloat16)
    with pytest.raises(ShapeError, match="got bfloat16"):
        tiling_cuda.blend(torch.zeros((6, 3, 16, 16), dtype=torch.bfloat16, device="cuda"), plan, scale=1)
    with pytest.raises(ShapeError, match="frame: expected uint8"):
        tiling_cuda.pack(frame.float(), plan)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_cuda_pack_equals_native_bit_for_bit(dtype: str) -> None:
    big = _frame(120, 170, 0)
    view = big[5:110:2, 3:160]  # strided rows
    plan = tiling.plan_tiles(*view.shape[:2], tile=32, halo=5)
    native = tiling.pack(view, plan, dtype=dtype)  # type: ignore[arg-type]
    cuda = tiling.pack(torch.from_numpy(big).cuda()[5:110:2, 3:160], plan, dtype=dtype)  # type: ignore[arg-type]
    assert cuda.is_cuda
    np.testing.assert_array_equal(cuda.cpu().numpy().view(np.uint16 if dtype == "float16" else np.uint32),
                                  native.view(np.uint16 if dtype == "float16" else np.uint32))


@pytest.mark.gpu
@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("mode", ["crop", "feather"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_blend_equals_native_bit_for_bit(scale: int, mode: tiling.BlendMode, dtype: torch.dtype) -> None:
    plan = tiling.plan_tiles(77, 101, tile=40, halo=6)
    th, tw = plan.tile_shape
    g = torch.Generator().manual_seed(scale)
    batch = (torch.rand((len(plan), 3, th * scale, tw * scale), generator=g) * 1.2 - 0.1).to(dtype)
    native = tiling.blend(batch.numpy(), plan, scale=scale, mode=mode)
    cuda = tiling.blend(batch.cuda(), plan, scale=scale, mode=mode)
    reference = tiling_torch.blend(batch.cuda(), plan, scale=scale, mode=mode)  # torch's own ops, on the GPU
    np.testing.assert_array_equal(cuda.cpu().numpy(), native)
    np.testing.assert_array_equal(reference.cpu().numpy(), native)


@pytest.mark.gpu
@pytest.mark.parametrize(("height", "width", "tile", "halo"), [(1, 1, 1, 0), (2, 3, 3, 1), (5, 7, 3, 1), (9, 4, 9, 4)])
def test_cuda_equals_native_on_tiny_frames_at_scale_4_from_a_non_contiguous_batch(
    height: int, width: int, tile: int, halo: int
) -> None:
    frame = _frame(height, width, 2)
    plan = tiling.plan_tiles(height, width, tile=tile, halo=halo)
    batch = tiling.pack(torch.from_numpy(frame).cuda(), plan)
    np.testing.assert_array_equal(batch.cpu().numpy(), tiling.pack(frame, plan))
    th, tw = plan.tile_shape
    wide = torch.rand((len(plan), 3, th * 4, tw * 8), generator=torch.Generator().manual_seed(3))
    strided = wide[..., ::2]  # not contiguous (the CUDA path copies it first)
    for mode in tiling.BLEND_MODES:
        want = tiling.blend(strided.numpy(), plan, scale=4, mode=mode)
        np.testing.assert_array_equal(tiling.blend(wide.cuda()[..., ::2], plan, scale=4, mode=mode).cpu().numpy(), want)


@pytest.mark.gpu
def test_cuda_kernels_run_on_the_callers_stream_and_take_cuda_array_interface() -> None:
    frame = torch.from_numpy(_frame(64, 80, 1)).cuda()

    class Foreign:  # a device array that is not a torch tensor
        __cuda_array_interface__ = frame.__cuda_array_interface__

    assert tiling_cuda.device_of(frame.data_ptr()) == frame.device
    plan = tiling.plan_tiles(64, 80, tile=32, halo=4)
    batch = tiling.pack(frame, plan)
    tiling.blend(batch, plan, scale=1)  # uploads and caches the plan's tables (a blocking copy) before the timing
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(2_000_000_000)  # about a second: what is queued after it on `side` waits
        out = tiling.blend(batch, plan, scale=1)
    assert not side.query()  # the blend waits behind the sleep, on `side`, not on another stream
    early = out.cpu()  # on the default stream, which does not wait for `side`
    side.synchronize()
    assert not torch.equal(early, frame.cpu())  # read before the blend ran
    torch.testing.assert_close(out, frame, rtol=0, atol=0)
    with torch.cuda.stream(side):
        torch.cuda._sleep(2_000_000_000)
        foreign = tiling.pack(Foreign(), plan)
        assert side.query()  # pack waited for its kernel, and so the sleep, before it let go of the array
    torch.testing.assert_close(tiling.blend(foreign, plan, scale=1), frame, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.shared
def test_cuda_tiled_is_within_one_of_whole_frame(set14: Path) -> None:
    net = load_pretrained(2).deploy().cuda()
    rgb = np.array(Image.open(set14 / "comic.png").convert("RGB"))  # writable: torch.from_numpy warns otherwise
    whole = upscale_array(net, rgb)
    plan = tiling.plan_tiles(*rgb.shape[:2], tile=96, halo=receptive_radius(net))
    with torch.inference_mode():
        batch = tiling.pack(torch.from_numpy(rgb).cuda(), plan)
        tiled = tiling.blend(net(batch), plan, scale=2).cpu().numpy()
    # cuDNN may pick another algorithm per input shape: <= 1 is the bound on GPUs.
    assert np.abs(tiled.astype(np.int16) - whole).max() <= 1
