"""Colours in videos: which YUV matrix a stream uses, its frames as RGB, and the RGB
results encoded and tagged with the same matrix, so a player shows the same colours at the
larger size (where untagged HD is taken as BT.709)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

__all__ = ["BT601", "BT709", "MATRICES", "TAGS", "from_rgb", "matrix_of", "rgb_of", "tag"]

BT709, BT601 = 1, 5
"""Two of swscale's ``SWS_CS_*`` matrix numbers, which PyAV's reformat takes (as ints: its
names for them differ between PyAV versions)."""
MATRICES = {1: BT709, 4: 4, 5: BT601, 6: BT601, 7: 7, 9: 9, 10: 9}
"""FFmpeg's ``AVColorSpace`` tags, as the ``SWS_CS_*`` matrices they name."""
TAGS = {BT709: (1, 1, 1), BT601: (6, 6, 6), 4: (4, 6, 6), 7: (7, 7, 7), 9: (9, 9, 14)}
"""For each matrix, the (colorspace, primaries, transfer) tags written where the input had none."""
LUMA_WEIGHTS = {BT709: (0.2126, 0.0722), BT601: (0.299, 0.114), 4: (0.30, 0.11), 7: (0.212, 0.087), 9: (0.2627, 0.0593)}
"""For each matrix, the red and blue weights (Kr, Kb) of its luma."""


def matrix_of(video: Any) -> int:
    """The YUV matrix of ``video`` (a PyAV video stream), as reformat takes it: its tag, or
    where it has none the one players assume for its size (BT.709 above 576 lines or from
    1280 pixels wide, else BT.601)."""
    tag = video.codec_context.colorspace
    if tag in MATRICES:
        return MATRICES[tag]
    return BT709 if video.height > 576 or video.width >= 1280 else BT601


def rgb_of(frame: Any, matrix: int) -> np.ndarray:
    """A decoded PyAV video ``frame`` as an ``HxWx3`` RGB24 array, converted with the YUV
    ``matrix`` (see :func:`matrix_of`) at the frame's range, with swscale's accurate rounding
    and full chroma interpolation: its default fast path darkens frames by about one level
    (``tests/test_video.py::test_decoded_frames_keep_their_brightness``)."""
    from av.video.reformatter import Interpolation

    full_range = getattr(frame, "color_range", 0) == 2 or frame.format.name.startswith("yuvj")
    accurate = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    rgb: np.ndarray = frame.to_ndarray(
        format="rgb24", src_colorspace=matrix, src_color_range=2 if full_range else 1, interpolation=accurate
    )
    return rgb


def tag(out: Any, video: Any) -> None:
    """Tag ``out`` (a PyAV output video stream whose ``pix_fmt`` is set) with the matrix,
    primaries, transfer and range :func:`from_rgb` converts with: ``video``'s own tags, or
    for those it lacks the ones that go with :func:`matrix_of` it. RGB formats get none."""
    import av

    if av.VideoFormat(out.pix_fmt).is_rgb:
        return
    for name, default in zip(("colorspace", "color_primaries", "color_trc"), TAGS[matrix_of(video)], strict=True):
        found = getattr(video.codec_context, name, 2)
        with contextlib.suppress(AttributeError):  # setters an older PyAV may lack
            setattr(out.codec_context, name, found if found not in (0, 2) else default)  # 2: unspecified
    out.codec_context.color_range = 2 if out.pix_fmt.startswith("yuvj") else 1  # full ("JPEG") or limited


def from_rgb(rgb: np.ndarray, out: Any, matrix: int) -> Any:
    """The ``HxWx3`` uint8 ``rgb`` as a PyAV frame in ``out``'s pixel format, converted with
    ``matrix`` at the range :func:`tag` gave ``out`` (YUV formats only)."""
    import av

    if out.pix_fmt == "yuvj420p":
        return av.VideoFrame.from_ndarray(_full_range_420(rgb, matrix), format="yuvj420p")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    if av.VideoFormat(out.pix_fmt).is_rgb:
        return frame.reformat(format=out.pix_fmt)
    return frame.reformat(format=out.pix_fmt, dst_colorspace=matrix, dst_color_range=out.codec_context.color_range)


def _full_range_420(rgb: np.ndarray, matrix: int) -> np.ndarray:
    """Even-sized ``rgb`` as full-range 4:2:0 planes (Y, then Cb, then Cr, as PyAV stacks
    them), chroma averaged over each 2x2 block (JPEG's siting) and rounded. swscale's own
    full-range conversion truncates the chroma: half a level low on average, which showed
    as a colour shift of about one level in MJPEG output."""
    kr, kb = LUMA_WEIGHTS[matrix]
    r, g, b = np.moveaxis(rgb.astype(np.float32), 2, 0)
    y = kr * r + (1 - kr - kb) * g + kb * b
    h, w = y.shape
    cb, cr = ((c - y).reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) / (2 * (1 - k)) + 128 for c, k in ((b, kb), (r, kr)))
    planes = np.concatenate([y.ravel(), cb.ravel(), cr.ravel()])
    return np.clip(np.rint(planes), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)
