"""The PReLU forms in srsdk.engine.prelu compute torch's PReLU bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srsdk.engine.prelu import MaxPReLU, RowPReLU, replace_prelu


def _prelu(channels: int, dtype: torch.dtype) -> nn.PReLU:
    """Slopes below 0, between 0 and 1, exactly 1 and above 1 (the sign-flip cases)."""
    prelu = nn.PReLU(channels)
    with torch.no_grad():
        prelu.weight.copy_(torch.linspace(-0.8, 1.6, channels))
        prelu.weight[0] = 1.0
    return prelu.to(dtype)


@pytest.mark.parametrize("form", [MaxPReLU, RowPReLU])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(("n", "channels", "h", "w"), [(1, 24, 17, 13), (2, 8, 6, 10), (1, 32, 1, 1), (3, 3, 5, 7)])
def test_forms_equal_torch_prelu_bit_for_bit(
    form: type[MaxPReLU | RowPReLU], dtype: torch.dtype, channels_last: bool, n: int, channels: int, h: int, w: int
) -> None:
    prelu = _prelu(channels, dtype)
    x = torch.randn(n, channels, h, w, generator=torch.Generator().manual_seed(channels)).to(dtype) * 4
    x[0, :, 0, 0] = 0.0  # the boundary between the two slopes
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected = prelu(x)
    for module in (form(prelu), torch.jit.script(form(prelu))):
        got = module(x)
        assert got.dtype == dtype
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    if form is RowPReLU and channels_last:
        assert form(prelu)(x).is_contiguous(memory_format=torch.channels_last)


def test_row_prelu_uses_whole_pixel_rows_whatever_the_pixel_count() -> None:
    prelu = _prelu(24, torch.bfloat16)
    row = RowPReLU(prelu)
    assert row.pixels * 24 % 32 == 0  # a row is a whole number of 64-byte vectors
    for h, w in ((4, 8), (3, 6), (1, 3)):  # pixel counts divisible by 4, by 2, by neither
        x = torch.randn(1, 24, h, w).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(row(x), prelu(x), rtol=0, atol=0)


def test_replace_prelu_swaps_every_prelu_in_place() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(4), nn.Sequential(nn.Conv2d(4, 4, 1), nn.PReLU(4)))
    x = torch.randn(1, 3, 9, 9)
    expected = net(x)
    assert replace_prelu(net, RowPReLU) is net
    assert not any(isinstance(m, nn.PReLU) for m in net.modules())
    assert sum(isinstance(m, RowPReLU) for m in net.modules()) == 2
    torch.testing.assert_close(net(x), expected, rtol=0, atol=0)
