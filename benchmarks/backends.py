"""srsdk's CPU backends against each other and against OpenCV's FSRCNN / ESPCN, same frames.

    python benchmarks/backends.py --json benchmarks/results/backends-cpu.json

Frames: the first ``--frames`` frames of ``../shared/data/video/car-detection.mp4`` (a real
camera clip, 768x432), resized to ``--size`` (960x540 by default) with bicubic filtering;
random frames where the clip is absent. Every contender goes from a uint8 frame to a
uint8 frame upscaled x2, one frame per call, on all cores:

* ``eager``: :func:`srsdk.inference.upscale_array` on the shipped weights;
* ``torchscript``, ``onnx``: FP32 engines built with :func:`srsdk.build_engine` (quality
  gate included) and run through :meth:`srsdk.Engine.upscale`;
* ``torchscript_bf16``: the BF16 TorchScript engine (bfloat16 learned layers, float32 skip
  and output; fast only on CPUs with bfloat16 units such as AMX);
* ``torchscript_optimized``: the same frozen graph after ``torch.jit.optimize_for_inference``;
* ``opencv_fsrcnn``, ``opencv_espcn``: ``cv2.dnn_superres`` with the models in
  ``../shared/peers/opencv_dnn_superres`` (they upscale luma only; needs
  ``opencv-contrib-python-headless``), skipped with a note where either is missing.

Reported per contender: median and quartiles of the per-frame latency, fps, and the time
ratio to ``eager`` (``speedup_vs_eager`` = eager time / its time); which engine srsdk picks
on this machine by default (``default_cpu_engine``) and its time over FSRCNN's
(``default_vs_opencv_fsrcnn``, below 1 = faster).
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report, timeit

from srsdk.engine import BuildConfig, ShapeProfile, build_engine, load_engine
from srsdk.engine.build import fastest_cpu_engine
from srsdk.inference import upscale_array
from srsdk.pretrained import load_pretrained

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
CLIP = SHARED / "data" / "video" / "car-detection.mp4"
PEERS = SHARED / "peers" / "opencv_dnn_superres"


def load_frames(count: int, width: int, height: int) -> tuple[list[np.ndarray], str]:
    try:
        import cv2
    except ImportError:
        cv2 = None
    frames: list[np.ndarray] = []
    if cv2 is not None and CLIP.is_file():
        capture = cv2.VideoCapture(str(CLIP))
        while len(frames) < count:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = Image.fromarray(bgr[:, :, ::-1].copy())
            frames.append(np.asarray(rgb.resize((width, height), Image.Resampling.BICUBIC)))
        capture.release()
    if len(frames) == count:
        return frames, f"{CLIP.name}, first {count} frames resized to {width}x{height}"
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)], "random"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--size", default="960x540", help="input frame WxH")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    scale = 2
    frames, source = load_frames(args.frames, width, height)
    turn = iter(range(10**9))

    def next_frame() -> np.ndarray:
        return frames[next(turn) % len(frames)]

    net = load_pretrained(scale).deploy()
    profile = ShapeProfile(min=(8, 8), opt=(height, width), max=(max(height, 1080), max(width, 1920)))
    contenders = {"eager": lambda: upscale_array(net, next_frame())}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend, precision in (("torchscript", "fp32"), ("onnx", "fp32"), ("torchscript", "bf16")):
            name = label(backend, precision)
            config = BuildConfig(scale=scale, backend=backend, precision=precision, profile=profile,  # type: ignore[arg-type]
                                 output=Path(tmp) / f"x2.{name}")  # fmt: skip
            built = build_engine(config)
            contenders[name] = functools.partial(_run, load_engine(built.path).upscale, next_frame)
        optimized = load_engine(Path(tmp) / "x2.torchscript")  # the FP32 one
        optimized._runner = torch.jit.optimize_for_inference(optimized._runner)
        contenders["torchscript_optimized"] = lambda: optimized.upscale(next_frame())
        contenders |= _peers(scale, next_frame, notes)

        timed = {}
        for name, run in contenders.items():
            timed[name] = timeit(run, repeats=args.repeats)
            print(f"{name:24s} {timed[name]['median_ms']:9.1f} ms", file=sys.stderr)

    eager = timed["eager"]["median_ms"]
    for result in timed.values():
        result["fps"] = 1e3 / result["median_ms"]
        result["speedup_vs_eager"] = eager / result["median_ms"]
    srsdk_names = ("eager", "torchscript", "torchscript_optimized", "onnx", "torchscript_bf16")
    fastest = min(srsdk_names, key=lambda n: timed[n]["median_ms"])
    default = label(*(choice.value for choice in fastest_cpu_engine()))
    output = {
        "benchmark": "backends",
        "device": "cpu",
        "frames": source,
        "input": [height, width],
        "scale": scale,
        "timings": timed,
        "fastest_srsdk_backend": fastest,
        "default_cpu_engine": default,
        "default_vs_opencv_fsrcnn": (
            timed[default]["median_ms"] / timed["opencv_fsrcnn"]["median_ms"] if "opencv_fsrcnn" in timed else None
        ),
        "notes": notes,
    }
    return report(output, args.json)


def label(backend: str, precision: str) -> str:
    """A contender's name: the backend, with the precision when it is not FP32."""
    return backend if precision == "fp32" else f"{backend}_{precision}"


def _run(upscale, next_frame):  # type: ignore[no-untyped-def]
    return upscale(next_frame())


def _run_bgr(upsample, next_frame):  # type: ignore[no-untyped-def]
    return upsample(np.ascontiguousarray(next_frame()[:, :, ::-1]))


def _peers(scale: int, next_frame, notes: dict[str, str]) -> dict:  # type: ignore[no-untyped-def,type-arg]
    try:
        import cv2
    except ImportError:
        notes["opencv"] = "skipped: pip install opencv-contrib-python-headless"
        return {}
    if not hasattr(cv2, "dnn_superres") or not PEERS.is_dir():
        notes["opencv"] = "skipped: needs opencv-contrib and ../shared/peers/opencv_dnn_superres"
        return {}
    cv2.setNumThreads(torch.get_num_threads())
    peers = {}
    for name, file in (("fsrcnn", f"FSRCNN_x{scale}.pb"), ("espcn", f"ESPCN_x{scale}.pb")):
        model = cv2.dnn_superres.DnnSuperResImpl_create()
        model.readModel(str(PEERS / file))
        model.setModel(name, scale)
        peers[f"opencv_{name}"] = functools.partial(_run_bgr, model.upsample, next_frame)
    return peers


if __name__ == "__main__":
    raise SystemExit(main())
