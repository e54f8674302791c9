"""``srsdk bench``: per-frame latency and throughput of what users deploy, against the floor
(bicubic on the same device) and the ceiling (the roofline bound), in one run.

For each frame size: (a) the bare engine on device tensors, (b) the :class:`Upscaler` from
host uint8 frames to host uint8 frames, (c) the Upscaler streaming, and bicubic upsampling
with ``torch.nn.functional.interpolate`` on the same device. Warm-up calls are not timed;
CUDA calls are bracketed by CUDA events and synchronised inside the timed region.
"""

from __future__ import annotations

import functools
import itertools
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from srsdk import roofline
from srsdk._version import __version__
from srsdk.errors import InputError
from srsdk.io.atomic import atomic_output
from srsdk.upscaler import Upscaler

WARMUP = 2


def samples(run: Callable[[], object], count: int, *, cuda: bool, warmup: int = WARMUP) -> list[float]:
    """Milliseconds of ``count`` timed calls of ``run`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(count):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def summary(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99 latency (ms), spread, and throughput (fps at the median)."""
    p25, p50, p75, p95, p99 = np.percentile(samples_ms, [25, 50, 75, 95, 99])
    return {
        "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
        "p25_ms": float(p25), "p75_ms": float(p75), "fps": 1e3 / float(p50), "runs": len(samples_ms),
    }  # fmt: skip


def _frames(width: int, height: int, count: int) -> list[np.ndarray]:
    """Distinct natural-looking frames: smooth gradients plus noise, deterministic."""
    rng = np.random.default_rng(width * height)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 200
    return [np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def bench(
    upscaler: Upscaler,
    sizes: list[tuple[int, int]],
    *,
    frames: int = 20,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time ``upscaler`` at each ``(width, height)``; see the module docstring."""
    say = log or (lambda _: None)
    runner = upscaler._runner
    limit = runner.max_shape
    for width, height in sizes:  # the bare engine is timed on whole frames
        if limit is not None and (height > limit[0] or width > limit[1]):
            raise InputError(
                f"--sizes {width}x{height}: larger than the engine's largest input {limit[1]}x{limit[0]} (WxH), so "
                "its bare time cannot be measured; build an engine with a larger --max"
            )
    device = runner.device
    cuda = device.type == "cuda"
    # The learned layers' arithmetic and activations are 16-bit in FP16 and BF16 engines.
    compute = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(runner.precision, torch.float32)
    bytes_per_element = {"fp16": 2, "bf16": 2, "int8": 1}.get(runner.precision, 4)
    if cuda:
        name = torch.cuda.get_device_name(device)
        peaks = roofline.gpu_peaks(name, runner.precision)
        peak_source = f"datasheet ({name}, dense {runner.precision.upper()}" + (
            " as TF32)" if runner.precision == "fp32" else ")"
        ) if peaks else f"unknown GPU {name}"
    else:
        peaks = roofline.measure_cpu_peaks(compute)
        kind = "BF16" if compute == torch.bfloat16 else "FP32"
        peak_source = f"measured on this CPU: 1024x1024 {kind} matmul and a 64 MB copy"
    from srsdk.model import DeployNet

    arch = upscaler._runner.architecture
    shape_net = None if arch is None else DeployNet(arch=arch)
    results: dict[str, Any] = {}
    for width, height in sizes:
        label = f"{width}x{height}"
        entry = _measure(upscaler, width, height, frames)
        say(f"{label}: bare engine {entry['bare_engine']['p50_ms']:.1f} ms, Upscaler {entry['upscaler']['p50_ms']:.1f} ms")
        if peaks is not None and shape_net is not None:
            found = roofline.layers(shape_net, height, width, bytes_per_element=bytes_per_element)
            bound = roofline.bound_seconds(found, flops_per_s=peaks[0], bytes_per_s=peaks[1])
            transfer = (1 + upscaler.scale**2) * width * height * 3 / roofline.PCIE_BYTES_PER_S if cuda else 0.0
            entry["roofline"] = {
                "macs": sum(layer.macs for layer in found),
                "bytes": sum(layer.bytes for layer in found),
                "bound_ms": bound * 1e3,
                "bound_fps": 1 / bound,
                "host_bound_ms": (bound + transfer) * 1e3,
                "bare_engine_fraction_of_bound": bound * 1e3 / entry["bare_engine"]["p50_ms"],
                "stream_fraction_of_host_bound": (bound + transfer) * 1e3 / entry["stream"]["mean_ms_per_frame"],
            }
        results[label] = entry
    return {
        "device": str(device),
        "runner": type(runner).__name__,
        "backend": runner.backend,
        "precision": runner.precision,
        "scale": upscaler.scale,
        "architecture": None if arch is None else arch.to_dict(),
        "frames_per_measurement": frames,
        "warmup": WARMUP,
        "peaks": None if peaks is None else {"flops_per_s": peaks[0], "bytes_per_s": peaks[1], "source": peak_source},
        "sizes": results,
    }


def _measure(upscaler: Upscaler, width: int, height: int, frames: int) -> dict[str, Any]:
    runner = upscaler._runner
    cuda = runner.device.type == "cuda"
    host = _frames(width, height, max(2, min(frames, 8)))
    cycle = itertools.cycle(host)
    x = torch.from_numpy(host[0].copy()).permute(2, 0, 1)[None].to(runner.device, runner.dtype).div_(255).contiguous()  # NCHW, as the Upscaler feeds it (.to keeps channels-last strides)
    entry: dict[str, Any] = {}
    with torch.inference_mode():
        entry["bare_engine"] = summary(samples(functools.partial(runner, x), frames, cuda=cuda))
        bicubic = functools.partial(F.interpolate, x, scale_factor=upscaler.scale, mode="bicubic", align_corners=False)
        entry["bicubic"] = summary(samples(bicubic, frames, cuda=cuda))
    entry["upscaler"] = summary(samples(lambda: upscaler(next(cycle)), frames, cuda=False))
    sequence = [next(cycle) for _ in range(frames)]
    started = time.perf_counter()
    count = sum(1 for _ in upscaler.stream(iter(sequence)))
    per_frame = (time.perf_counter() - started) * 1e3 / count
    entry["stream"] = {"mean_ms_per_frame": per_frame, "fps": 1e3 / per_frame, "frames": count}
    return entry


def plot(result: dict[str, Any], path: Path) -> None:
    """Latency (p50) against frame size for each measured path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(result["sizes"])
    pixels = [int(w) * int(h) / 1e6 for w, h in (label.split("x") for label in labels)]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for key, name in (("bare_engine", "bare engine"), ("upscaler", "Upscaler, host uint8"), ("bicubic", "bicubic")):
        ax.plot(pixels, [result["sizes"][label][key]["p50_ms"] for label in labels], marker="o", label=name)
    ax.plot(pixels, [result["sizes"][label]["stream"]["mean_ms_per_frame"] for label in labels], marker="o",
            label="Upscaler, streaming")  # fmt: skip
    if all("roofline" in result["sizes"][label] for label in labels):
        ax.plot(pixels, [result["sizes"][label]["roofline"]["bound_ms"] for label in labels], ls="--",
                label="roofline bound")  # fmt: skip
    ax.set_xlabel("input megapixels")
    ax.set_ylabel("ms per frame (p50)")
    ax.set_yscale("log")
    ax.set_title(f"srsdk x{result['scale']} on {result['environment'].get('gpu', result['environment']['cpu'])}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower() or "png")
    plt.close(fig)


def _git_commit(root: Path) -> tuple[str, bool]:
    """HEAD of the checkout at root and whether files outside benchmarks/results differ from
    it; "unknown" where root is not a checkout's top (srsdk installed into a virtualenv that
    lies inside some other git project, whose commit says nothing about srsdk)."""
    try:
        top = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if Path(top).resolve() != root.resolve():
            return "unknown", False
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--", ".", ":!benchmarks/results"], capture_output=True, text=True, check=True
            ).stdout
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, dirty


def environment() -> dict[str, Any]:
    """Machine, versions and commit, for the JSON every benchmark writes."""
    root = Path(__file__).resolve().parent.parent  # the checkout, when srsdk runs from one
    if commit := os.environ.get("SRSDK_GIT_COMMIT", ""):  # a copied tree whose .git is stale (make gpu-check)
        dirty = False
    else:
        commit, dirty = _git_commit(root)
    info: dict[str, Any] = {
        "srsdk": __version__,
        "git_commit": commit + ("+dirty" if dirty else ""),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "thp_mem_alloc_enable": os.environ.get("THP_MEM_ALLOC_ENABLE"),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda}
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
