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

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    if av.VideoFormat(out.pix_fmt).is_rgb:
        return frame.reformat(format=out.pix_fmt)
    return frame.reformat(format=out.pix_fmt, dst_colorspace=matrix, dst_color_range=out.codec_context.color_range)
