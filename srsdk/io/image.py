"""Image files: reading as 8-bit RGB, listing folders, writing atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from srsdk.errors import InputError
from srsdk.io.atomic import atomic_output

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb(path: Path, data: bytes | None = None) -> Image.Image:
    """Read an image as 8-bit RGB (greyscale is replicated, alpha is dropped); from ``data``,
    the file's bytes already read, where given (``path`` then only names it in errors)."""
    try:
        with Image.open(path if data is None else io.BytesIO(data)) as im:
            im.load()
            if im.mode.startswith("I;16"):
                arr = np.asarray(im, dtype=np.float64) / 257.0  # 16-bit to 8-bit, 65535 -> 255
                return Image.fromarray(np.round(arr).astype(np.uint8)).convert("RGB")
            if im.mode in ("I", "F"):
                raise InputError(f"{path}: {im.mode!r} (32-bit) images are not supported")
            return im.convert("RGB")
    except FileNotFoundError as e:
        raise InputError(f"no such file: {path}") from e
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"cannot read image {path}: {e}") from e


def write_image(image: Image.Image, path: Path) -> None:
    """Save ``image`` to ``path`` (format from the suffix); ``path`` is either the
    complete new image or untouched."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if path.suffix.lower() not in IMAGE_SUFFIXES or fmt is None:
        raise InputError(f"unsupported output format {path.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    with atomic_output(path) as tmp:
        image.save(tmp, format=fmt)
