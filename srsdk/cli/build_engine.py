"""Build a deployable engine from the shipped (or given) weights, with a JSON manifest beside it.

Backends: tensorrt (Torch-TensorRT, dynamo path; FP32/FP16/INT8 on a CUDA GPU), torchscript
(scripted and frozen; FP32 anywhere, FP16 on CUDA, BF16 on CPU), onnx (FP32, checked in ONNX
Runtime), aoti (AOTInductor: FP32 native code for this CPU; needs a C++ compiler to build). Every build is scored on Set5 against the FP32 weights; an engine losing more than
0.01 / 0.1 / 0.1 / 0.3 dB PSNR-Y (FP32 / FP16 / BF16 / INT8) is refused unless --force. An identical engine
already built is reused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    from srsdk.engine.config import DEFAULT_CALIBRATION, Backend, ShapeProfile

    d = ShapeProfile()
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), help="2 (default), or the --weights' scale")
    precision = parser.add_mutually_exclusive_group()
    for name in ("fp32", "fp16", "bf16", "int8"):
        precision.add_argument(f"--{name}", dest="precision", action="store_const", const=name)
    parser.set_defaults(precision="fp32")
    parser.add_argument("--backend", default="auto", choices=[b.value for b in Backend],
                        help="auto (default): TensorRT where Torch-TensorRT and a CUDA GPU are present, else TorchScript")
    parser.add_argument("--min", default="x".join(map(str, d.min)), metavar="HxW", help="smallest LR input (default %(default)s)")
    parser.add_argument("--opt", default="x".join(map(str, d.opt)), metavar="HxW", help="LR size to tune for (default %(default)s)")
    parser.add_argument("--max", default="x".join(map(str, d.max)), metavar="HxW", help="largest LR input (default %(default)s)")
    parser.add_argument("--calib", type=Path, default=DEFAULT_CALIBRATION, metavar="DIR", help="INT8 calibration photos")
    parser.add_argument("--weights", type=Path, help="a weights file (default: the shipped weights)")
    parser.add_argument("--quality-set", type=Path, metavar="DIR", help="images for the quality gate (default: Set5 from ../shared, else the image srsdk ships)")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH", help="engine file (default: under trt/engines/)")
    parser.add_argument("--force", action="store_true", help="keep an engine that fails the quality gate")
    parser.add_argument(
        "--optimize-for-inference", action="store_true",
        help="torchscript --fp32 on the CPU: run torch.jit.optimize_for_inference on loading (oneDNN layout; "
             "faster on AVX2-only CPUs, see benchmarks/RESULTS.md)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from srsdk.engine import BuildConfig, ShapeProfile, build_engine
    from srsdk.engine.config import parse_size

    profile = ShapeProfile(min=parse_size(args.min), opt=parse_size(args.opt), max=parse_size(args.max))
    from srsdk.pretrained import scale_for

    config = BuildConfig(
        scale=scale_for(args.scale, args.weights),
        precision=args.precision,
        backend=args.backend,
        profile=profile,
        weights=args.weights,
        calib=args.calib,
        quality_set=args.quality_set,
        output=args.output,
        force=args.force,
        optimize_for_inference=args.optimize_for_inference,
    )
    built = build_engine(config, log=lambda line: print(f"srsdk: {line}", file=sys.stderr))
    gate = built.manifest["quality"]
    print(json.dumps({"engine": str(built.path), "reused": built.reused, "quality": gate}, indent=2))
    if gate.get("forced"):
        print(f"srsdk: warning: kept despite losing {gate['loss_db']} dB (--force)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``srsdk-build-engine`` command (the same as ``srsdk build-engine``)."""
    from srsdk.cli.main import main as srsdk_main

    return srsdk_main(argv, command="build-engine")
