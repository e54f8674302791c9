"""Evaluate srsdk and bicubic on folders of images (PSNR-Y, SSIM-Y, GMSD).

HR images are cropped to a multiple of the scale and degraded by bicubic downscaling;
metrics are computed on the BT.601 luma with `scale` pixels shaved at each border.
Unreadable images are reported by name and skipped; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="folders of HR images")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), help="default: 2, or the scale of --engine or --weights")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", type=Path, help="a weights file (default: the shipped weights)")
    source.add_argument("--engine", type=Path, help="a built engine (srsdk-build-engine), manifest-checked")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument("--device", default="cpu",
                        help="torch device (default: cpu, where the README's scores were measured; not auto as elsewhere)")


def run(args: argparse.Namespace) -> int:
    from srsdk.cli._common import load_deploy_net
    from srsdk.errors import InputError
    from srsdk.evaluate import evaluate
    from srsdk.inference import upscale_array
    from srsdk.io.atomic import check_output, write_text
    from srsdk.io.image import IMAGE_SUFFIXES, images_in

    names = [folder.resolve().name.lower() for folder in args.folders]
    for folder in args.folders:
        images_in(folder)  # every folder checked before the work
    if len(set(names)) != len(names):
        raise InputError(f"folder names must differ (case-insensitively): {', '.join(names)}")
    if args.json:
        check_output(args.json)
        if args.json.suffix.lower() in IMAGE_SUFFIXES:  # an input image, or read as one next time
            raise InputError(f"--json {args.json}: expected a .json file name, not an image's")
    if args.engine is not None:
        from srsdk.engine import load_engine

        engine = load_engine(args.engine, scale=args.scale, device=None if args.device == "cpu" else args.device)
        scale, upscale = engine.scale, engine.upscale
        provenance = {
            "engine": str(args.engine),
            "engine_sha256": engine.manifest["engine_sha256"],
            "backend": engine.backend.value,
            "precision": engine.precision.value,
            "weights": engine.manifest["weights"],
            "weights_sha256": engine.manifest["weights_sha256"],
        }
    else:
        from srsdk.pretrained import scale_for

        scale = scale_for(args.scale, args.weights)
        net, weights, weights_sha = load_deploy_net(scale, args.weights, args.device)
        provenance = {"weights": weights, "weights_sha256": weights_sha}

        def upscale(lr):  # type: ignore[no-untyped-def]
            return upscale_array(net, lr)

    report = evaluate(args.folders, scale=scale, upscale=upscale, progress=sys.stderr.isatty())
    result = {"scale": scale, **provenance, "datasets": report.datasets}
    text = json.dumps(result, indent=2, allow_nan=False)
    print(text)  # first: a failed write below still leaves the results on screen
    if args.json:
        write_text(args.json, text + "\n")
    for failure in report.failures:
        print(f"srsdk: skipped: {failure}", file=sys.stderr)
    return 1 if report.failures else 0
