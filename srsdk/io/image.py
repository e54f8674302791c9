"""Image files: reading as 8-bit RGB, listing folders, writing atomically."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from srsdk.errors import InputError
from srsdk.io.atomic import atomic_output

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS = Image.MAX_IMAGE_PIXELS * 2 if Image.MAX_IMAGE_PIXELS else 2**31
"""Pillow refuses images over this many pixels (its decompression-bomb guard)."""


TIFF_COMPRESSIONS = ("tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits")
"""The TIFF compressions an output keeps from its input (those Pillow writes for any image)."""
MAX_SIDE = {"JPEG": 65500, "WEBP": 16383}
"""The largest width or height a format can hold (where Pillow's encoder has a limit)."""


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name; hidden ones (a name starting with
    a dot, as macOS's ``._`` resource files) are not images to upscale."""
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file although it exists as a name: a link to a
    missing file, a pipe, a socket or a device (reading a pipe would wait for ever); None
    for a regular file, a folder, or no such name at all."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if not path.is_symlink():
            return None if isinstance(e, FileNotFoundError) else f"cannot be read ({e.strerror or e})"
        if e.errno == errno.ELOOP:
            return f"a link that leads back to itself ({path.readlink()})"
        return f"a link to a missing file ({path.readlink()})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return f"not a regular file ({'a pipe' if stat.S_ISFIFO(mode) else 'a socket' if stat.S_ISSOCK(mode) else 'a device'})"


def unreadable_entries(folder: Path) -> list[str]:
    """What :func:`image_files` leaves out of ``folder`` although it is named as an image
    (:func:`unreadable`), each as ``"PATH: why"``, sorted by name, for callers to report as
    skipped."""
    names = (p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    return [f"{p}: {why}" for p in names if (why := unreadable(p))]


def images_in(folder: Path) -> tuple[list[Path], list[str]]:
    """:func:`image_files` and :func:`unreadable_entries` of ``folder``; an error, naming
    the unreadable entries, where it holds no image."""
    files, unreadable = image_files(folder), unreadable_entries(folder)
    if not files:
        raise InputError(f"no images in {folder}" + "".join(f"; skipped: {entry}" for entry in unreadable))
    return files, unreadable


def images_sha256(folder: Path) -> str:
    """A sha256 of the names and bytes of :func:`image_files` in ``folder``: the same images
    wherever they lie and however the folder's path is spelled."""
    digest = hashlib.sha256()
    for path in image_files(folder):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def open_image(path: Path, data: bytes | None = None, *, upright: bool = True) -> Image.Image:
    """Read an image in its own mode, turned upright as its EXIF orientation says (phone
    photos store the sensor's rotation there) unless ``upright`` is False; from ``data``,
    the file's bytes already read, where given (``path`` then only names it in errors).
    ``info`` keeps the ICC profile (and a TIFF's compression), ``info["srsdk_frames"]``
    says how many frames the file holds (only the first is read), and
    ``info["srsdk_lossless"]`` marks a lossless WebP (and ``info["srsdk_16bit"]`` a 16-bit
    greyscale + alpha PNG, which Pillow reads as 8 bits)."""
    try:
        with _pillow_warnings(path), Image.open(path if data is None else io.BytesIO(data)) as im:
            lossless = im.format == "WEBP" and _lossless_webp(im)
            # Pillow reads 16-bit greyscale + alpha PNGs as 8-bit RGBA: they are greys, as "LA".
            grey16 = im.format == "PNG" and [t[3] for t in im.tile] == ["LA;16B"]  # Pillow 10's tiles are plain tuples
            im.load()
            turned = _upright(im, path) if upright else im
            image = turned if turned is not im else im.copy()
            if grey16:
                image = image.convert("LA")  # its info too, without the orientation exif_transpose took out
                image.info["srsdk_16bit"] = True
            image.info["srsdk_frames"] = getattr(im, "n_frames", 1)  # GIF, APNG, TIFF pages: the first is read
            if lossless:
                image.info["srsdk_lossless"] = True
        return image
    except FileNotFoundError as e:
        raise InputError(f"no such file: {path}") from e
    except Image.DecompressionBombError as e:
        raise InputError(f"{path}: larger than the {MAX_PIXELS // 10**6} Mpixels srsdk reads ({e})") from e
    except UnidentifiedImageError as e:  # its message names the BytesIO, not the file
        raise InputError(f"cannot read image {path}: not an image file (or not a format Pillow reads)") from e
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read image {path}: {e}") from e
    except MemoryError:
        raise
    except Exception as e:  # Pillow's decoders raise SyntaxError, TypeError, ... on some damaged files
        raise InputError(f"cannot read image {path}: {type(e).__name__}: {e}") from e


@contextlib.contextmanager
def _pillow_warnings(path: Path) -> Iterator[None]:
    """Pillow's warnings inside (a damaged EXIF block, a palette's odd transparency) as one
    logged line each, naming the file, instead of Python's two lines naming Pillow's source;
    only when the block succeeds (an error says it all)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    said = set()
    for warning in caught:  # each once: Pillow repeats one as it parses a block again
        text = " ".join(str(warning.message).split())
        if not issubclass(warning.category, Image.DecompressionBombWarning) and text not in said:  # past the limit: an error
            said.add(text)
            logging.getLogger("srsdk").warning("%s: %s", path, text)


def exif_of(image: Image.Image, path: Path) -> Image.Exif | None:
    """``image``'s EXIF block, to write back with :func:`write_image`; None, with a warning,
    where it is too damaged to read (the pixels may be fine)."""
    try:
        with _pillow_warnings(path):
            return image.getexif()
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged EXIF block raises what its parser meets
        logging.getLogger("srsdk").warning("%s: its EXIF block cannot be read (%s); not kept", path, e)
        return None


def _upright(im: Image.Image, path: Path) -> Image.Image:
    """``im`` turned as its EXIF orientation says; as stored, with a warning, where the EXIF
    block is too damaged to read (the pixels may be fine)."""
    try:
        return ImageOps.exif_transpose(im)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged EXIF block raises what its parser meets
        logging.getLogger("srsdk").warning("%s: its EXIF block cannot be read (%s); read as stored", path, e)
        return im


def to_rgb(image: Image.Image, path: Path) -> Image.Image:
    """``image`` as 8-bit RGB: greyscale is replicated, alpha dropped, 16-bit scaled to 8."""
    if image.mode.startswith("I;16"):
        arr = np.asarray(image, dtype=np.float64) / 257.0  # 16-bit to 8-bit, 65535 -> 255
        return Image.fromarray(np.round(arr).astype(np.uint8)).convert("RGB")
    if image.mode in ("I", "F"):
        raise InputError(f"{path}: {image.mode!r} (32-bit) images are not supported")
    with _pillow_warnings(path):
        return image.convert("RGB")


def is_greyscale(image: Image.Image) -> bool:
    """Whether ``image`` (as :func:`open_image` read it) holds greys only by its mode: 1-bit,
    8-bit or 16-bit greyscale, with or without alpha, or a palette of greys."""
    if image.mode in ("P", "PA"):
        palette = image.getpalette() or []
        return bool(palette) and palette[0::3] == palette[1::3] == palette[2::3]
    return image.mode in ("1", "L", "LA") or image.mode.startswith("I;16")


def profile_for(image: Image.Image, mode: str) -> bytes | None:
    """``image``'s ICC profile where it describes the colours of an output of ``mode``
    (greyscale for ``L``/``LA``, RGB for ``RGB``/``RGBA``), else None: a CMYK profile on
    the RGB image srsdk writes, or an RGB one on a greyscale image, would make
    colour-managed viewers misread it (srsdk converts CMYK without colour management)."""
    icc = image.info.get("icc_profile")
    if not icc:
        return None
    try:
        from PIL import ImageCms

        space = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space
    except Exception:  # noqa: BLE001 - ImageCms missing, or a damaged profile: nothing to keep
        return None
    return icc if space.strip() == ("GRAY" if mode in ("L", "LA") else "RGB") else None


def fill_transparent(rgb: np.ndarray, alpha: np.ndarray, reach: int) -> np.ndarray:
    """``rgb`` with its fully transparent pixels (``alpha == 0``) coloured from the visible
    ones within ``reach`` pixels (each step takes the mean of the neighbours filled so far),
    and black past that: the colour a file happens to store under transparency (often
    black, white or garbage) would otherwise bleed into the visible edge as the network
    upscales it. Visible pixels are unchanged."""
    known = alpha > 0
    if known.all() or not known.any():
        return rgb
    filled = np.where(known[..., None], rgb, 0).astype(np.float32)
    for _ in range(reach):
        if known.all():
            break
        colours = np.pad(filled, ((1, 1), (1, 1), (0, 0)))  # unknown pixels are 0 in `filled`
        weights = np.pad(known, 1).astype(np.float32)
        total = colours[:-2, 1:-1] + colours[2:, 1:-1] + colours[1:-1, :-2] + colours[1:-1, 2:]
        count = weights[:-2, 1:-1] + weights[2:, 1:-1] + weights[1:-1, :-2] + weights[1:-1, 2:]
        grow = ~known & (count > 0)
        filled[grow] = total[grow] / count[grow][:, None]
        known = known | grow
    return np.round(filled).astype(np.uint8)


def read_rgb(path: Path, data: bytes | None = None, *, upright: bool = True) -> Image.Image:
    """Read an image as 8-bit RGB, upright unless ``upright`` is False (:func:`open_image`,
    then :func:`to_rgb`)."""
    return to_rgb(open_image(path, data, upright=upright), path)


def write_image(
    image: Image.Image,
    path: Path,
    *,
    icc_profile: bytes | None = None,
    exif: Image.Exif | None = None,
    dpi: tuple[float, float] | None = None,
    like: Image.Image | None = None,
) -> None:
    """Save ``image`` to ``path`` (format from the suffix), with ``icc_profile``, ``exif`` and
    ``dpi`` where given (EXIF into JPEG, PNG and WebP; its orientation tag is dropped, as
    srsdk's images are upright), and as ``like`` (an image :func:`open_image` read) where it
    is of the same format: a lossless WebP stays lossless, a TIFF keeps its LZW, Deflate or
    PackBits compression. ``path`` is either the complete new image or untouched. JPEG and
    WebP are written at quality 95 (JPEG without chroma subsampling), not Pillow's 75-80,
    which would throw away the detail upscaling adds."""
    path = Path(path)
    fmt = _format(path)
    check_fits(path, *image.size)
    options: dict[str, object] = {"icc_profile": icc_profile} if icc_profile else {}
    if dpi is not None:
        options["dpi"] = dpi
    if exif and fmt in ("JPEG", "PNG", "WEBP"):
        try:
            with _pillow_warnings(path):
                options["exif"] = _upright_exif(exif, *image.size)
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - a damaged block raises what its encoder meets
            logging.getLogger("srsdk").warning("%s: the EXIF block cannot be written back (%s); left out", path, e)
    if fmt == "JPEG":
        options |= {"quality": 95, "subsampling": 0}
    elif fmt == "WEBP":
        options |= {"quality": 95, "lossless": like is not None and like.info.get("srsdk_lossless", False)}
    elif fmt == "TIFF" and like is not None and like.info.get("compression") in TIFF_COMPRESSIONS:
        options |= {"compression": like.info["compression"]}
    with atomic_output(path) as tmp:
        try:
            image.save(tmp, format=fmt, **options)
        except ValueError as e:  # Pillow's encoders (OSError is atomic_output's to word)
            raise InputError(f"cannot write {path}: {e}") from e


def _upright_exif(exif: Image.Exif, width: int, height: int) -> bytes:
    """``exif`` without its orientation tag, and with the pixel size of ``width`` x ``height``
    where it holds one."""
    upright = Image.Exif()
    upright.load(exif.tobytes())
    upright.pop(0x0112, None)  # Orientation
    if 0x8769 in upright:  # the Exif IFD: PixelXDimension, PixelYDimension (no empty one added)
        sizes = upright.get_ifd(0x8769)
        for tag, value in ((0xA002, width), (0xA003, height)):
            if tag in sizes:
                sizes[tag] = value
    return upright.tobytes()


def _lossless_webp(im: ImageFile.ImageFile) -> bool:
    """Whether the WebP file ``im`` was opened from holds the lossless bitstream (VP8L): its
    first chunk, or in the extended format (VP8X: with an ICC profile, EXIF or alpha) its
    first image chunk after the metadata chunks."""
    fp = im.fp
    if fp is None:
        return False
    at = fp.tell()
    try:
        fp.seek(12)  # past "RIFF", the file size and "WEBP"
        for _ in range(64):  # VP8X, ICCP, ANIM, EXIF, XMP, unknown ones: a few at most
            head = fp.read(8)
            if len(head) < 8:
                return False
            kind, size = head[:4], int.from_bytes(head[4:], "little")
            if kind in (b"VP8L", b"VP8 ", b"ANMF"):  # the image, or an animation's first frame
                return kind == b"VP8L" or (kind == b"ANMF" and fp.read(24)[16:20] == b"VP8L")
            fp.seek(size + size % 2, io.SEEK_CUR)  # chunks are padded to an even size
        return False
    finally:
        fp.seek(at)


def _format(path: Path) -> str:
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if path.suffix.lower() not in IMAGE_SUFFIXES or fmt is None:
        raise InputError(f"unsupported output format {path.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    return fmt


def check_fits(path: Path, width: int, height: int) -> None:
    """Refuse, before the work, an image of ``width`` x ``height`` that the format of
    ``path`` (by its suffix) cannot hold."""
    limit = MAX_SIDE.get(_format(path))
    if limit is not None and max(width, height) > limit:
        raise InputError(
            f"cannot write {path}: {width}x{height} is past the {limit} pixels a side {path.suffix} holds; use .png or .tif"
        )
