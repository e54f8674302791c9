from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from srsdk import metrics
from srsdk.evaluate import evaluate


def _photo(seed: int = 0, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)).astype(np.int16)
    return np.clip(smooth + rng.integers(-20, 21, smooth.shape), 0, 255).astype(np.uint8)


def test_identical_images_score_perfectly() -> None:
    a = _photo()
    assert metrics.psnr(a, a) == math.inf
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert metrics.gmsd(a, a) == pytest.approx(0.0, abs=1e-12)


def test_psnr_of_a_known_grey_offset() -> None:
    # Grey pixels (R = G = B = v) have Y = 16 + 219 v / 255, so a 5-level offset is a
    # luma error of 219 * 5 / 255 everywhere.
    a = np.full((20, 30, 3), 100, np.uint8)
    b = a + 5
    assert metrics.psnr(a, b) == pytest.approx(20 * math.log10(255 / (219 * 5 / 255)), abs=1e-9)


def test_ssim_of_a_constant_shift_is_its_luminance_term() -> None:
    a = np.full((32, 32, 3), 60, np.uint8)
    b = np.full((32, 32, 3), 90, np.uint8)
    ya, yb = 16 + 219 * 60 / 255, 16 + 219 * 90 / 255
    c1 = (0.01 * 255) ** 2
    expected = (2 * ya * yb + c1) / (ya**2 + yb**2 + c1)
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_ssim_of_one_window_equals_the_formula() -> None:
    # An 11x11 image is exactly one window: SSIM is the formula with Gaussian-weighted
    # means, variances and covariance (sigma 1.5, population statistics).
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (11, 11))
    y = np.clip(0.8 * x + rng.normal(0, 20, x.shape) + 10, 0, 255)
    r = np.arange(11) - 5
    w = np.outer(np.exp(-(r**2) / 4.5), np.exp(-(r**2) / 4.5))
    w /= w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cxy = (w * (x - mx) * (y - my)).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert metrics.ssim(x, y) == pytest.approx(expected, rel=1e-9)


def test_gmsd_of_a_single_bright_pixel_by_hand() -> None:
    # 4x4 luma, one pixel of 40 against a flat reference. The 2x2 mean and stride-2
    # downsampling give [[10, 0], [0, 0]]; Prewitt / 3 with zero padding gives gradient
    # magnitudes [[0, 10/3], [10/3, 10*sqrt(2)/3]] and 0 for the reference, so the
    # similarity map is c / (g^2 + c), c = 170, and GMSD is its sample std.
    distorted = np.zeros((4, 4))
    distorted[0, 0] = 40
    g = np.array([0, 10 / 3, 10 / 3, 10 * math.sqrt(2) / 3])
    expected = float(np.std(170 / (g**2 + 170), ddof=1))
    assert metrics.gmsd(distorted, np.zeros((4, 4))) == pytest.approx(expected, rel=1e-12)


def test_luma_uses_bt601_coefficients() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    assert metrics.luma(rgb)[0] == pytest.approx([16 + 65.481, 16 + 128.553, 16 + 24.966, 235.0])


def test_metrics_worsen_monotonically_with_noise() -> None:
    a = _photo(1)
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(a.shape)
    scores = []
    for sigma in (2, 6, 15):
        b = np.clip(a + sigma * noise, 0, 255).astype(np.uint8)
        scores.append((metrics.psnr(b, a), metrics.ssim(b, a), metrics.gmsd(b, a)))
    psnrs, ssims, gmsds = zip(*scores, strict=True)
    assert psnrs[0] > psnrs[1] > psnrs[2]
    assert ssims[0] > ssims[1] > ssims[2]
    assert gmsds[0] < gmsds[1] < gmsds[2]


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))


def test_bad_inputs_are_shape_errors_not_silent_scores() -> None:
    from srsdk.errors import ShapeError

    with pytest.raises(ShapeError, match="expected uint8 RGB, got float32"):  # [0, 1] floats: the wrong scale
        metrics.psnr(np.zeros((8, 8, 3), np.float32), np.ones((8, 8, 3), np.float32))
    with pytest.raises(ShapeError, match="a border of 5 leaves nothing of a 8x8 image"):
        metrics.shave(np.zeros((8, 8, 3), np.uint8), 5)
    with pytest.raises(ShapeError, match="empty images"):
        metrics.psnr(np.zeros((0, 4, 3), np.uint8), np.zeros((0, 4, 3), np.uint8))


def test_a_flat_image_scored_exactly_counts_as_the_cap_and_keeps_json_valid(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bicubic reproduces a flat image exactly (infinite PSNR): the mean must stay finite."""
    import json

    from srsdk.errors import InputError
    from srsdk.evaluate import PSNR_CAP

    folder = tmp_path / "flat"
    folder.mkdir()
    Image.new("RGB", (40, 40), (90, 120, 200)).save(folder / "flat.png")
    report = evaluate([folder], scale=2, upscale=lambda lr: np.asarray(Image.fromarray(lr).resize((40, 40), Image.Resampling.BICUBIC)))
    assert report.datasets["flat"]["bicubic"]["psnr_y"] == PSNR_CAP
    json.loads(json.dumps(report.datasets, allow_nan=False))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "FLAT").mkdir()
    with pytest.raises(InputError, match="folder names must differ"):
        evaluate([folder, tmp_path / "b" / "FLAT"], scale=2, upscale=lambda lr: lr)


@pytest.mark.shared
def test_bicubic_on_set5_x2_matches_the_literature(set5) -> None:  # type: ignore[no-untyped-def]
    def bicubic(lr: np.ndarray) -> np.ndarray:
        h, w = lr.shape[:2]
        return np.asarray(Image.fromarray(lr).resize((2 * w, 2 * h), Image.Resampling.BICUBIC))

    report = evaluate([set5], scale=2, upscale=bicubic)
    assert report.failures == []
    assert report.datasets["set5"]["n"] == 5
    assert report.datasets["set5"]["bicubic"]["psnr_y"] == pytest.approx(33.67, abs=0.02)
    assert report.datasets["set5"]["psnr_y"] == report.datasets["set5"]["bicubic"]["psnr_y"]
