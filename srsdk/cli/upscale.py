"""Upscale an image, a folder of images, a video, or raw frames on a pipe.

INPUT and OUTPUT are image files (PNG, JPEG, WebP, BMP, TIFF), two folders, or video files
(MP4, MOV, MKV, WebM, AVI; needs PyAV): the video is decoded, upscaled and encoded
(H.264 by default) at the same frame rate, with every audio and subtitle stream copied as
is. `srsdk upscale - - --raw WxH` reads rgb24 frames of that size from stdin and writes
the upscaled rgb24 frames to stdout, for ffmpeg pipelines. Every output file is written
whole or not at all; an error or Ctrl-C leaves nothing at the target path.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

DEFAULT_CRF = 18
"""Visually near-lossless for x264 and x265: upscaled detail should not be encoded away."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="image, folder, video, or - with --raw")
    parser.add_argument("output", metavar="OUTPUT", help="image, folder, video, or - with --raw")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), help="2 (default), or the --engine's or --weights' scale")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", type=Path, help="a weights file (default: the shipped weights)")
    source.add_argument("--engine", type=Path, help="a built engine (srsdk-build-engine)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--tile", type=int, help="tile side in LR pixels (default: whole frames when they fit)")
    parser.add_argument("--frames", type=int, metavar="N", help="videos and raw pipes: only the first N frames")
    parser.add_argument("--codec", help="videos: h264 (default; vp9 for .webm), h265, vp9, or an FFmpeg encoder name")
    parser.add_argument("--crf", type=int,
                        help=f"videos: constant rate factor for h264 / h265 (0-51) and vp9 (0-63) (default {DEFAULT_CRF})")  # fmt: skip
    parser.add_argument("--raw", metavar="WxH", help="INPUT/OUTPUT are pipes of rgb24 frames of this size")


def _upscaler(args: argparse.Namespace) -> Any:
    from srsdk.upscaler import Upscaler

    return Upscaler(scale=args.scale, engine=args.engine, weights=args.weights, device=args.device, tile=args.tile)


def _scale(args: argparse.Namespace) -> int:
    """The scale the upscaler will run at, read without loading a network: ``--scale``, else
    the ``--engine``'s or the ``--weights``' (a file that cannot say is reported when it loads)."""
    from srsdk.errors import SrsdkError
    from srsdk.pretrained import scale_for

    try:
        if args.scale is None and args.engine is not None:
            from srsdk.engine import manifest

            return int(manifest.read(args.engine)["scale"])
        return scale_for(args.scale, args.weights)
    except (SrsdkError, KeyError, TypeError, ValueError):
        return 2


def run(args: argparse.Namespace) -> int:
    from srsdk.errors import InputError
    from srsdk.io.image import unreadable
    from srsdk.io.video import is_video

    if args.frames is not None and args.frames < 1:
        raise InputError(f"--frames must be >= 1, got {args.frames}")
    if args.tile is not None and args.tile < 1:  # before the network loads
        raise InputError(f"--tile must be >= 1, got {args.tile}")
    if args.raw is not None or "-" in (args.input, args.output):
        if args.raw is None or (args.input, args.output) != ("-", "-"):
            raise InputError("raw pipe mode is `srsdk upscale - - --raw WxH`")
        if args.codec is not None or args.crf is not None:
            raise InputError("--codec and --crf are for video files; raw mode writes rgb24 frames")
        return run_raw(args)
    src, dst = Path(args.input), Path(args.output)
    if why := unreadable(src):
        raise InputError(f"cannot read {src}: {why}")
    if not src.exists():
        raise InputError(f"no such file or folder: {src}")
    if src.is_file() and is_video(src):
        return run_video(args, src, dst)
    if is_video(dst):
        raise InputError(f"OUTPUT is a video but INPUT is not a video file: {src}")
    if args.frames is not None or args.codec is not None or args.crf is not None:
        raise InputError("--frames, --codec and --crf are for videos; INPUT is not a video file")
    return run_images(args, src, dst)


def run_video(args: argparse.Namespace, src: Path, dst: Path) -> int:
    from srsdk.errors import InputError
    from srsdk.io.atomic import check_output
    from srsdk.io.video import CRF_RANGE, VIDEO_SUFFIXES, check_video_output, encoder_for, upscale_video

    if dst.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"INPUT is a video, so OUTPUT must be one too ({', '.join(VIDEO_SUFFIXES)}): {dst}")
    if dst.resolve() == src.resolve():
        raise InputError("OUTPUT is the INPUT video; refusing to overwrite it")
    if dst.is_dir():
        raise InputError(f"OUTPUT is a folder; give a video file name ({', '.join(VIDEO_SUFFIXES)})")
    check_output(dst)
    crf = DEFAULT_CRF if args.crf is None else args.crf
    # A bad --codec or --crf, or a stream the container cannot hold, fails before the network loads.
    check_video_output(src, dst, args.codec, crf, _scale(args))
    if args.crf is not None and (encoder := encoder_for(dst, args.codec, crf)[0]) not in CRF_RANGE:
        raise InputError(f"--crf is for h264, h265 and vp9; {encoder} would ignore it (it keeps its own defaults)")
    with _upscaler(args) as up:
        report = upscale_video(src, dst, up, codec=args.codec, crf=crf, max_frames=args.frames,
                               progress=sys.stderr.isatty())  # fmt: skip
    width, height = report.size
    print(f"wrote {dst}: {report.frames} frames, {width}x{height}, {report.copied_streams} stream(s) copied")
    problems = [
        f"{report.undecodable_packets} video packet(s) could not be decoded" if report.undecodable_packets else "",
        f"{report.uncopied_packets} audio or subtitle packet(s) could not be copied" if report.uncopied_packets else "",
        f"{report.missing_frames} frame(s) it declares are not in it (truncated?)" if report.missing_frames else "",
    ]
    if any(problems):
        print(f"srsdk: warning: {src}: {'; '.join(p for p in problems if p)}; the rest was upscaled",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _raw_frames(stream: BinaryIO, width: int, height: int) -> Iterator[Any]:
    import numpy as np

    from srsdk.errors import InputError

    size = width * height * 3
    while True:
        data = stream.read(size)
        if not data:
            return
        while len(data) < size:
            more = stream.read(size - len(data))
            if not more:
                raise InputError(f"stdin ended inside a frame ({len(data)} of {size} bytes for {width}x{height} rgb24)")
            data += more
        yield np.frombuffer(data, np.uint8).reshape(height, width, 3)


def run_raw(args: argparse.Namespace) -> int:
    from srsdk.engine.config import parse_size
    from srsdk.errors import InputError

    width, height = parse_size(args.raw, order="WxH")  # as ffmpeg writes sizes
    for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout)):
        if stream is None:  # started with it closed (`<&-`, `>&-`)
            raise InputError(f"raw mode reads frames from stdin and writes them to stdout, and {name} is closed")
    out = sys.stdout.buffer
    count = 0
    try:
        with _upscaler(args) as up:
            frames = itertools.islice(_raw_frames(sys.stdin.buffer, width, height), args.frames)
            for frame in up.stream(frames):
                out.write(frame.tobytes())
                count += 1
        out.flush()
    except BrokenPipeError:
        # The reader stopped reading (ffmpeg or head had enough): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        print(f"srsdk: the output pipe was closed after {count} frame(s)", file=sys.stderr)
        return 0
    except OSError as e:
        raise InputError(f"cannot write frames to stdout after {count} frame(s): {e.strerror or e}") from e
    print(f"srsdk: {count} frame(s) upscaled", file=sys.stderr)
    return 0


def run_images(args: argparse.Namespace, src: Path, dst: Path) -> int:
    from tqdm import tqdm

    from srsdk.errors import InputError, disk_error
    from srsdk.io.atomic import check_output, make_folder
    from srsdk.io.image import IMAGE_SUFFIXES, images_in

    unreadable: list[str] = []
    if src.is_dir():
        sources, unreadable = images_in(src)
        if (dst.exists() and not dst.is_dir()) or (not dst.exists() and dst.suffix.lower() in IMAGE_SUFFIXES):
            raise InputError(f"INPUT is a folder, so OUTPUT must be a folder: {dst}")
        if dst.resolve() == src.resolve():
            raise InputError("OUTPUT is the INPUT folder; refusing to overwrite the originals")
        subfolders = [p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".") and p.resolve() != dst.resolve()]
        # An input linked to a file in OUTPUT would be written over by a result. (A link in
        # OUTPUT to an input is safe: the rename replaces the link, not what it points to.)
        originals = {p.resolve(): p for p in sources}
        targets = (dst / p.name for p in sources)
        if clash := next((t for t in targets if not t.is_symlink() and t.resolve() in originals), None):
            raise InputError(f"{clash} is what the input {originals[clash.resolve()]} links to; refusing to overwrite it")
        make_folder(dst)
        pairs = [(p, dst / p.name) for p in sources]
        if subfolders:
            print(f"srsdk: note: {len(subfolders)} subfolder(s) of {src} not upscaled (only the images directly in it)",
                  file=sys.stderr)  # fmt: skip
    elif src.is_file():
        if dst.resolve() == src.resolve():
            raise InputError("OUTPUT is the INPUT image; refusing to overwrite it")
        if dst.is_dir():
            raise InputError(f"OUTPUT is a folder; give a file name ({', '.join(IMAGE_SUFFIXES)})")
        check_output(dst)
        if dst.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"unsupported output format {dst.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
        pairs = [(src, dst)]
    else:
        raise InputError(f"no such file or folder: {src}")
    for entry in unreadable:
        print(f"srsdk: skipped: {entry}", file=sys.stderr)
    # A single bad input fails before the network loads; it is read once.
    first = read_image(pairs[0][0]) if len(pairs) == 1 else None
    failed = 0
    with _upscaler(args) as up:
        for n, (source, target) in enumerate(tqdm(pairs, unit="img", disable=len(pairs) == 1 or not sys.stderr.isatty())):
            try:
                upscale_file(up, source, target, first, progress=len(pairs) == 1 and sys.stderr.isatty())
            except InputError as e:
                if len(pairs) == 1:
                    raise
                if disk_error(e) is not None:  # a full disk fails every image after this one too
                    raise InputError(f"{e}; stopped: {n - failed} of {len(pairs)} image(s) written") from e
                failed += 1
                tqdm.write(f"srsdk: skipped: {e}", file=sys.stderr)  # above the progress bar, not into it
    skipped = failed + len(unreadable)
    said = f" ({skipped} skipped)" if skipped else ""
    print(f"wrote {dst}" if src.is_file() else f"wrote {len(pairs) - failed} image(s) to {dst}{said}")
    return 1 if skipped else 0


FILL_REACH = 16
"""How far into a transparent area colours are filled: past the receptive radius of every
shipped network (8-10 LR pixels, ``srsdk info``) and the bicubic alpha's 2 pixels."""


def read_image(src: Path) -> tuple[Any, Any]:
    """The image file ``src`` as read (mode, alpha and ICC profile kept) and as 8-bit RGB."""
    from srsdk.io.image import open_image, to_rgb

    original = open_image(src)
    return original, to_rgb(original, src)


def upscale_file(
    up: Any, src: Path, dst: Path, read: tuple[Any, Any] | None = None, *, progress: bool = False
) -> None:
    """Upscale the image file ``src`` (or ``read``, what :func:`read_image` read from it) into
    ``dst``, keeping its alpha channel where ``dst``'s format holds one, its greyscale, its
    ICC profile where it describes the output's colours, and its EXIF metadata. With
    ``progress``, an image of more than one row of tiles shows a progress bar over them."""
    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from srsdk.io.image import check_fits, exif_of, fill_transparent, is_greyscale, profile_for, write_image

    original, rgb = read or read_image(src)
    check_fits(dst, rgb.width * up.scale, rgb.height * up.scale)  # before the work, not after it
    if original.info["srsdk_frames"] > 1:  # tqdm.write: above a folder's progress bar, not into it
        tqdm.write(f"srsdk: warning: {src} holds {original.info['srsdk_frames']} frames; only the first is upscaled",
                   file=sys.stderr)  # fmt: skip
    if original.mode.startswith("I;16") or original.info.get("srsdk_16bit"):
        tqdm.write(f"srsdk: warning: {src} is 16-bit; it is upscaled and written as 8-bit", file=sys.stderr)
    has_alpha = original.mode in ("RGBA", "LA", "PA") or "transparency" in original.info
    alpha = original.convert("RGBA").getchannel("A") if has_alpha else None
    pixels = np.asarray(rgb)
    if alpha is not None:  # what a file stores under full transparency must not bleed into the visible edge
        pixels = fill_transparent(pixels, np.asarray(alpha), reach=FILL_REACH)
    bar = None

    def tiles_done(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and total > 1 and done < total:
            bar = tqdm(total=total, unit="tile", desc=src.name, file=sys.stderr)
        if bar is not None:
            bar.update(done - bar.n)

    try:
        out = Image.fromarray(up(pixels, progress=tiles_done if progress else None))
    finally:
        if bar is not None:
            bar.close()
    if is_greyscale(original):
        out = out.convert("L")  # greyscale stays greyscale (the network's three channels, as luma)
    if alpha is not None and dst.suffix.lower() in (".png", ".webp", ".tif", ".tiff"):
        out.putalpha(alpha.resize(out.size, Image.Resampling.BICUBIC))
    elif alpha is not None and alpha.getextrema()[0] < 255:
        tqdm.write(f"srsdk: warning: {src} has transparent pixels, which {dst.suffix} cannot hold: {dst} shows "
                   "the colours under them (write .png, .webp or .tif to keep the transparency)", file=sys.stderr)
    dpi = original.info.get("dpi")  # kept as it was: the same pixels per inch, a larger print
    write_image(out, dst, icc_profile=profile_for(original, out.mode), exif=exif_of(original, src),
                dpi=tuple(dpi) if isinstance(dpi, tuple) and len(dpi) == 2 else None, like=original)  # fmt: skip
