"""PReLU rewritten into the forms each CPU backend runs fast, bit for bit the same function.

``PReLU(x) = x if x >= 0 else a * x`` (one slope ``a`` per channel) equals ``max(x, a * x)``
when ``a <= 1`` and ``min(x, a * x)`` when ``a > 1``; with ``s = sign(1 - a)`` both are
``s * max(s * x, s * x * a)``, and the sign flips are exact. The two forms differ only in
how the slope is laid out against the activations' memory:

* :class:`MaxPReLU` broadcasts a ``(1, C, 1, 1)`` slope: ONNX Runtime's Max and Mul beat its
  PRelu kernel on this network (``benchmarks/onnx_options.py``).
* :class:`RowPReLU` works on a channels-last tensor's memory as rows of ``k`` whole pixels,
  against the slope repeated ``k`` times: torch's own PReLU (and any per-channel broadcast)
  on channels-last bfloat16 runs a scalar loop over the few channels, ~8x slower than this
  contiguous, vectorised form (``benchmarks/backends.py`` measures the network with it).
"""

import math

import torch
from torch import nn


def _signs(slope: torch.Tensor) -> torch.Tensor:
    return torch.where(slope > 1, -1.0, 1.0).to(slope.dtype)


class MaxPReLU(nn.Module):
    """``s * max(s * x, s * x * a)`` with a ``(1, C, 1, 1)`` slope (any layout)."""

    slope: torch.Tensor
    sign: torch.Tensor

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        slope = prelu.weight.detach().reshape(1, -1, 1, 1)
        self.register_buffer("slope", slope.clone())
        self.flip = bool((slope > 1).any())
        self.register_buffer("sign", _signs(slope))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.flip:
            return torch.maximum(x, x * self.slope)
        u = x * self.sign
        return torch.maximum(u, u * self.slope) * self.sign


class RowPReLU(nn.Module):
    """PReLU on a channels-last ``(N, C, H, W)`` tensor, computed on its memory viewed as
    rows of ``k`` pixels (``k * C`` values, a multiple of 32 where the size allows).

    The output is channels-last too. Any other layout falls back to the same function
    with a per-channel broadcast (correct, only slower).
    """

    row: torch.Tensor

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        slope = prelu.weight.detach().reshape(-1)
        self.channels = slope.numel()
        self.pixels = 32 // math.gcd(self.channels, 32)
        """Pixels per row, at most; fewer when the pixel count does not divide by it."""
        self.flip = bool((slope > 1).any())
        self.register_buffer("row", slope.repeat(self.pixels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if not x.is_contiguous(memory_format=torch.channels_last):
            return self._rows(x.permute(0, 2, 3, 1), c).permute(0, 3, 1, 2)
        k = self.pixels
        while (n * h * w) % k != 0:
            k = k // 2
        rows = x.permute(0, 2, 3, 1).reshape(-1, k * c)  # a view: NHWC memory is contiguous
        return self._rows(rows, k * c).reshape(n, h, w, c).permute(0, 3, 1, 2)

    def _rows(self, v: torch.Tensor, length: int) -> torch.Tensor:
        """PReLU on ``v`` whose last axis holds ``length // C`` whole pixels."""
        slope = self.row[:length]
        if not self.flip:
            return torch.maximum(v, v * slope)
        # max(x, 0) + a * min(x, 0): one term is always zero, so the sum is exact.
        return torch.addcmul(torch.clamp_min(v, 0), torch.clamp_max(v, 0), slope)


def replace_prelu(net: nn.Module, form: type[MaxPReLU | RowPReLU]) -> nn.Module:
    """``net`` with every :class:`torch.nn.PReLU` replaced by ``form`` (in place)."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.PReLU):
                setattr(module, name, form(child))
    return net
