from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srsdk.errors import InputError
from srsdk.io.atomic import atomic_output
from srsdk.io.image import check_fits, fill_transparent, image_files, open_image, read_rgb, write_image


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640  # replaced, same permissions
    (tmp_path / "folder.png").mkdir()
    Image.new("RGB", (2, 2)).save(tmp_path / "a.png")
    assert [p.name for p in image_files(tmp_path)] == ["a.png"]  # a folder named like an image is not one


def test_images_round_trip_and_modes_are_converted(tmp_path: Path) -> None:
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.full((5, 7), 77, np.uint8), "L").save(tmp_path / "g.png")
    assert np.asarray(read_rgb(tmp_path / "a.png"))[0, 0].tolist() == [200, 0, 0]
    assert np.asarray(read_rgb(tmp_path / "g.png"))[0, 0].tolist() == [77, 77, 77]
    write_image(read_rgb(tmp_path / "a.png"), tmp_path / "b.webp")
    assert read_rgb(tmp_path / "b.webp").size == (7, 5)


def test_bad_paths_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"cannot read image .*bad\.png: not an image file \(or not a format Pillow reads\)$"):
        read_rgb(tmp_path / "bad.png")
    with pytest.raises(InputError, match=r"cannot read image .*bad\.png: not an image file"):
        read_rgb(tmp_path / "bad.png", b"not a png")  # from bytes read before: still named by its path
    with pytest.raises(InputError, match="no such file"):
        read_rgb(tmp_path / "missing.png")
    img = Image.new("RGB", (2, 2))
    with pytest.raises(InputError, match=r"unsupported output format '\.xyz'"):
        write_image(img, tmp_path / "o.xyz")
    with pytest.raises(InputError, match="output folder does not exist"):
        write_image(img, tmp_path / "nope" / "o.png")


def test_sixteen_bit_images_are_scaled_not_stretched(tmp_path: Path) -> None:
    Image.fromarray(np.full((4, 4), 257 * 100, np.uint16)).save(tmp_path / "deep.png")
    assert np.asarray(read_rgb(tmp_path / "deep.png"))[0, 0].tolist() == [100, 100, 100]


def test_photos_are_read_upright_and_written_with_their_colour_profile_at_high_quality(tmp_path: Path) -> None:
    """A phone photo stores its rotation in EXIF; a wide-gamut one its ICC profile."""
    from PIL import ImageCms

    from srsdk.io.image import open_image, profile_for

    arr = np.zeros((6, 8, 3), np.uint8)
    arr[0, 0] = 255  # top-left marker
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x0132] = "2026:11:27 12:00:00"  # DateTime
    exif.get_ifd(0x8769)[0xA002] = 8  # PixelXDimension: the stored width
    Image.fromarray(arr).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = np.asarray(read_rgb(tmp_path / "phone.jpg"))
    assert upright.shape == (8, 6, 3) and upright[0, -1].min() > 200  # the marker is now top-right
    phone = open_image(tmp_path / "phone.jpg")
    for name in ("phone_up.jpg", "phone_up.png"):  # the metadata is kept, but not the rotation it no longer needs
        write_image(phone.convert("RGB"), tmp_path / name, exif=phone.getexif())
        with Image.open(tmp_path / name) as im:
            kept = im.getexif()
            assert kept.get(0x0132) == "2026:11:27 12:00:00" and 0x0112 not in kept, name
            assert kept.get_ifd(0x8769).get(0xA002) == 6, name  # the width written, upright
    plain = Image.Exif()
    plain[0x010F] = "Cam"  # Make, and no Exif IFD
    write_image(phone.convert("RGB"), tmp_path / "plain.jpg", exif=plain)
    with Image.open(tmp_path / "plain.jpg") as im:
        assert dict(im.getexif()) == {0x010F: "Cam"}  # no empty Exif IFD added
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(arr).save(tmp_path / "icc.png", icc_profile=profile)
    original = open_image(tmp_path / "icc.png")
    for name in ("out.png", "out.jpg", "out.webp"):
        write_image(original.convert("RGB"), tmp_path / name, icc_profile=original.info["icc_profile"])
        with Image.open(tmp_path / name) as im:
            assert im.info.get("icc_profile") == profile, name
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not an RGB profile
    Image.fromarray(arr[..., 0]).save(tmp_path / "grey.png", icc_profile=lab)
    assert profile_for(open_image(tmp_path / "grey.png"), "RGB") is None  # not carried onto the RGB output
    assert profile_for(original, "RGB") == profile and profile_for(original, "L") is None
    grey = profile[:16] + b"GRAY" + profile[20:]  # a profile whose header says greyscale
    Image.fromarray(arr[..., 0]).save(tmp_path / "grey-icc.png", icc_profile=grey)
    assert profile_for(open_image(tmp_path / "grey-icc.png"), "L") == grey
    assert profile_for(open_image(tmp_path / "grey-icc.png"), "RGB") is None
    with Image.open(tmp_path / "out.jpg") as im:
        assert max(im.quantization[0]) <= 12  # quality 95; at Pillow's default 75 it is 61
        assert im.layer[0][1:3] == im.layer[1][1:3]  # no chroma subsampling (4:4:4)


def test_a_damaged_exif_block_is_read_as_stored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # An EXIF block whose TIFF header is garbage: Pillow decodes the pixels, its EXIF parser raises SyntaxError.
    # (Make, Model and Orientation, with the TIFF magic number and the orientation's type damaged,
    # as a byte-flipping fuzz of a phone-style JPEG left them.)
    block = (
        b"Exif\x00\x00MM\x00s\x00\x00\x00\x08\x00\x03\x01\x0f\x00\x02\x00\x00\x00\t\x00\x00\x002\x01\x10\x00\x02"
        b"\x00\x00\x00\n\x00\x00\x00<\x01\x12\x14\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00TestMake\x00\x00TestModel\x00"
    )
    Image.new("RGB", (16, 12), (200, 10, 10)).save(tmp_path / "a.jpg", exif=block, dpi=(72, 72))  # dpi: else Pillow reads (and hides) it
    with caplog.at_level("WARNING", logger="srsdk"):
        image = open_image(tmp_path / "a.jpg")
    assert image.size == (16, 12)
    assert "a.jpg: its EXIF block cannot be read (not a TIFF file" in caplog.text and "read as stored" in caplog.text


def test_hidden_files_are_not_images_to_upscale(tmp_path: Path) -> None:
    for name in ("a.png", ".hidden.png", "._a.png"):  # ._a.png: macOS's resource file beside a.png
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG")
    assert [p.name for p in image_files(tmp_path)] == ["a.png"]


def test_sizes_a_format_cannot_hold_are_refused_and_dpi_is_kept(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"16400x40 is past the 16383 pixels a side \.webp holds; use \.png or \.tif"):
        check_fits(tmp_path / "o.webp", 16400, 40)
    with pytest.raises(InputError, match=r"past the 65500 pixels a side \.jpg holds"):
        check_fits(tmp_path / "o.jpg", 40, 70000)
    check_fits(tmp_path / "o.png", 70000, 40)
    for name in ("o.png", "o.jpg", "o.tif"):
        write_image(Image.new("RGB", (8, 8)), tmp_path / name, dpi=(300, 300))
        with Image.open(tmp_path / name) as written:
            assert [round(v) for v in written.info["dpi"]] == [300, 300]


def test_transparent_pixels_are_filled_from_the_visible_ones_only() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    alpha = np.zeros((20, 30), np.uint8)
    alpha[5:12, 8:20] = 255
    alpha[0, 0] = 1  # barely visible still counts as visible
    other = rgb.copy()
    other[alpha == 0] = 255 - other[alpha == 0]  # another colour under the transparency
    filled = fill_transparent(rgb, alpha, reach=4)
    np.testing.assert_array_equal(filled, fill_transparent(other, alpha, reach=4))
    np.testing.assert_array_equal(filled[alpha > 0], rgb[alpha > 0])  # what shows is untouched
    np.testing.assert_array_equal(filled[12, 8:20], rgb[11, 8:20])  # one step out: the edge row itself
    assert (filled[19, 29] == 0).all()  # past the reach: black


def test_a_lossless_webp_stays_lossless_and_a_tiff_keeps_its_compression(tmp_path: Path) -> None:
    image = Image.fromarray(np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    image.save(tmp_path / "lossless.webp", lossless=True)
    image.save(tmp_path / "lossy.webp", quality=80)
    image.save(tmp_path / "lzw.tif", compression="tiff_lzw")
    write_image(image, tmp_path / "a.webp", like=open_image(tmp_path / "lossless.webp"))
    write_image(image, tmp_path / "b.webp", like=open_image(tmp_path / "lossy.webp"))
    assert (tmp_path / "a.webp").read_bytes()[12:16] == b"VP8L" and (tmp_path / "b.webp").read_bytes()[12:16] == b"VP8 "
    with Image.open(tmp_path / "a.webp") as back:
        np.testing.assert_array_equal(np.asarray(back.convert("RGB")), np.asarray(image))  # lossless indeed
    write_image(image, tmp_path / "c.tif", like=open_image(tmp_path / "lzw.tif"))
    write_image(image, tmp_path / "d.tif")
    with Image.open(tmp_path / "c.tif") as c, Image.open(tmp_path / "d.tif") as d:
        assert (c.info["compression"], d.info["compression"]) == ("tiff_lzw", "raw")


def _png_grey_alpha_16(path: Path, grey: np.ndarray, alpha: np.ndarray, exif: bytes = b"") -> Path:
    """A 16-bit greyscale + alpha PNG (colour type 4), which Pillow cannot write, with an
    ``eXIf`` chunk where ``exif`` is given."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = grey.shape
    pixels = np.stack([grey, alpha], axis=-1).astype(">u2").reshape(height, -1)
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)
    extra = chunk(b"eXIf", exif) if exif else b""
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


def test_a_16_bit_greyscale_png_with_alpha_is_read_as_greys(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    grey, alpha = rng.integers(0, 65536, (6, 8)), rng.integers(0, 65536, (6, 8))
    image = open_image(_png_grey_alpha_16(tmp_path / "la16.png", grey, alpha))
    # Pillow reads it as RGBA: written back as colour, without the 16-bit warning greyscale gets.
    assert image.mode == "LA" and image.info["srsdk_16bit"]
    np.testing.assert_array_equal(np.asarray(image), np.stack([grey >> 8, alpha >> 8], axis=-1))
    turned = Image.Exif()
    turned[0x0112] = 6  # rotate 90 degrees clockwise to view
    image = open_image(_png_grey_alpha_16(tmp_path / "turned.png", grey, alpha, exif=turned.tobytes()))
    assert image.size == (6, 8) and 0x0112 not in image.getexif()  # upright, and says so
    np.testing.assert_array_equal(np.asarray(image)[..., 0], np.rot90(grey >> 8, k=-1))


def test_a_lossless_webp_in_the_extended_format_is_found_lossless(tmp_path: Path) -> None:
    # With an ICC profile, EXIF, alpha or frames the file starts with a VP8X chunk, not the
    # bitstream's: such lossless files were re-encoded lossy.
    from PIL import ImageCms

    image = Image.fromarray(np.random.default_rng(6).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "Cam"
    flipped = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    files = {
        "icc.webp": lambda p, ll: image.save(p, icc_profile=srgb, lossless=ll),
        "exif.webp": lambda p, ll: image.save(p, exif=exif.tobytes(), lossless=ll),
        "alpha.webp": lambda p, ll: Image.fromarray(np.dstack([image, np.asarray(image)[..., 0]])).save(p, lossless=ll),
        "frames.webp": lambda p, ll: image.save(p, save_all=True, append_images=[flipped], lossless=ll),
    }
    for name, save in files.items():
        for lossless in (True, False):
            path = tmp_path / f"{lossless}-{name}"
            save(path, lossless)
            assert path.read_bytes()[12:16] == (b"VP8L" if name == "alpha.webp" and lossless else b"VP8X")  # VP8L holds alpha
            assert open_image(path).info.get("srsdk_lossless", False) is lossless, path.name
    write_image(image, tmp_path / "out.webp", icc_profile=srgb, like=open_image(tmp_path / "True-icc.webp"))
    with Image.open(tmp_path / "out.webp") as back:
        np.testing.assert_array_equal(np.asarray(back.convert("RGB")), np.asarray(image))  # lossless indeed
