"""Video in, video out, through PyAV: decode, upscale, encode; audio and subtitles copied.

The output has the input's frame rate and time base (an encoder that takes only time bases
of its own, mpeg4 or mpeg2video, gets the nearest it takes; two frames on one tick are set a
tick apart, and times that go back, as in two files joined end to end, are refused; AVI,
which counts frames, starts the video as long after the earliest stream as the input
does), every audio and subtitle stream
copied packet for packet (no re-encoding), the streams' language and title and the file's
metadata, and the input's orientation: its display matrix (rotation and flips, which
FFmpeg 7+ reports as side data on the decoded frames) is written to the output stream, and
a legacy ``rotate`` tag is kept. Colours keep their meaning: frames are decoded to RGB with
the input's YUV matrix (where the input does not say, the one players assume for its size:
BT.709 above 576 lines or from 1280 pixels wide, else BT.601), encoded with the same matrix,
and the output is tagged with it, so a player shows the same colours at the larger size
(where untagged HD is taken as BT.709). Frames are encoded as yuv420p, which needs even
sizes: an odd output width or height is padded by one pixel (the last row or column
repeated). The file is written under a temporary name and renamed into place only when
complete. Packets that do not decode or cannot be copied are counted and reported, and the
run goes on with the rest; so are frames the input declares but does not hold (a truncated
file). What the container refuses (Opus in MOV, say) is found before the work: the header
and trailer are written in memory first, with a packet of each copied stream, and the error
gives FFmpeg's reason. Cover art (an attached picture, listed as a video stream) is not
the video.
"""

from __future__ import annotations

import collections
import dataclasses
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from srsdk.errors import InputError
from srsdk.io import video_colour
from srsdk.io.atomic import atomic_output
from srsdk.io.pyav import load_av, reason
from srsdk.io.video_output import (
    CODECS,
    CRF_RANGE,
    VIDEO_SUFFIXES,
    X265_DTS_SAFE_FRAMES,
    add_streams,
    container_for,
    copy_first_packets,
    encoder_for,
    frame_rate,
    mend_x265_dts,
    refused,
    write_header,
    write_trailer,
)

__all__ = ["CODECS", "CRF_RANGE", "READ_ONLY_SUFFIXES", "VIDEO_SUFFIXES", "VideoReport", "check_video_output",
           "display_matrix", "encoder_for", "frame_rate", "is_video", "upscale_video"]  # fmt: skip

READ_ONLY_SUFFIXES = (".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv")
"""Further containers srsdk reads (FFmpeg finds the format from the file itself)."""


def is_video(path: Path) -> bool:
    """Whether ``path`` names a video by its suffix (one srsdk writes, or only reads)."""
    return path.suffix.lower() in VIDEO_SUFFIXES or path.suffix.lower() in READ_ONLY_SUFFIXES


@dataclasses.dataclass
class VideoReport:
    """What :func:`upscale_video` did."""

    frames: int
    size: tuple[int, int]
    """Output (width, height) as encoded."""
    copied_streams: int
    undecodable_packets: int
    uncopied_packets: int = 0
    """Audio or subtitle packets that could not be written (damaged timestamps, say)."""
    missing_frames: int = 0
    """About how many frames the video stream's own duration says are missing after the
    last frame decoded: a truncated file."""


@dataclasses.dataclass
class _Tally:
    frames: int = 0
    bad: int = 0
    uncopied: int = 0
    shown_until: Fraction | None = None
    """When the last decoded frame ends, in seconds."""
    end: Fraction | None = None
    """With max_frames: the time the last kept frame ends; later packets are dropped."""
    last_pts: int | None = None
    """The last frame's time given to the encoder, in its time base."""
    last_time: Fraction | None = None
    """The last frame's time in the input, in seconds."""
    avi_start: int = 0
    """In AVI: the first frame's tick (its start after the earliest stream's, at the rate)."""


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def display_matrix(src: Path) -> list[int] | None:
    """The display matrix (FFmpeg's 9 int32 layout) of ``src``'s first decodable video
    frame, or None when it has none (the frames are shown as coded)."""
    av = load_av()
    try:
        with av.open(str(src)) as container:
            for packet in container.demux(_video_stream(container)):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue
                for frame in frames:
                    for data in frame.side_data:
                        if data.type.name == "DISPLAYMATRIX" and data.buffer_size == 36:
                            return [int(v) for v in np.frombuffer(bytes(data), dtype="<i4")]
                    return None
    except (av.error.FFmpegError, OSError, InputError):
        return None
    return None


def _video_stream(source: Any) -> Any:
    """``source``'s first video stream that is a video: not an attached picture (the cover
    art of a music or podcast file, which FFmpeg lists as a one-frame video stream)."""
    av = load_av()
    for stream in source.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise InputError(f"{source.name}: has no video stream" + (" (only cover art)" if source.streams.video else ""))


def _open_input(src: Path) -> Any:
    av = load_av()
    try:
        source = av.open(str(src))
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"{src}: cannot open as a video ({e})") from e
    try:
        _video_stream(source)
    except InputError:
        source.close()
        raise
    return source


def check_video_output(src: Path, dst: Path, codec: str | None, crf: int, scale: int) -> None:
    """Raise the :class:`InputError` :func:`upscale_video` would raise for ``src``, ``dst``,
    ``codec`` and ``crf`` before its first frame (an input that is not a video, a codec or a
    copied stream the container cannot hold, an encoder that cannot start). Cheap: it opens
    the streams in memory, so arguments are checked before a network loads."""
    import io

    av = load_av()
    container, (encoder, pix_fmt, options) = container_for(dst), encoder_for(dst, codec, crf)
    with _open_input(src) as source, av.open(io.BytesIO(), "w", format=container) as sink:
        _, copies = add_streams(sink, source, _video_stream(source), dst, encoder, pix_fmt, options, scale)
        write_header(sink, dst)
        copy_first_packets(source, sink, copies, dst)
        write_trailer(sink, dst)  # the checks some muxers make only at the end


def upscale_video(
    src: Path,
    dst: Path,
    upscaler: Any,
    *,
    codec: str | None = None,
    crf: int = 18,
    max_frames: int | None = None,
    progress: bool = False,
) -> VideoReport:
    """Upscale every frame (or the first ``max_frames``) of ``src`` into ``dst``, encoded
    with ``codec`` (None: VP9 in WebM, H.264 in the other containers)."""
    av = load_av()
    from tqdm import tqdm

    container, (encoder, pix_fmt, options) = container_for(dst), encoder_for(dst, codec, crf)
    with _open_input(src) as source:
        video = _video_stream(source)
        video.thread_type = "AUTO"
        others = [s for s in source.streams if s.type in ("audio", "subtitle")]
        total = video.frames or None
        if max_frames is not None:
            total = min(total or max_frames, max_frames)
        matrix = video_colour.matrix_of(video)
        # Where the streams start: AVI places copied audio from 0, so the video starts that much later.
        starts = [s.start_time * s.time_base for s in (video, *others) if s.start_time is not None]
        origin = min(starts, default=Fraction(0))
        try:
            with atomic_output(dst) as tmp, av.open(str(tmp), "w", format=container) as sink:
                out, copies = add_streams(sink, source, video, dst, encoder, pix_fmt, options, upscaler.scale)
                rate = frame_rate(video)
                # Rotation and flips are the same at any size; written with the header, so
                # read from a first decode of the input now.
                if (display := display_matrix(src)) is not None:
                    out.set_display_matrix(display)
                write_header(sink, dst)
                timing: collections.deque[tuple[int | None, Any]] = collections.deque()
                state = _Tally()
                bar = tqdm(total=total, unit="frame", disable=not progress, desc=src.name, file=sys.stderr)

                def encode(result: np.ndarray) -> None:
                    result = _even(result)
                    if result.shape[:2] != (out.height, out.width):
                        raise InputError(
                            f"{src}: a frame of {result.shape[1]}x{result.shape[0]} after upscaling; the stream is "
                            f"{out.width}x{out.height} (frame sizes that change mid-stream are not supported in videos)"
                        )
                    frame = video_colour.from_rgb(result, out, matrix)
                    pts, base = timing.popleft()
                    if pts is not None:
                        at = pts * base
                        if state.last_time is not None and at < state.last_time:  # not for a tick to mend
                            raise InputError(
                                f"{src}: frame times go back from {float(state.last_time):.3f} s to {float(at):.3f} s "
                                f"at frame {state.frames + 1} (files joined end to end?); remux it with new times first"
                            )
                        state.last_time = at
                    if sink.format.name == "avi":  # AVI counts frames: the n-th is shown at n / rate
                        if state.frames == 0 and pts is not None:  # a late start stays late against the audio
                            state.avi_start = max(0, round((pts * base - origin) * rate))
                        pts, base = state.avi_start + state.frames, out.time_base
                    if pts is not None:  # in the encoder's time base; two frames on one tick, a tick apart
                        tick = out.codec_context.time_base
                        pts = round(pts * base / tick)
                        if state.last_pts is not None and pts <= state.last_pts:
                            pts = state.last_pts + 1
                        state.last_pts, base = pts, tick
                    frame.pts, frame.time_base = pts, base
                    for packet in out.encode(frame):
                        mux(packet)
                    state.frames += 1
                    bar.update(1)

                def mux(packet: Any) -> None:
                    try:
                        sink.mux(packet)
                    except av.error.FFmpegError as e:
                        if isinstance(e, OSError):
                            raise refused(e, dst) from e
                        raise InputError(f"{dst}: FFmpeg could not write a video packet ({reason(e)})") from e

                decoded = 0
                # AVI holds no presentation times: with B-frames its decoded frames carry them out
                # of order. It has a constant rate, so frame n is shown at n / rate.
                counted = source.format.name == "avi"
                done: set[int] = set()
                """Streams copied up to the last kept frame's time (with max_frames)."""
                held: list[Any] = []
                """Packets to copy, demuxed before that time is known: the decoder runs some
                packets behind the demuxer, by as many as it has threads."""

                def copy(packet: Any) -> bool:
                    """Mux ``packet`` into its copy, unless past the last kept frame's time;
                    False when the copied streams need nothing more."""
                    end = state.end
                    if end is not None and packet.pts is not None and packet.pts * packet.time_base > end:
                        done.add(packet.stream.index)
                        # Every copied stream past the last frame kept, or one a second past it
                        # (another that ended before it never gets there): the rest is not needed.
                        return not (done.issuperset(copies) or packet.pts * packet.time_base > end + 1)
                    if packet.dts is not None:
                        packet.stream = copies[packet.stream.index]
                        try:
                            sink.mux(packet)
                        except av.error.FFmpegError:  # a damaged packet (its timestamps, say)
                            state.uncopied += 1
                    return True

                for packet in source.demux(video, *others):
                    if held and state.end is not None:  # in their order, before any later packet
                        for waiting in held:
                            copy(waiting)
                        held.clear()
                    if packet.stream.index != video.index:
                        if max_frames is not None and state.end is None:
                            held.append(packet)
                        elif not copy(packet):
                            break
                        continue
                    if max_frames is not None and decoded >= max_frames:
                        if not others:
                            break
                        continue  # keep demuxing: other streams up to the last frame's time still copy
                    try:
                        frames = packet.decode()
                    except av.error.FFmpegError:
                        state.bad += 1
                        continue
                    for frame in frames:
                        if max_frames is not None and decoded >= max_frames:
                            break
                        decoded += 1
                        timing.append((decoded - 1, 1 / rate) if counted else (frame.pts, frame.time_base))
                        timed = frame.pts is not None and frame.time_base is not None
                        ends = (frame.pts + (frame.duration or 0)) * frame.time_base if timed else None
                        if ends is not None:
                            state.shown_until = max(state.shown_until or ends, ends)
                        if max_frames is not None and decoded == max_frames:
                            state.end = ends if ends is not None else Fraction(decoded) / rate
                        for result in upscaler.process(video_colour.rgb_of(frame, matrix)):
                            encode(result)
                for waiting in held:  # max_frames at or past the clip's length: the end was never set
                    copy(waiting)
                for result in upscaler.drain():
                    encode(result)
                bar.close()
                if state.frames == 0:
                    raise InputError(f"{src}: no frame could be decoded")
                flushed = list(out.encode(None))
                if out.codec_context.name == "libx265" and state.frames < X265_DTS_SAFE_FRAMES:
                    mend_x265_dts(flushed)
                for packet in flushed:
                    mux(packet)
                write_trailer(sink, dst)
        except BaseException:
            upscaler.cancel()  # frames of this video must not come out of the next one
            raise
    missing = 0
    stream_end = _stream_end(video)
    if (max_frames is None or decoded < max_frames) and stream_end is not None and state.shown_until is not None:
        # Two frames of slack: durations round, and the last frame's may be unknown.
        short = stream_end - state.shown_until
        if short > 2 / rate:
            missing = max(1, round(short * rate))
    return VideoReport(state.frames, (out.width, out.height), len(others), state.bad, state.uncopied, missing)


def _stream_end(video: Any) -> Fraction | None:
    """When ``video`` says its last frame ends, in seconds: its own duration (MP4, MOV; after
    any edit list), else its ``DURATION`` tag (Matroska, WebM), else None. Not the file's
    duration, which may be an audio track's, longer than the video."""
    if video.duration:
        return (video.start_time or 0) * video.time_base + video.duration * video.time_base
    tag = next((v for k, v in video.metadata.items() if k.upper() == "DURATION"), None)
    try:
        hours, minutes, seconds = str(tag).split(":")
        return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
    except ValueError:
        return None
