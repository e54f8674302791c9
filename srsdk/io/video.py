"""Video in, video out, through PyAV: decode, upscale, encode; audio and subtitles copied.

The output has the input's frame rate and time base, every audio and subtitle stream
copied packet for packet (no re-encoding), and the input's orientation: its display matrix
(rotation and flips, which FFmpeg 7+ reports as side data on the decoded frames) is written
to the output stream, and a legacy ``rotate`` tag is kept. Frames are
encoded as yuv420p, which needs even sizes: an odd output width or height is padded by
one pixel (the last row or column repeated). The file is written under a temporary name
and renamed into place only when complete. Packets that do not decode are counted and
reported, and the run goes on with the rest.
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
from srsdk.io.atomic import atomic_output

VIDEO_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
"""Containers srsdk writes, by suffix."""
READ_ONLY_SUFFIXES = (".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv")
"""Further containers srsdk reads (FFmpeg finds the format from the file itself)."""
CODECS = {"h264": "libx264", "h265": "libx265", "hevc": "libx265", "vp9": "libvpx-vp9"}
CRF_RANGE = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63)}
"""The encoders ``crf`` applies to, and its range for each; other encoders take their defaults."""


def is_video(path: Path) -> bool:
    """Whether ``path`` names a video by its suffix (one srsdk writes, or only reads)."""
    return path.suffix.lower() in VIDEO_SUFFIXES or path.suffix.lower() in READ_ONLY_SUFFIXES


def encoder_for(dst: Path, codec: str | None, crf: int) -> tuple[str, str, dict[str, str]]:
    """The FFmpeg encoder that writes ``dst`` with ``codec`` (None: VP9 in WebM, H.264 in the
    other containers), the pixel format to give it (yuv420p where it takes it, as players
    expect) and its options; an :class:`InputError` for what cannot encode video, or a
    ``crf`` out of the encoder's range. Cheap: call it to check arguments before work."""
    av = _av()
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


def _av() -> Any:
    try:
        import av
    except ImportError as e:
        raise InputError("videos need PyAV: pip install 'srsdk[video]'") from e
    return av


@dataclasses.dataclass
class VideoReport:
    """What :func:`upscale_video` did."""

    frames: int
    size: tuple[int, int]
    """Output (width, height) as encoded."""
    copied_streams: int
    undecodable_packets: int


@dataclasses.dataclass
class _Tally:
    frames: int = 0
    size: tuple[int, int] = (0, 0)
    bad: int = 0
    end: Fraction | None = None
    """With max_frames: the time the last kept frame ends; later packets are dropped."""


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def display_matrix(src: Path) -> list[int] | None:
    """The display matrix (FFmpeg's 9 int32 layout) of ``src``'s first decodable video
    frame, or None when it has none (the frames are shown as coded)."""
    av = _av()
    try:
        with av.open(str(src)) as container:
            for packet in container.demux(video=0):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue
                for frame in frames:
                    for data in frame.side_data:
                        if data.type.name == "DISPLAYMATRIX" and data.buffer_size == 36:
                            return [int(v) for v in np.frombuffer(bytes(data), dtype="<i4")]
                    return None
    except (av.error.FFmpegError, OSError, IndexError):
        return None
    return None


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
    av = _av()
    from tqdm import tqdm

    if dst.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"unsupported output container {dst.suffix!r}; use one of {', '.join(VIDEO_SUFFIXES)}")
    encoder, pix_fmt, options = encoder_for(dst, codec, crf)
    try:
        source = av.open(str(src))
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"{src}: cannot open as a video ({e})") from e
    with source:
        if not source.streams.video:
            raise InputError(f"{src}: has no video stream")
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        others = [s for s in source.streams if s.type in ("audio", "subtitle")]
        total = video.frames or None
        if max_frames is not None:
            total = min(total or max_frames, max_frames)
        try:
            with atomic_output(dst) as tmp, av.open(str(tmp), "w", format=VIDEO_SUFFIXES[dst.suffix.lower()]) as sink:
                rate = video.average_rate or video.guessed_rate or Fraction(25)
                try:
                    out = sink.add_stream(encoder, rate=rate)
                except (ValueError, av.error.FFmpegError) as e:
                    raise InputError(f"{dst.suffix} files cannot hold {encoder} video ({e}); try another --codec") from e
                # Sized now: muxing a copied audio packet opens every encoder, long before the
                # first upscaled frame comes back from the pipeline.
                out.width = video.width * upscaler.scale + (video.width * upscaler.scale) % 2
                out.height = video.height * upscaler.scale + (video.height * upscaler.scale) % 2
                out.pix_fmt = pix_fmt
                out.time_base = video.time_base
                out.options = options
                for key in ("rotate",):
                    if key in video.metadata:
                        out.metadata[key] = video.metadata[key]
                # Rotation and flips are the same at any size; written with the header, so
                # read from a first decode of the input now.
                if (matrix := display_matrix(src)) is not None:
                    out.set_display_matrix(matrix)
                copies = {s.index: sink.add_stream_from_template(s) for s in others}
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
                    state.size = (out.width, out.height)
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(result), format="rgb24")
                    frame.pts, frame.time_base = timing.popleft()
                    for packet in out.encode(frame):
                        sink.mux(packet)
                    state.frames += 1
                    bar.update(1)

                decoded = 0
                for packet in source.demux(video, *others):
                    if packet.stream.index != video.index:
                        end = state.end
                        if end is not None and packet.pts is not None and packet.pts * packet.time_base > end:
                            break  # past the last frame kept: the rest of the file is not needed
                        if packet.dts is not None:
                            packet.stream = copies[packet.stream.index]
                            sink.mux(packet)
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
                        timing.append((frame.pts, frame.time_base))
                        if max_frames is not None and decoded == max_frames:
                            state.end = (
                                (frame.pts + (frame.duration or 0)) * frame.time_base
                                if frame.pts is not None and frame.time_base is not None
                                else Fraction(decoded) / rate
                            )
                        for result in upscaler.process(frame.to_ndarray(format="rgb24")):
                            encode(result)
                for result in upscaler.drain():
                    encode(result)
                bar.close()
                if state.frames == 0:
                    raise InputError(f"{src}: no frame could be decoded")
                for packet in out.encode(None):
                    sink.mux(packet)
        except BaseException:
            upscaler.cancel()  # frames of this video must not come out of the next one
            raise
    return VideoReport(state.frames, state.size, len(others), state.bad)
