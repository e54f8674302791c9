"""The output side of a video: which encoder and options write it, its streams (the
upscaled video, copies of the audio and subtitles), the header, first packets and trailer
written in memory to find what the container refuses before the work, and libx265's decode
times for streams of under three frames."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from srsdk.errors import InputError
from srsdk.io import video_colour
from srsdk.io.pyav import ffmpeg_reasons, load_av, reason

VIDEO_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
"""Containers srsdk writes, by suffix."""
CODECS = {"h264": "libx264", "h265": "libx265", "hevc": "libx265", "vp9": "libvpx-vp9"}
CRF_RANGE = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63)}
"""The encoders ``crf`` applies to, and its range for each; other encoders take their defaults."""
KEPT_METADATA = ("language", "title")
"""Stream tags copied to the output's streams (not DURATION or ENCODER: they would be wrong)."""
DROPPED_METADATA = ("encoder", "major_brand", "minor_version", "compatible_brands", "duration")
"""File tags not copied: the muxer writes its own."""


def encoder_for(dst: Path, codec: str | None, crf: int) -> tuple[str, str, dict[str, str]]:
    """The FFmpeg encoder that writes ``dst`` with ``codec`` (None: VP9 in WebM, H.264 in the
    other containers), the pixel format to give it (yuv420p where it takes it, as players
    expect) and its options; an :class:`InputError` for what cannot encode video, or a
    ``crf`` out of the encoder's range. Cheap: call it to check arguments before work."""
    av = load_av()
    codec = codec or ("vp9" if dst.suffix.lower() == ".webm" else "h264")
    encoder = CODECS.get(codec, codec)
    if encoder not in av.codecs_available:
        raise InputError(f"codec {codec!r} is not available in this PyAV build (try h264 or h265)")
    try:
        found = av.codec.Codec(encoder, "w")
    except (ValueError, av.error.FFmpegError) as e:
        raise InputError(f"codec {codec!r} has no encoder in this PyAV build (try h264 or h265)") from e
    if found.type != "video":
        raise InputError(f"codec {codec!r} encodes {found.type}, not video (try h264 or h265)")
    formats = [f.name for f in found.video_formats or []]
    pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
    if encoder == "mjpeg":  # JPEG is full range: FFmpeg refuses limited-range yuv420p by default
        pix_fmt = "yuvj420p"
    options: dict[str, str] = {}
    if encoder in CRF_RANGE:
        low, high = CRF_RANGE[encoder]
        if not low <= crf <= high:
            raise InputError(f"--crf {crf}: {encoder} takes {low} to {high} (lower is better quality)")
        options["crf"] = str(crf)
    if encoder in ("libx264", "libx265"):
        options["preset"] = "medium"
    if encoder == "libx265":
        options["x265-params"] = "log-level=error"  # x265 prints some 30 lines of info otherwise
    if encoder == "libvpx-vp9":
        options["b"] = "0"  # constant quality: crf alone, no bitrate target
    return encoder, pix_fmt, options


def container_for(dst: Path) -> str:
    """The FFmpeg format that writes ``dst``, by its suffix; an :class:`InputError` for others."""
    if dst.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"unsupported output container {dst.suffix!r}; use one of {', '.join(VIDEO_SUFFIXES)}")
    return VIDEO_SUFFIXES[dst.suffix.lower()]


def frame_rate(video: Any) -> Fraction:
    """``video``'s frame rate (a PyAV stream's average, else guessed, else 25)."""
    return Fraction(video.average_rate or video.guessed_rate or 25)


def add_streams(
    sink: Any, source: Any, video: Any, dst: Path, encoder: str, pix_fmt: str, options: dict[str, str], scale: int
) -> tuple[Any, dict[int, Any]]:
    """The upscaled video stream of ``sink`` (encoder open, tagged) and a copy of every audio
    and subtitle stream of ``source``, by its index; an :class:`InputError` for what ``dst``'s
    container or the encoder cannot take."""
    av = load_av()
    rate = frame_rate(video)
    try:
        out = sink.add_stream(encoder, rate=rate)
    except (ValueError, av.error.FFmpegError) as e:
        raise InputError(f"{dst.suffix} files cannot hold {encoder} video ({e}); try another --codec") from e
    # Sized now: muxing a copied audio packet opens every encoder, long before the first
    # upscaled frame comes back from the pipeline.
    out.width = video.width * scale + (video.width * scale) % 2
    out.height = video.height * scale + (video.height * scale) % 2
    out.pix_fmt = pix_fmt
    # AVI has a constant frame rate, counted in its time base; the other containers keep the input's.
    out.time_base = 1 / rate if sink.format.name == "avi" else video.time_base
    # The encoder in the same time base: in its default, 1 / rate, every frame time would be
    # rounded to the average rate's grid (two frames of a variable-rate clip on one tick fail
    # in the muxer, and a clip that does not start on the grid would move against its audio).
    out.codec_context.time_base = out.time_base
    if video.sample_aspect_ratio:  # anamorphic video (DVD, HDV): the same shape on screen
        out.codec_context.sample_aspect_ratio = video.sample_aspect_ratio
    out.options = options
    if encoder == "libx265" and sink.format.name in ("mov", "mp4"):
        out.codec_context.codec_tag = "hvc1"  # Apple's players refuse HEVC tagged hev1
    video_colour.tag(out, video)  # the matrix and range encode() converts with
    for key, value in video.metadata.items():
        if key.lower() in (*KEPT_METADATA, "rotate"):
            out.metadata[key] = value
    try:
        with ffmpeg_reasons():
            try:
                out.codec_context.open()
            except av.error.FFmpegError:
                fallback = encoder_time_base(out.codec_context.codec, rate)
                if out.codec_context.time_base == fallback:
                    raise
                # Some encoders take only time bases of their own: frame times are then
                # rounded to that grid (and two on one tick set a tick apart).
                out.codec_context.time_base = fallback
                out.codec_context.open()
    except (ValueError, av.error.FFmpegError) as e:
        raise InputError(
            f"the {encoder} encoder cannot start for {out.width}x{out.height} {pix_fmt} video ({reason(e)}); try another --codec"
        ) from e
    copies = {}
    for stream in source.streams:
        if stream.type not in ("audio", "subtitle"):
            continue
        try:
            copy = sink.add_stream_from_template(stream)
        except (ValueError, av.error.FFmpegError) as e:
            raise InputError(
                f"{dst.suffix} files cannot hold the {stream.codec_context.name} {stream.type} stream of the input "
                f"({e}); use .mkv, which holds most codecs"
            ) from e
        for key, value in stream.metadata.items():
            if key.lower() in KEPT_METADATA:
                copy.metadata[key] = value
        copies[stream.index] = copy
    for key, value in source.metadata.items():
        if key.lower() not in DROPPED_METADATA:
            sink.metadata[key] = value
    return out, copies


def encoder_time_base(codec: Any, rate: Fraction) -> Fraction:
    """A time base ``codec`` may take for video of ``rate`` fps: one over the nearest frame
    rate it lists (mpeg2video takes only those), else one over ``rate`` with a denominator
    of at most 65535 (mpeg4's limit; a phone clip's average rate is such as 8100000/180301)."""
    listed = [Fraction(r.numerator, r.denominator) for r in codec.frame_rates or ()]
    if listed:
        return 1 / min(listed, key=lambda r: abs(r - rate))
    return (1 / rate).limit_denominator(65535)


def refused(error: Exception, dst: Path) -> InputError:
    """What to raise for ``error`` from writing ``dst``'s header, packets or trailer: the
    container refusing its streams, or the disk (full, a file size limit)."""
    if isinstance(error, OSError):
        return InputError(f"cannot write {dst}: {reason(error)}")
    return InputError(f"{dst.suffix} files cannot hold these streams ({reason(error)}); use .mkv, which holds most")


@contextlib.contextmanager
def _writing(dst: Path) -> Iterator[None]:
    """FFmpeg's errors inside, writing ``dst``'s header, a packet or its trailer, as
    :func:`refused` says them."""
    av = load_av()
    try:
        with ffmpeg_reasons():
            yield
    except (ValueError, av.error.FFmpegError) as e:
        raise refused(e, dst) from e


def write_header(sink: Any, dst: Path) -> None:
    """Write ``sink``'s header: where the container refuses a stream, an :class:`InputError`
    now rather than FFmpeg's error at the first packet."""
    with _writing(dst):
        sink.start_encoding()


def write_trailer(sink: Any, dst: Path) -> None:
    """Write ``sink``'s trailer and close it; some muxers (MP4's audio) check streams only now."""
    with _writing(dst):
        sink.close()


def copy_first_packets(source: Any, sink: Any, copies: dict[int, Any], dst: Path, *, within: int = 200) -> None:
    """Mux the first packet of each copied stream (among ``source``'s first ``within``):
    MP4 checks an audio stream's channel layout only at the end, and only for a stream that
    holds a packet."""
    waiting = set(copies)
    for n, packet in enumerate(source.demux([source.streams[i] for i in copies]) if copies else ()):
        if not waiting or n >= within:
            break
        if packet.stream.index in waiting and packet.dts is not None:
            waiting.discard(packet.stream.index)
            packet.stream = copies[packet.stream.index]
            with _writing(dst):
                sink.mux(packet)


X265_DTS_SAFE_FRAMES = 3
"""libx265 leaves the decode times of a stream of fewer frames than this (its B-frame delay
plus one, at srsdk's settings) uninitialised: heap garbage such as -2.9e17, which the MP4 and
Matroska muxers refuse (x265 issue 781, fixed upstream in 2026 by starting them at 0; the
libx265 in PyAV's wheels predates that)."""


def mend_x265_dts(packets: list[Any]) -> None:
    """Give a short libx265 stream's packets the decode times x265's fix gives them: in
    decode order, the presentation times in increasing order."""
    for packet, dts in zip(packets, sorted(p.pts for p in packets), strict=True):
        packet.dts = dts

