"""Upscale a real photo with the shipped x2 weights and compare with bicubic; then a video.

The photo (from ../shared/data/eval when present, else the one the package ships) is
downscaled x2, upscaled back by srsdk and by bicubic, and both are scored against the
original. Writes the srsdk result and a side-by-side crop (input / bicubic / srsdk). Then,
where ../shared/data/video and PyAV are present, the first seconds of car-detection.mp4
(the clip with audio) are upscaled x2 with the audio copied.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SHARED_PHOTO = Path("../shared/data/eval/set5/butterfly.png")
SHIPPED_PHOTO = Path(__file__).resolve().parent.parent / "assets" / "chelsea.png"
SHARED_CLIP = Path("../shared/data/video/car-detection.mp4")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", type=Path, help=f"photo to use (default: {SHARED_PHOTO}, else the shipped one)")
    parser.add_argument("--output", type=Path, default=Path("demo-output"), help="folder (default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--video-frames", type=int, default=25, metavar="N", help="frames of the clip (default %(default)s; 0: skip)")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from srsdk import metrics
    from srsdk.cli._common import load_deploy_net
    from srsdk.data import downscale, modcrop
    from srsdk.errors import InputError
    from srsdk.inference import upscale_array
    from srsdk.io.atomic import make_folder
    from srsdk.io.image import read_rgb, write_image

    scale = 2
    photo = args.image or (SHARED_PHOTO if SHARED_PHOTO.is_file() else SHIPPED_PHOTO)
    image = read_rgb(photo)
    if min(image.size) < 8 * scale:
        raise InputError(f"{photo}: {image.size[0]}x{image.size[1]} is too small for the demo (at least {8 * scale}x{8 * scale})")
    hr = modcrop(image, scale)
    lr = downscale(hr, scale)
    net, _, _ = load_deploy_net(scale, None, args.device)
    ours = upscale_array(net, np.asarray(lr))
    bicubic = np.asarray(lr.resize(hr.size, Image.Resampling.BICUBIC))
    target = np.asarray(hr)
    p_ours = metrics.psnr(metrics.shave(ours, scale), metrics.shave(target, scale))
    p_bic = metrics.psnr(metrics.shave(bicubic, scale), metrics.shave(target, scale))

    make_folder(args.output)
    result = args.output / f"{photo.stem}_x{scale}_srsdk.png"
    write_image(Image.fromarray(ours), result)
    crop = side_by_side(np.asarray(lr), bicubic, ours, scale)
    comparison = args.output / f"{photo.stem}_x{scale}_comparison.png"
    write_image(crop, comparison)
    print(f"photo:      {photo} ({hr.size[0]}x{hr.size[1]}, downscaled x{scale} to {lr.size[0]}x{lr.size[1]})")
    print(f"PSNR-Y:     srsdk {p_ours:.2f} dB, bicubic {p_bic:.2f} dB ({p_ours - p_bic:+.2f} dB)")
    print(f"wrote:      {result}")
    print(f"            {comparison} (input / bicubic / srsdk)")
    if args.video_frames > 0:
        demo_video(args, scale)
    return 0


def demo_video(args: argparse.Namespace, scale: int) -> None:
    import importlib.util
    import time

    from srsdk.io.video import upscale_video
    from srsdk.upscaler import Upscaler

    if not SHARED_CLIP.is_file() or importlib.util.find_spec("av") is None:
        print(f"video:      skipped (needs {SHARED_CLIP} and PyAV: pip install 'srsdk[video]')")
        return
    target = args.output / f"{SHARED_CLIP.stem}_x{scale}.mp4"
    started = time.perf_counter()
    with Upscaler(scale=scale, device=args.device) as up:
        report = upscale_video(SHARED_CLIP, target, up, max_frames=args.video_frames)
    seconds = time.perf_counter() - started
    width, height = report.size
    print(f"video:      {SHARED_CLIP} first {report.frames} frames -> {target} ({width}x{height}, "
          f"{report.copied_streams} audio stream copied, {report.frames / seconds:.1f} fps incl. set-up)")  # fmt: skip


def side_by_side(lr, bicubic, ours, scale: int, size: int = 192):  # type: ignore[no-untyped-def]
    """A labelled strip of the centre crop: nearest-upscaled input, bicubic, srsdk."""
    from PIL import Image, ImageDraw

    h, w = ours.shape[:2]
    side = min(size, h, w)
    y, x = (h - side) // 2 // scale * scale, (w - side) // 2 // scale * scale
    zoom = 2
    panels = [
        Image.fromarray(lr).resize((lr.shape[1] * scale, lr.shape[0] * scale), Image.Resampling.NEAREST),
        Image.fromarray(bicubic),
        Image.fromarray(ours),
    ]
    strip = Image.new("RGB", (3 * side * zoom + 8, side * zoom + 20), "white")
    draw = ImageDraw.Draw(strip)
    for i, (panel, label) in enumerate(zip(panels, ("input", "bicubic", "srsdk"), strict=True)):
        tile = panel.crop((x, y, x + side, y + side)).resize((side * zoom, side * zoom), Image.Resampling.NEAREST)
        strip.paste(tile, (i * (side * zoom + 4), 20))
        draw.text((i * (side * zoom + 4) + 4, 4), label, fill="black")
    return strip
