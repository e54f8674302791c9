"""DLPack arrays (CuPy, JAX, NumPy, ...) as torch tensors, for the frame and tiling layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from srsdk.errors import ShapeError

_DLPACK_CPU = 1
"""``kDLCPU``, the device type ``__dlpack_device__`` reports for host memory."""


def from_dlpack(value: Any) -> torch.Tensor:
    """A DLPack array (CuPy, JAX, ...) as a torch tensor on its device, without a copy where
    it can. ``torch.from_dlpack`` aborts the whole process (an uncatchable C++ error) on
    negative strides, so host arrays come through numpy (a flipped or read-only view is
    copied), and device arrays with negative strides are refused."""
    if value.__dlpack_device__()[0] == _DLPACK_CPU:
        try:
            host = np.from_dlpack(value)  # exported once: some producers allow no second time
        except (TypeError, RuntimeError, BufferError, ValueError):
            return torch.from_dlpack(value)  # a dtype numpy lacks (bfloat16, say): torch takes it
        if any(s < 0 for s in host.strides) or not host.flags.writeable:  # torch takes neither as it is
            host = np.array(host)
        return torch.from_numpy(host)
    interface = getattr(value, "__cuda_array_interface__", None)
    strides = interface.get("strides") if isinstance(interface, dict) else None
    if strides is not None and any(s < 0 for s in strides):
        raise ShapeError(f"DLPack array: negative strides {tuple(strides)} (a flipped view); copy it first")
    return torch.from_dlpack(value)
