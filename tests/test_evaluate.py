from __future__ import annotations

import numpy as np
import pytest
import torch

from srsdk import pretrained
from srsdk.errors import InputError, ShapeError
from srsdk.evaluate import evaluate
from srsdk.inference import upscale_array, upscale_tiled
from srsdk.model import SCALES, Architecture, SPNet


@pytest.mark.shared
@pytest.mark.parametrize("scale", SCALES)
def test_shipped_weights_reproduce_their_manifest_on_set5(set5, scale: int) -> None:  # type: ignore[no-untyped-def]
    recorded = pretrained.manifest()["weights"][str(scale)]["eval"]["set5"]
    net = pretrained.load_pretrained(scale).deploy()
    report = evaluate([set5], scale=scale, upscale=lambda lr: upscale_array(net, lr))
    got = report.datasets["set5"]
    assert got["n"] == recorded["n"] == 5
    assert got["psnr_y"] == pytest.approx(recorded["psnr_y"], abs=0.01)
    assert got["ssim_y"] == pytest.approx(recorded["ssim_y"], abs=1e-4)
    assert got["gmsd"] == pytest.approx(recorded["gmsd"], abs=1e-4)
    # and the network beats bicubic by a wide margin on every metric
    assert got["psnr_y"] > got["bicubic"]["psnr_y"] + 1.0
    assert got["ssim_y"] > got["bicubic"]["ssim_y"]
    assert got["gmsd"] < got["bicubic"]["gmsd"]


def test_upscale_array_rejects_bad_arrays() -> None:
    net = SPNet(arch=Architecture(scale=2)).deploy()
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ShapeError, match="expected a non-empty HxWx3 uint8 array"):
            upscale_array(net, bad)
    assert upscale_array(net, np.zeros((3, 5, 3), np.uint8)).shape == (6, 10, 3)
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ShapeError, match="expected a non-empty HxWx3 uint8 array"):
            upscale_tiled(net, bad, tile=32, halo=2)
    for bad in (None, [[[0, 0, 0]]], torch.zeros(4, 4, 3, dtype=torch.uint8)):  # not numpy: was an AttributeError
        with pytest.raises(ShapeError, match=r"uint8 numpy array, got (NoneType|list|Tensor) \(Upscaler takes"):
            upscale_array(net, bad)  # type: ignore[arg-type]
        with pytest.raises(ShapeError, match=r"uint8 numpy array, got (NoneType|list|Tensor) \(Upscaler takes"):
            upscale_tiled(net, bad, tile=32, halo=2)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"net: expected a DeployNet .*, got NoneType"):
        upscale_array(None, np.zeros((3, 5, 3), np.uint8))  # type: ignore[arg-type]
    for batch in (0, 1.5, True):
        with pytest.raises(ShapeError, match="batch: expected an int >= 1"):
            upscale_tiled(net, np.zeros((8, 8, 3), np.uint8), tile=8, halo=2, batch=batch)  # type: ignore[arg-type]
    flipped = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)[::-1]  # negative strides
    np.testing.assert_array_equal(upscale_tiled(net, flipped, tile=24, halo=10), upscale_array(net, flipped))
