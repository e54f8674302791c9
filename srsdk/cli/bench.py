"""Benchmark srsdk's per-frame latency and fps on this machine, against bicubic and a roofline.

Per-frame latency (p50/p95/p99) and fps of the bare engine on device tensors, of the
Upscaler from host uint8 frames to host uint8 frames, and of the Upscaler streaming;
bicubic on the same device as the floor, a roofline bound as the ceiling.

Without --engine, the network runs as the Upscaler would run it here (on CPU the fastest
engine measured for this kind of CPU: TorchScript BF16 where the CPU has bfloat16 units,
ONNX Runtime on other AVX-512 CPUs, AOTInductor on AVX2-only ones where a C++ compiler can
build it, else TorchScript FP32 with optimize_for_inference; FP16 eager on CUDA), or on --backend/--precision (built with srsdk-build-engine's code).
The JSON records the machine, GPU, CUDA, torch, srsdk version and git commit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", type=Path, help="a built engine (default: the Upscaler's choice)")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), help="2 (default), or the --engine's scale")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                        help="auto (default): the Upscaler's choice for the device")
    parser.add_argument("--backend", choices=("torchscript", "onnx", "aoti", "tensorrt"), help="build this engine first")
    parser.add_argument("--sizes", default="640x360,960x540,1280x720,1920x1080", help="input sizes WxH,... (default %(default)s)")
    parser.add_argument("--frames", type=int, default=20, metavar="N", help="timed frames per measurement (default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--cuda-graphs", action="store_true", help="Upscaler(cuda_graphs=True) (CUDA)")
    parser.add_argument("--tile", type=int, metavar="N", help="Upscaler(tile=N): N x N LR tiles (exact)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="latency against frame size (matplotlib)")


def _sizes(text: str) -> list[tuple[int, int]]:
    from srsdk.engine.config import parse_size

    sizes = [parse_size(part.strip(), order="WxH") for part in text.split(",") if part.strip()]  # WxH read as (W, H)
    return list(dict.fromkeys(sizes))  # each once: the results are keyed by size


def run(args: argparse.Namespace) -> int:
    from srsdk._features import has_module
    from srsdk.bench import bench, environment, plot
    from srsdk.errors import InputError
    from srsdk.io.atomic import check_output, write_text
    from srsdk.upscaler import Upscaler, engine_cache

    sizes = _sizes(args.sizes)
    if not sizes:
        raise InputError("--sizes: expected at least one WxH")
    if args.frames < 1:
        raise InputError(f"--frames must be >= 1, got {args.frames}")
    if args.tile is not None and args.tile < 1:  # before the network loads
        raise InputError(f"--tile must be >= 1, got {args.tile}")
    for path in (args.json, args.plot):
        if path is not None:
            check_output(path)
    if args.json and args.plot and args.json.resolve() == args.plot.resolve():
        raise InputError(f"--json and --plot name the same file ({args.json}); the plot would replace the results")
    if args.plot and args.plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"--plot: expected a .png, .svg or .pdf file, got {args.plot}")
    if args.plot and not has_module("matplotlib"):
        raise InputError("--plot needs matplotlib: pip install 'srsdk[bench]'")
    if args.engine is not None and args.backend is not None:
        raise InputError("--backend builds an engine to time, --engine times a built one: give one of them")
    engine = args.engine
    if engine is None and args.backend is not None:
        from srsdk.engine import BuildConfig, ShapeProfile, build_engine

        largest = (max(h for _, h in sizes), max(w for w, _ in sizes))
        precision = "fp32" if args.precision == "auto" else args.precision
        # At least 64 a side: a largest input smaller than a tile with its halo (21 at x2) is
        # refused, and --sizes 1x1 is a size to time, not a reason to fail.
        profile = ShapeProfile(min=(1, 1), opt=largest, max=(max(largest[0], 64), max(largest[1], 64)))
        config = BuildConfig(scale=args.scale or 2, precision=precision, backend=args.backend, profile=profile,  # type: ignore[arg-type]
                             directory=engine_cache())  # fmt: skip
        engine = build_engine(config, log=lambda line: print(f"srsdk: {line}", file=sys.stderr)).path
    options = {"engine": engine, "device": args.device, "precision": args.precision, "cuda_graphs": args.cuda_graphs,
               "tile": args.tile}  # fmt: skip
    with Upscaler(scale=args.scale, **options) as up:
        result = bench(up, sizes, frames=args.frames, log=lambda line: print(f"srsdk: {line}", file=sys.stderr))
    result = {"benchmark": "srsdk bench", "engine": str(engine) if engine else None, "cuda_graphs": args.cuda_graphs,
              "tile": args.tile, **result,
              "environment": environment()}  # fmt: skip
    text = json.dumps(result, indent=2)
    print(text)  # first: a failed write below still leaves the results on screen
    if args.json:
        write_text(args.json, text + "\n")
    if args.plot:
        plot(result, args.plot)
    return 0
