"""srsdk's CPU backends against each other and against OpenCV's FSRCNN / ESPCN, same frames.

    python benchmarks/backends.py --json benchmarks/results/backends-cpu.json \
        --sizes 640x360,1280x720,1920x1080 --plot benchmarks/results/backends-cpu.png

Frames: the first ``--frames`` frames of ``../shared/data/video/car-detection.mp4`` (a real
camera clip, 768x432), resized to ``--size`` (960x540 by default) with bicubic filtering;
random frames where the clip is absent. Every contender goes from a uint8 frame to a
uint8 frame upscaled x2, one frame per call, on all cores, interleaved (each round runs every
contender once on the same frame, so drift in the machine's speed falls on all alike):

* ``eager``: :func:`srsdk.inference.upscale_array` on the shipped weights;
* ``torchscript``, ``onnx``: FP32 engines built with :func:`srsdk.build_engine` (quality
  gate included) and run through :meth:`srsdk.Engine.upscale`;
* ``torchscript_bf16``: the BF16 TorchScript engine (bfloat16 learned layers, float32 skip
  and output; fast only on CPUs with bfloat16 units such as AMX);
* ``torchscript_optimized``: the FP32 TorchScript engine built with
  ``optimize_for_inference``, which runs the frozen graph through
  ``torch.jit.optimize_for_inference`` when it is loaded;
* ``aoti``: the AOTInductor FP32 engine (``torch.export`` compiled to native code with
  frozen weights; needs a C++ compiler to build);
* ``opencv_fsrcnn``, ``opencv_espcn``: ``cv2.dnn_superres`` with the models in
  ``../shared/peers/opencv_dnn_superres`` (they upscale luma only; needs
  ``opencv-contrib-python-headless``), skipped with a note where either is missing.

Reported per contender: median and quartiles of the per-frame latency, fps, and the time
ratio to ``eager`` (``speedup_vs_eager`` = eager time / its time); which engine srsdk picks
on this machine by default (``default_cpu_engine``) and its time over FSRCNN's
(``default_vs_opencv_fsrcnn``, below 1 = faster), and that ratio's spread over the rounds
(``default_vs_opencv_fsrcnn_per_round``). With ``--sizes``, every contender is also
timed at those sizes (``--size-repeats`` frames each; ``median_ms_by_size``), and ``--plot``
draws latency against frame size per contender.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report, summary

from srsdk._features import has_cxx_compiler
from srsdk.engine import BuildConfig, ShapeProfile, build_engine, load_engine
from srsdk.engine.build import fastest_cpu_engine
from srsdk.inference import upscale_array
from srsdk.pretrained import load_pretrained

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
CLIP = SHARED / "data" / "video" / "car-detection.mp4"
PEERS = SHARED / "peers" / "opencv_dnn_superres"


ENGINES = (("torchscript", "fp32", False), ("onnx", "fp32", False), ("torchscript", "bf16", False),
           ("torchscript", "fp32", True), ("aoti", "fp32", False))  # fmt: skip
"""The srsdk engines timed: (backend, precision, optimize_for_inference)."""


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
    parser.add_argument("--size", default="960x540", help="input frame WxH of the main table")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--sizes", default="", help="more input sizes WxH,... timed with --size-repeats")
    parser.add_argument("--size-repeats", type=int, default=3)
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="latency against frame size per contender")
    parser.add_argument("--skip", default="", help="contenders not to run, NAME,... (e.g. torchscript_bf16 where it is slow)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    extra = [tuple(int(v) for v in part.split("x")) for part in args.sizes.split(",") if part.strip()]
    scale = 2
    frames, source = load_frames(args.frames, width, height)
    skipped = {name.strip() for name in args.skip.split(",") if name.strip()}
    if "eager" in skipped:
        raise SystemExit("--skip: eager is the baseline every speed-up is measured against")
    known = {label(*c) for c in ENGINES} | {"opencv_fsrcnn", "opencv_espcn"}
    if unknown := sorted(skipped - known):
        raise SystemExit(f"--skip: no contender named {', '.join(unknown)} (they are: {', '.join(sorted(known))})")
    largest = (max([height, 1080] + [h for _, h in extra]), max([width, 1920] + [w for w, _ in extra]))

    net = load_pretrained(scale).deploy()
    profile = ShapeProfile(min=(8, 8), opt=(height, width), max=largest)
    contenders: dict[str, Callable[[np.ndarray], object]] = {"eager": functools.partial(upscale_array, net)}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend, precision, optimize in ENGINES:
            name = label(backend, precision, optimize)
            if name in skipped:
                notes[name] = "skipped: --skip"
                continue
            if backend == "aoti" and not has_cxx_compiler():
                notes[name] = "skipped: no C++ compiler to build it"
                continue
            config = BuildConfig(scale=scale, backend=backend, precision=precision, profile=profile,  # type: ignore[arg-type]
                                 optimize_for_inference=optimize, output=Path(tmp) / f"x2.{name}")  # fmt: skip
            contenders[name] = load_engine(build_engine(config).path).upscale
        contenders |= {name: run for name, run in _peers(scale, notes).items() if name not in skipped}

        timed, samples = _time_all(contenders, frames, args.repeats, f"{width}x{height}")
        by_size = {f"{width}x{height}": {name: t["median_ms"] for name, t in timed.items()}}
        for w, h in extra:
            found, _ = _time_all(contenders, load_frames(args.frames, w, h)[0], args.size_repeats, f"{w}x{h}")
            by_size[f"{w}x{h}"] = {name: t["median_ms"] for name, t in found.items()}

    eager = timed["eager"]["median_ms"]
    for result in timed.values():
        result["fps"] = 1e3 / result["median_ms"]
        result["speedup_vs_eager"] = eager / result["median_ms"]
    srsdk_names = [n for n in ("eager", "torchscript", "torchscript_optimized", "onnx", "torchscript_bf16", "aoti") if n in timed]
    fastest = min(srsdk_names, key=lambda n: timed[n]["median_ms"])
    choice = fastest_cpu_engine()
    default = label(choice.backend.value, choice.precision.value, choice.optimize_for_inference)
    paired = default in timed and "opencv_fsrcnn" in timed
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
            timed[default]["median_ms"] / timed["opencv_fsrcnn"]["median_ms"] if paired else None
        ),
        # The same ratio round by round (each round times both on one frame, back to back):
        # its spread says whether the medians' ratio is more than the machine's drift.
        "default_vs_opencv_fsrcnn_per_round": _paired(samples[default], samples["opencv_fsrcnn"]) if paired else None,
        "median_ms_by_size": dict(sorted(by_size.items(), key=lambda kv: _pixels(kv[0]))),
        "size_repeats": args.size_repeats,
        "notes": notes,
    }
    if args.plot:
        plot(output, args.plot)
    return report(output, args.json)


def _paired(ours: list[float], theirs: list[float]) -> dict[str, float]:
    """Median and quartiles of ``ours[r] / theirs[r]`` over the rounds, and the share of
    rounds where ours was faster."""
    ratios = np.array(ours) / np.array(theirs)
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    return {"median": float(q50), "p25": float(q25), "p75": float(q75), "rounds": len(ratios),
            "share_faster": float(np.mean(ratios < 1))}  # fmt: skip


def _pixels(size: str) -> int:
    w, h = (int(v) for v in size.split("x"))
    return w * h


def _time_all(
    contenders: dict[str, Callable[[np.ndarray], object]], frames: list[np.ndarray], repeats: int, size: str
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]]]:
    """Every contender on the same frames, one frame per call, interleaved: round ``r`` runs
    each contender once on frame ``r`` (in reverse order every other round), so a machine
    whose speed drifts during the run (the development machines do, 10-30 % within a
    minute) slows them all alike, where timing them one after another once put a 1.25x
    lead the wrong way round. Two untimed calls
    each first. Returns the summaries and the samples (ms) in round order."""
    for run in contenders.values():
        for frame in itertools.islice(itertools.cycle(frames), 2):
            run(frame)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(repeats):
        frame = frames[r % len(frames)]
        for name in names if r % 2 == 0 else names[::-1]:  # no contender always first (or last)
            run = contenders[name]
            started = time.perf_counter()
            run(frame)
            samples[name].append((time.perf_counter() - started) * 1e3)
    timed = {name: summary(found) for name, found in samples.items()}
    for name, result in timed.items():
        print(f"{size:>10s} {name:24s} {result['median_ms']:9.1f} ms", file=sys.stderr)
    return timed, samples


def plot(result: dict[str, Any], path: Path) -> None:
    """p50 latency against input size, one line per contender (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = result["median_ms_by_size"]
    pixels = [_pixels(size) / 1e6 for size in sizes]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name in result["timings"]:
        ax.plot(pixels, [sizes[size][name] for size in sizes], marker="o", label=name,
                ls="--" if name.startswith("opencv") else "-")  # fmt: skip
    ax.set_xlabel("input megapixels (x2)")
    ax.set_ylabel("ms per frame, uint8 to uint8 (p50)")
    ax.set_yscale("log")
    ax.set_title(f"CPU backends and peers on {result['environment']['cpu']}" if "environment" in result else "CPU backends")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def label(backend: str, precision: str, optimize_for_inference: bool = False) -> str:
    """A contender's name: the backend, with the precision when it is not FP32, and
    ``_optimized`` when the engine runs through ``torch.jit.optimize_for_inference``."""
    return (backend if precision == "fp32" else f"{backend}_{precision}") + ("_optimized" if optimize_for_inference else "")


def _bgr(upsample: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray) -> np.ndarray:
    return upsample(np.ascontiguousarray(rgb[:, :, ::-1]))


def _peers(scale: int, notes: dict[str, str]) -> dict[str, Callable[[np.ndarray], object]]:
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
        peers[f"opencv_{name}"] = functools.partial(_bgr, model.upsample)
    return peers


if __name__ == "__main__":
    raise SystemExit(main())
