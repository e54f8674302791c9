"""The frame kinds the Upscaler accepts, converted to one working form and back.

Working form: a uint8 ``HxWx3`` RGB frame, as a numpy array (CPU, any non-negative strides)
or a torch tensor (CUDA). Accepted kinds, and what comes back for each:

* numpy ``HxWx3`` uint8 -> numpy;
* ``PIL.Image`` in mode RGB -> PIL image;
* torch ``HxWx3`` uint8 (CPU or CUDA) -> torch, same device;
* torch ``1x3xHxW`` float in ``[0, 1]`` (CPU or CUDA) -> torch float32 ``1x3xsHxsW``, same
  device (the frame is quantised to 8 bits on the way in: video frames are 8-bit);
* anything else with ``__dlpack__`` (CuPy, JAX, ...) -> a torch tensor on its device.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Literal

import numpy as np
import torch

from srsdk._dlpack import from_dlpack
from srsdk.errors import ShapeError

Kind = Literal["numpy", "pil", "torch_hwc", "torch_nchw"]


@dataclasses.dataclass(frozen=True)
class FrameKind:
    """How to give a result back in the caller's form."""

    kind: Kind
    device: torch.device


def _check_hwc(shape: tuple[int, ...], dtype: str, what: str) -> None:
    if dtype != "uint8" or len(shape) != 3 or shape[2] != 3 or 0 in shape:
        raise ShapeError(f"{what}: expected a non-empty HxWx3 uint8 RGB frame, got {dtype} {tuple(shape)}")


def check(frame: Any) -> None:
    """Refuse a frame of the wrong kind, dtype, shape or device, without reading its pixels
    (cheap, so the Upscaler checks each frame in the caller's thread; a DLPack array other
    than a torch tensor is checked once converted, by :func:`to_working`)."""
    from PIL import Image

    if isinstance(frame, np.ndarray):
        _check_hwc(frame.shape, frame.dtype.name, "numpy frame")
    elif isinstance(frame, Image.Image):
        if frame.mode != "RGB":
            raise ShapeError(f"PIL frame: expected mode RGB, got {frame.mode} (use image.convert('RGB'))")
        if 0 in frame.size:
            raise ShapeError(f"PIL frame: expected a non-empty image, got {frame.size}")
    elif isinstance(frame, torch.Tensor):
        if frame.device.type not in ("cpu", "cuda") or frame.layout != torch.strided:
            raise ShapeError(f"tensor frame: expected a dense CPU or CUDA tensor, got {frame.layout} on {frame.device}")
        if frame.dtype == torch.uint8:
            _check_hwc(tuple(frame.shape), "uint8", "tensor frame")
        elif not frame.dtype.is_floating_point:
            raise ShapeError(
                f"tensor frame: expected uint8 HxWx3 or float 1x3xHxW, got {frame.dtype} {tuple(frame.shape)}"
            )
        elif frame.ndim != 4 or frame.shape[0] != 1 or frame.shape[1] != 3 or 0 in frame.shape:
            raise ShapeError(f"float tensor frame: expected 1x3xHxW, got {tuple(frame.shape)}")
    elif not hasattr(frame, "__dlpack__"):
        raise ShapeError(
            f"frame: expected a numpy array, PIL image, torch tensor or DLPack array, got {type(frame).__name__}"
        )


def to_working(frame: Any) -> tuple[np.ndarray | torch.Tensor, FrameKind]:
    """``frame`` as a uint8 ``HxWx3`` numpy array (CPU) or CUDA tensor, and its kind."""
    from PIL import Image

    cpu = torch.device("cpu")
    if not isinstance(frame, (np.ndarray, Image.Image, torch.Tensor)) and hasattr(frame, "__dlpack__"):
        frame = from_dlpack(frame)
    check(frame)
    if isinstance(frame, np.ndarray):
        if any(s < 0 for s in frame.strides):
            frame = np.ascontiguousarray(frame)
        return frame, FrameKind("numpy", cpu)
    if isinstance(frame, Image.Image):
        try:
            return np.asarray(frame), FrameKind("pil", cpu)
        except (AssertionError, OSError, ValueError) as e:  # closed (Pillow asserts), or a truncated file
            raise ShapeError(f"PIL frame: its pixels cannot be read ({e or 'the image is closed'})") from e
    if frame.dtype == torch.uint8:
        work = frame if frame.is_cuda else frame.numpy()
        return work, FrameKind("torch_hwc", frame.device)
    # a float 1x3xHxW frame (check() refused every other tensor)
    finite, largest = torch.stack([torch.isfinite(frame).all().float(), frame.amax().float()]).tolist()  # one sync
    if not finite:
        raise ShapeError("float tensor frame: contains NaN or infinity")
    if largest > 1.5:  # most likely 0-255 values: they would clamp to a white frame
        warnings.warn(
            "float tensor frame: values above 1.5, but float frames are read as [0, 1] "
            "(divide 0-255 frames by 255, or pass uint8 HxWx3)",
            stacklevel=1,  # raised in the Upscaler's worker thread: no caller's line to point at
        )
    hwc = (frame[0].float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
    work = hwc if frame.is_cuda else hwc.contiguous().numpy()
    return work, FrameKind("torch_nchw", frame.device)


def from_working(out: np.ndarray | torch.Tensor, kind: FrameKind) -> Any:
    """A uint8 ``HxWx3`` result in the caller's form."""
    from PIL import Image

    if kind.kind == "numpy":
        return out if isinstance(out, np.ndarray) else out.cpu().numpy()
    if kind.kind == "pil":
        return Image.fromarray(out if isinstance(out, np.ndarray) else out.cpu().numpy(), "RGB")
    tensor = torch.from_numpy(out) if isinstance(out, np.ndarray) else out
    tensor = tensor.to(kind.device)
    if kind.kind == "torch_hwc":
        return tensor
    return tensor.permute(2, 0, 1).contiguous()[None].float().div_(255)  # NCHW in memory too
