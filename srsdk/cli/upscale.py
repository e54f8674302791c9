"""Upscale an image, or every image in a folder, with the shipped network.

INPUT and OUTPUT are image files (PNG, JPEG, WebP, BMP, TIFF), or two folders. Each
output is written whole or not at all. An alpha channel is upscaled bicubically and
kept where the output format has one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, metavar="INPUT")
    parser.add_argument("output", type=Path, metavar="OUTPUT")
    parser.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    parser.add_argument("--weights", type=Path, help="a weights file (default: the shipped weights)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from srsdk.cli._common import load_deploy_net
    from srsdk.errors import InputError
    from srsdk.io.image import IMAGE_SUFFIXES, image_files, read_rgb

    if args.input.is_dir():
        sources = image_files(args.input)
        if not sources:
            raise InputError(f"no images in {args.input}")
        if args.output.exists() and not args.output.is_dir():
            raise InputError(f"INPUT is a folder, so OUTPUT must be a folder: {args.output}")
        if args.output.resolve() == args.input.resolve():
            raise InputError("OUTPUT is the INPUT folder; refusing to overwrite the originals")
        args.output.mkdir(parents=True, exist_ok=True)
        pairs = [(p, args.output / p.name) for p in sources]
    elif args.input.is_file():
        if args.output.is_dir():
            raise InputError(f"OUTPUT is a folder; give a file name ({', '.join(IMAGE_SUFFIXES)})")
        if not args.output.parent.is_dir():
            raise InputError(f"output folder does not exist: {args.output.parent}")
        if args.output.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"unsupported output format {args.output.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
        pairs = [(args.input, args.output)]
    else:
        raise InputError(f"no such file or folder: {args.input}")
    if len(pairs) == 1:
        read_rgb(pairs[0][0])  # a bad input fails before the network loads
    net, _, _ = load_deploy_net(args.scale, args.weights, args.device)
    failed = 0
    for src, dst in tqdm(pairs, unit="img", disable=len(pairs) == 1 or not sys.stderr.isatty()):
        try:
            upscale_file(net, src, dst)
        except InputError as e:
            if len(pairs) == 1:
                raise
            failed += 1
            print(f"srsdk: skipped: {e}", file=sys.stderr)
    return 1 if failed else 0


def upscale_file(net, src: Path, dst: Path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from PIL import Image

    from srsdk.inference import upscale_array
    from srsdk.io.image import read_rgb, write_image

    rgb = read_rgb(src)
    out = Image.fromarray(upscale_array(net, np.asarray(rgb)))
    with Image.open(src) as original:
        has_alpha = original.mode in ("RGBA", "LA", "PA") or "transparency" in original.info
        alpha = original.convert("RGBA").getchannel("A") if has_alpha else None
    if alpha is not None and dst.suffix.lower() in (".png", ".webp", ".tif", ".tiff"):
        out.putalpha(alpha.resize(out.size, Image.Resampling.BICUBIC))
    write_image(out, dst)
