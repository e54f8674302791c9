"""The CUDA pack and blend: ``csrc/cuda/tiling.cu`` compiled at run time with NVRTC and
launched through cuda-python on the caller's stream.

Results are bit-identical to the C++ kernels (same operations, no fused multiply-add,
IEEE division). Nothing here runs at import: cuda-python (``pip install 'srsdk[cuda]'``)
is imported on first use, no CUDA toolkit is needed, and each device's compiled module is
cached in memory (and the CUBIN on disk, keyed by source, architecture and NVRTC version).
Normally reached through :func:`srsdk.tiling.pack` / :func:`srsdk.tiling.blend` with CUDA
tensors.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from srsdk.cache import kernel_cache
from srsdk.errors import InputError, ShapeError, SrsdkError
from srsdk.tiling import AxisPlan, BlendMode, TilePlan, blend_table, check_batch, check_frame, check_plan

KERNELS = ("pack_f32", "pack_f16", "blend_f32", "blend_f16")
OPTIONS = ("--fmad=false", "--prec-div=true", "-std=c++17")
BLOCK = 256


class CudaKernelError(SrsdkError, RuntimeError):
    """NVRTC could not compile the kernels, or the driver refused to load or launch them."""


def _bindings() -> tuple[Any, Any]:
    try:
        from cuda.bindings import driver, nvrtc
    except ImportError as error:
        raise CudaKernelError(
            f"the CUDA kernels need cuda-python ({error}): pip install 'srsdk[cuda]'"
        ) from error
    return driver, nvrtc


def source_path() -> Path:
    """``tiling.cu`` as installed beside the compiled extension."""
    from srsdk.tiling import _load_native

    return Path(_load_native().__file__).parent / "cuda" / "tiling.cu"


def _check(result: tuple[Any, ...], what: str) -> Any:
    error, *values = result
    if int(error) != 0:
        raise CudaKernelError(f"{what} failed: {error!r}")
    return values[0] if len(values) == 1 else values


def device_of(pointer: int) -> torch.device:
    """The CUDA device whose memory ``pointer`` addresses (the current one for a null pointer,
    which empty arrays carry)."""
    if not pointer:
        return torch.device("cuda", torch.cuda.current_device())
    driver, _ = _bindings()
    torch.cuda.init()  # the driver is initialised by torch's first CUDA call
    attribute = driver.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL
    return torch.device("cuda", int(_check(driver.cuPointerGetAttribute(attribute, pointer), "cuPointerGetAttribute")))


def compile_kernels(arch: str) -> bytes:
    """Compile the kernels for ``arch``: ``"compute_90"`` gives PTX, ``"sm_90"`` a CUBIN.

    Needs only NVRTC (no GPU): the test suite compiles for ``compute_90`` on CPU machines so
    a kernel that does not compile cannot land.
    """
    _, nvrtc = _bindings()
    source = source_path().read_bytes()
    program = _check(nvrtc.nvrtcCreateProgram(source, b"tiling.cu", 0, [], []), "nvrtcCreateProgram")
    try:
        options = [f"--gpu-architecture={arch}".encode(), *(o.encode() for o in OPTIONS)]
        (error,) = nvrtc.nvrtcCompileProgram(program, len(options), options)
        if int(error) != 0:
            size = _check(nvrtc.nvrtcGetProgramLogSize(program), "nvrtcGetProgramLogSize")
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(program, log)
            raise CudaKernelError(f"NVRTC could not compile tiling.cu for {arch}:\n{log.decode(errors='replace')}")
        kind = "CUBIN" if arch.startswith("sm_") else "PTX"
        size = _check(getattr(nvrtc, f"nvrtcGet{kind}Size")(program), f"nvrtcGet{kind}Size")
        image = b" " * size
        _check(getattr(nvrtc, f"nvrtcGet{kind}")(program, image), f"nvrtcGet{kind}")
        return image
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def _cubin(arch: str) -> bytes:
    """The CUBIN for ``arch``, from the disk cache when this source was compiled before."""
    from srsdk.io.atomic import atomic_output

    _, nvrtc = _bindings()
    major, minor = _check(nvrtc.nvrtcVersion(), "nvrtcVersion")
    version = f"{major}.{minor}"
    key = hashlib.sha256(source_path().read_bytes() + repr((arch, version, OPTIONS)).encode()).hexdigest()[:16]
    path = kernel_cache() / f"tiling-{arch}-{key}.cubin"
    if path.is_file():
        return path.read_bytes()
    image = compile_kernels(arch)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as part:
            part.write_bytes(image)
    except (OSError, InputError):  # atomic_output says why it cannot write as an InputError
        pass  # a read-only home only costs a recompile next time
    return image


_LOADING = threading.Lock()


def _functions(device_index: int) -> dict[str, Any]:
    """The loaded kernels for one device (loaded once, also when Upscaler workers ask at once)."""
    with _LOADING:
        return _load_functions(device_index)


@functools.cache
def _load_functions(device_index: int) -> dict[str, Any]:
    """The kernels loaded into the device's primary context (the one torch uses)."""
    driver, _ = _bindings()
    major, minor = torch.cuda.get_device_capability(device_index)
    image = _cubin(f"sm_{major}{minor}")
    _check(driver.cuInit(0), "cuInit")
    device = _check(driver.cuDeviceGet(device_index), "cuDeviceGet")
    context = _check(driver.cuDevicePrimaryCtxRetain(device), "cuDevicePrimaryCtxRetain")
    with _current(context):
        module = _check(driver.cuModuleLoadData(image), "cuModuleLoadData")
        functions = {name: _check(driver.cuModuleGetFunction(module, name.encode()), name) for name in KERNELS}
    return {"context": context, **functions}


@contextlib.contextmanager
def _current(context: Any) -> Iterator[None]:
    """Make ``context`` current for the block, then restore the thread's previous one."""
    driver, _ = _bindings()
    _check(driver.cuCtxPushCurrent(context), "cuCtxPushCurrent")
    try:
        yield
    finally:
        driver.cuCtxPopCurrent()


def _launch(name: str, device: torch.device, count: int, args: list[tuple[int, type]]) -> None:
    driver, _ = _bindings()
    index = device.index if device.index is not None else torch.cuda.current_device()
    function = _functions(index)
    stream = driver.CUstream(torch.cuda.current_stream(index).cuda_stream)
    values = tuple(value for value, _ in args)
    types = tuple(kind for _, kind in args)
    blocks = (count + BLOCK - 1) // BLOCK
    with _current(function["context"]):  # the thread's current context may be another device's, or none
        _check(
            driver.cuLaunchKernel(function[name], blocks, 1, 1, BLOCK, 1, 1, 0, stream, (values, types), 0),
            f"launching {name}",
        )


def _pointer(tensor: torch.Tensor) -> tuple[int, type]:
    return tensor.data_ptr(), ctypes.c_void_p


def _in_use(tables: tuple[torch.Tensor, ...], device: torch.device) -> None:
    """Tell the caching allocator that the current stream reads these cached tables.

    They are shared by every stream (Upscaler workers run one each); without this, a table
    evicted from its cache while another stream's kernel still reads it could be reused at once.
    """
    stream = torch.cuda.current_stream(device)
    for table in tables:
        table.record_stream(stream)


@functools.lru_cache(maxsize=64)
def _origins(axis: AxisPlan, device: torch.device) -> torch.Tensor:
    return torch.tensor([s.start for s in axis.spans], dtype=torch.int32, device=device)


@functools.lru_cache(maxsize=64)
def _table(axis: AxisPlan, scale: int, mode: BlendMode, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(a.copy()).to(device) for a in blend_table(axis, scale, mode).as_tuple())


def pack(frame: torch.Tensor, plan: TilePlan, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 ``HxWx3`` CUDA tensor -> ``N x 3 x th x tw`` of ``dtype`` (float32 or float16)."""
    _check_cuda(frame, "frame")
    check_plan(plan)
    check_frame(frame.shape, frame.stride(), str(frame.dtype).removeprefix("torch."), plan)
    if dtype not in (torch.float32, torch.float16):  # the float32 kernel would write past a narrower `out`
        raise ShapeError(f"dtype: expected torch.float32 or torch.float16, got {dtype}")
    th, tw = plan.tile_shape
    out = torch.empty((len(plan), 3, th, tw), dtype=dtype, device=frame.device)
    sy, sx, sc = frame.stride()
    count = out.numel() // 3
    i64, i32 = ctypes.c_longlong, ctypes.c_int
    origins = _origins(plan.rows, frame.device), _origins(plan.cols, frame.device)
    args = [
        _pointer(frame), (sy, i64), (sx, i64), (sc, i64), *(_pointer(t) for t in origins),
        (len(plan.cols.spans), i32), (th, i32), (tw, i32), (count, i64), _pointer(out),
    ]  # fmt: skip
    _launch("pack_f16" if dtype == torch.float16 else "pack_f32", frame.device, count, args)
    _in_use(origins, frame.device)
    return out


def _check_cuda(tensor: object, argument: str) -> None:
    """The kernels take raw pointers: anything but a dense CUDA tensor would be read as one."""
    if not isinstance(tensor, torch.Tensor) or not tensor.is_cuda or tensor.layout != torch.strided:
        where = tensor.device if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ShapeError(f"{argument}: expected a dense CUDA tensor, got {where}")


def blend(batch: torch.Tensor, plan: TilePlan, *, scale: int, mode: BlendMode = "crop") -> torch.Tensor:
    """``N x 3 x th*s x tw*s`` float32 or float16 CUDA tensor -> uint8 ``(H*s)x(W*s)x3``."""
    _check_cuda(batch, "batch")
    check_plan(plan)
    check_batch(batch.shape, str(batch.dtype).removeprefix("torch."), plan, scale)
    batch = batch.contiguous()
    height, width = (n * scale for n in plan.frame_shape)
    out = torch.empty((height, width, 3), dtype=torch.uint8, device=batch.device)
    rows = _table(plan.rows, scale, mode, batch.device)
    cols = _table(plan.cols, scale, mode, batch.device)
    i32 = ctypes.c_int
    args = [
        _pointer(batch), (batch.shape[2], i32), (batch.shape[3], i32), (len(plan.cols.spans), i32),
        *(_pointer(t) for t in rows), *(_pointer(t) for t in cols),
        (height, i32), (width, i32), (int(mode == "crop"), i32), _pointer(out),
    ]  # fmt: skip
    _launch("blend_f16" if batch.dtype == torch.float16 else "blend_f32", batch.device, height * width, args)
    _in_use((*rows, *cols), batch.device)
    return out
