"""Images, the degradation model, and training patches.

The degradation is the one the SR literature evaluates with: HR cropped to a multiple of
the scale, LR made by bicubic downscaling with antialiasing as MATLAB ``imresize`` does
it (PIL's ``BICUBIC`` reproduces it). Training and evaluation share these functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srsdk.errors import InputError
from srsdk.io.image import image_files, read_rgb


def modcrop(image: Image.Image, scale: int) -> Image.Image:
    """Crop the right and bottom so both sides are multiples of ``scale``."""
    w, h = image.size
    return image.crop((0, 0, w - w % scale, h - h % scale))


def downscale(hr: Image.Image, scale: int) -> Image.Image:
    """Bicubic downscale with antialiasing (MATLAB ``imresize`` semantics)."""
    w, h = hr.size
    if w % scale or h % scale:
        raise ValueError(f"HR size {w}x{h} is not a multiple of the scale {scale}")
    return hr.resize((w // scale, h // scale), Image.Resampling.BICUBIC)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> uint8 tensor ``(3,H,W)``."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()


@dataclasses.dataclass(frozen=True)
class Batch:
    """A training batch; images in ``[0,1]``."""

    lr: torch.Tensor
    """``(N,3,p,p)``"""
    hr: torch.Tensor
    """``(N,3,sp,sp)``"""
    boundary: torch.Tensor
    """``(N,1,sp,sp)``: mean human boundary annotation, aligned with ``hr``."""


class TrainingSet:
    """Photos with aligned boundary maps, degraded once, sampled as random patches.

    Every photo in ``images`` needs a boundary map of the same stem and size in
    ``boundaries`` (greyscale, 0 = no annotator marked a boundary, 255 = all did).
    Flips and transposes commute with the symmetric bicubic kernel at an integer factor
    (up to PIL's rounding between its two passes), so the LR image is computed once per
    photo and augmented together with its HR and boundary patches.

    ``downscales`` adds, for each factor ``f`` (``0 < f < 1``), a copy of every photo
    downscaled by ``f`` as a further HR image (bicubic with antialiasing, like the
    degradation; its boundary map bilinear, so it stays in ``[0, 1]``), as FSRCNN trained on
    its 91 images: detail gets denser per pixel, as in the small test images of the
    literature. Photos and copies are sampled alike.
    """

    def __init__(self, images: Path, boundaries: Path, *, scale: int, downscales: tuple[float, ...] = ()) -> None:
        for f in downscales:
            if not 0 < f < 1:
                raise InputError(f"downscale factors must be in (0, 1), got {f}")
        self.scale = scale
        self.lr: list[torch.Tensor] = []
        self.hr: list[torch.Tensor] = []
        self.boundary: list[torch.Tensor] = []
        self._names: list[str] = []
        files = image_files(images)
        if not files:
            raise InputError(f"no images in {images}")
        digest = hashlib.sha256()
        for path in files:
            edge_path = boundaries / (path.stem + ".png")
            if not edge_path.is_file():
                raise InputError(f"no boundary map for {path.name} (expected {edge_path})")
            photo_bytes, edge_bytes = path.read_bytes(), edge_path.read_bytes()
            for part in (path.name.encode(), photo_bytes, edge_bytes):
                digest.update(len(part).to_bytes(8, "little") + part)
            # As stored, not turned by an EXIF orientation: a map is aligned with its photo's
            # pixels (and training's flips and quarter turns make orientation moot).
            photo = read_rgb(path, photo_bytes, upright=False)
            edge = read_rgb(edge_path, edge_bytes, upright=False).convert("L")
            if edge.size != photo.size:
                raise InputError(
                    f"boundary map {edge_path} is {edge.width}x{edge.height}, its photo {photo.width}x{photo.height}"
                )
            if min(photo.size) < 2 * scale:
                raise InputError(f"{path.name} is {photo.size[0]}x{photo.size[1]}: too small to train on at x{scale}")
            self._add(photo, edge)
            self._names.append(path.name)
            for f in downscales:
                size = (round(photo.width * f), round(photo.height * f))
                if min(size) < 2 * scale:
                    raise InputError(f"{path.name} downscaled by {f} is {size[0]}x{size[1]}: too small to train on at x{scale}")
                self._add(photo.resize(size, Image.Resampling.BICUBIC), edge.resize(size, Image.Resampling.BILINEAR))
                self._names.append(f"{path.name} downscaled by {f}")

        smallest = min(range(len(self.lr)), key=lambda i: min(self.lr[i].shape[1:]))
        self.min_side = min(self.lr[smallest].shape[1:])
        """The shortest side of any LR image: the largest patch :meth:`sample` can cut."""
        self.smallest = self._names[smallest]
        """Which photo (and downscale) that is, for errors."""
        self.sha256 = digest.hexdigest()
        """Of the photos' names and the bytes of every photo and boundary map, in order:
        the same data wherever its folders lie."""

    def _add(self, photo: Image.Image, edge: Image.Image) -> None:
        hr = modcrop(photo, self.scale)
        self.hr.append(to_tensor(hr))
        self.lr.append(to_tensor(downscale(hr, self.scale)))
        edge = edge.crop((0, 0, *hr.size))
        self.boundary.append(torch.from_numpy(np.array(edge, dtype=np.uint8))[None])

    def __len__(self) -> int:
        return len(self.hr)

    def check_patch(self, patch: int) -> None:
        """Raise :class:`InputError` unless every image holds an LR patch of ``patch`` pixels."""
        if patch > self.min_side:
            raise InputError(
                f"the {patch}-pixel LR patch is larger than {self.smallest} ({self.min_side} LR pixels at "
                f"x{self.scale}); use a smaller --patch or leave that photo out"
            )

    def sample(self, batch: int, patch: int, generator: torch.Generator) -> Batch:
        """``batch`` random ``patch``-pixel LR patches with their HR and boundary patches."""
        s = self.scale
        self.check_patch(patch)
        lrs, hrs, edges = [], [], []
        picks = torch.randint(len(self), (batch,), generator=generator).tolist()
        for i in picks:
            lr = self.lr[i]
            h, w = lr.shape[1:]
            y = int(torch.randint(h - patch + 1, (1,), generator=generator))
            x = int(torch.randint(w - patch + 1, (1,), generator=generator))
            flip_h, flip_v, transpose = torch.randint(2, (3,), generator=generator).tolist()
            crops = (
                lr[:, y : y + patch, x : x + patch],
                self.hr[i][:, s * y : s * (y + patch), s * x : s * (x + patch)],
                self.boundary[i][:, s * y : s * (y + patch), s * x : s * (x + patch)],
            )
            out = []
            for t in crops:
                if flip_h:
                    t = t.flip(2)
                if flip_v:
                    t = t.flip(1)
                if transpose:
                    t = t.transpose(1, 2)
                out.append(t)
            lrs.append(out[0])
            hrs.append(out[1])
            edges.append(out[2])
        return Batch(
            lr=torch.stack(lrs).float().div_(255),
            hr=torch.stack(hrs).float().div_(255),
            boundary=torch.stack(edges).float().div_(255),
        )
