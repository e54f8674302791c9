from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srsdk.data import TrainingSet, downscale, modcrop
from srsdk.errors import InputError


def _write_pair(folder: Path, name: str, rgb: np.ndarray, edges: np.ndarray) -> None:
    (folder / "img").mkdir(exist_ok=True)
    (folder / "edge").mkdir(exist_ok=True)
    Image.fromarray(rgb).save(folder / "img" / f"{name}.png")
    Image.fromarray(edges).save(folder / "edge" / f"{name}.png")


def test_modcrop_and_downscale() -> None:
    im = Image.new("RGB", (13, 10))
    assert modcrop(im, 3).size == (12, 9)
    assert downscale(modcrop(im, 3), 3).size == (4, 3)
    with pytest.raises(ValueError, match="not a multiple"):
        downscale(im, 3)


@pytest.mark.parametrize("scale", [2, 3])
def test_patches_stay_aligned_through_augmentation(tmp_path: Path, scale: int) -> None:
    # The boundary map is the photo's red channel, so any misalignment between the HR
    # patch and its boundary patch (crop offset, flip, transpose) shows up exactly.
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (60, 84, 3), dtype=np.uint8)
    _write_pair(tmp_path, "a", rgb, rgb[..., 0].copy())
    data = TrainingSet(tmp_path / "img", tmp_path / "edge", scale=scale)
    batch = data.sample(32, 8, torch.Generator().manual_seed(0))
    assert batch.lr.shape == (32, 3, 8, 8)
    assert batch.hr.shape == (32, 3, 8 * scale, 8 * scale)
    assert torch.equal(batch.boundary[:, 0], batch.hr[:, 0])
    # LR patches are the downscaled HR patches (interior, away from the patch edge).
    for lr, hr in zip(batch.lr[:4], batch.hr[:4], strict=True):
        hr_img = Image.fromarray((hr.permute(1, 2, 0) * 255).round().byte().numpy())
        ref = torch.from_numpy(np.array(downscale(hr_img, scale))).permute(2, 0, 1).float() / 255
        assert (ref - lr)[:, 2:-2, 2:-2].abs().max() <= 2 / 255


def test_downscaled_copies_are_extra_hr_images_with_their_boundary_maps(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    edges = np.zeros((60, 90), np.uint8)
    edges[:, 45] = 255  # one vertical boundary through the middle
    _write_pair(tmp_path, "a", rgb, edges)
    plain = TrainingSet(tmp_path / "img", tmp_path / "edge", scale=2)
    data = TrainingSet(tmp_path / "img", tmp_path / "edge", scale=2, downscales=(0.8, 0.5))
    assert len(data) == 3 and torch.equal(data.hr[0], plain.hr[0]) and torch.equal(data.lr[0], plain.lr[0])
    assert [tuple(t.shape[1:]) for t in data.hr] == [(60, 90), (48, 72), (30, 44)]  # 45 cropped to a multiple of 2
    half = Image.fromarray(rgb).resize((45, 30), Image.Resampling.BICUBIC)
    assert torch.equal(data.hr[2].permute(1, 2, 0), torch.from_numpy(np.array(half))[:, :44])
    for hr, lr, edge in zip(data.hr, data.lr, data.boundary, strict=True):
        assert lr.shape[1:] == (hr.shape[1] // 2, hr.shape[2] // 2) and edge.shape[1:] == hr.shape[1:]
    # The boundary follows the photo: still one vertical line, at the scaled column.
    for edge, column in zip(data.boundary, (45, 36, 22), strict=True):
        profile = edge[0].float().mean(0)
        assert abs(int(profile.argmax()) - column) <= 1 and profile.sum() < 3 * 255
    with pytest.raises(InputError, match=r"downscale factors must be in \(0, 1\)"):
        TrainingSet(tmp_path / "img", tmp_path / "edge", scale=2, downscales=(1.5,))


def test_photos_and_maps_are_read_as_stored_whatever_their_exif_orientation(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    _write_pair(tmp_path, "a", rgb, rgb[..., 0].copy())
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 when shown": a phone photo; its map carries no such tag
    Image.fromarray(rgb).save(tmp_path / "img" / "a.png", exif=exif)
    data = TrainingSet(tmp_path / "img", tmp_path / "edge", scale=2)
    assert torch.equal(data.hr[0], torch.from_numpy(rgb).permute(2, 0, 1))
    assert torch.equal(data.boundary[0][0], data.hr[0][0])  # still aligned pixel for pixel


def test_missing_boundary_map_is_named(tmp_path: Path) -> None:
    rgb = np.zeros((40, 40, 3), np.uint8)
    _write_pair(tmp_path, "a", rgb, rgb[..., 0].copy())
    Image.fromarray(rgb).save(tmp_path / "img" / "b.png")
    with pytest.raises(InputError, match=r"no boundary map for b\.png"):
        TrainingSet(tmp_path / "img", tmp_path / "edge", scale=2)


@pytest.mark.shared
def test_real_training_set_loads_with_boundaries(bsds_train) -> None:  # type: ignore[no-untyped-def]
    images, boundaries = bsds_train
    data = TrainingSet(images, boundaries, scale=4)
    assert len(data) == 200
    batch = data.sample(4, 24, torch.Generator().manual_seed(0))
    assert batch.hr.shape == (4, 3, 96, 96)
    assert float(batch.boundary.min()) >= 0.0 and float(batch.boundary.max()) <= 1.0
    # Human boundaries are sparse but present.
    assert 0.0 < float((torch.stack(data.boundary) > 0).float().mean()) < 0.3
