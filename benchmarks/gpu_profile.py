"""Where the x2 FP16 frame time goes on a GPU, and what might win it back.

    python benchmarks/gpu_profile.py --json benchmarks/results/gpu-profile-x2-fp16.json

On a 1920x1080 input: eager and TorchScript FP16, NCHW and channels-last, timed with CUDA
events (``*_ms``), and the CUDA kernels of five eager frames in each layout by CUDA time
(``profile_*``, torch.profiler's table). Then the candidates the first profile suggested
(36 % of the time in cuDNN layout transposes, 25 % in element-wise kernels), each in the
same process: eager with ``cudnn.benchmark`` (``benchmark_*_ms``), and ``torch.compile``
(Inductor, which fuses PReLU and the adds into neighbouring kernels; ``compile_*_ms``, or
``compile_*_error`` where it cannot run). Needs a CUDA GPU (``make gpu-check`` runs it).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch

from srsdk.model import DeployNet
from srsdk.pretrained import load_pretrained


def timed(run: Callable[[], object], repeats: int = 30) -> float:
    """Mean ms per call between CUDA events, after five untimed calls."""
    for _ in range(5):
        run()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        run()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def kernels(run: Callable[[], object]) -> str:
    """torch.profiler's table of the CUDA kernels of five calls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA], acc_events=True) as found:  # one cycle; no warning
        for _ in range(5):
            run()
        torch.cuda.synchronize()
    return str(found.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))


def fp16(channels_last: bool) -> DeployNet:
    net = load_pretrained(2).deploy().cuda().half().eval()
    return net.to(memory_format=torch.channels_last) if channels_last else net  # type: ignore[call-overload,no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    x = torch.rand(1, 3, 1080, 1920, device="cuda").half()
    inputs = {"nchw": x, "channels_last": x.contiguous(memory_format=torch.channels_last)}
    out: dict[str, object] = {}
    with torch.inference_mode():
        for layout, frame in inputs.items():
            net = fp16(layout == "channels_last")
            scripted = torch.jit.freeze(torch.jit.script(fp16(layout == "channels_last")))
            out[f"eager_{layout}_ms"] = timed(lambda net=net, frame=frame: net(frame))
            out[f"torchscript_{layout}_ms"] = timed(lambda s=scripted, frame=frame: s(frame))
            out[f"profile_{layout}"] = kernels(lambda net=net, frame=frame: net(frame))
        torch.backends.cudnn.benchmark = True  # after the baselines above: it is process-wide
        for layout, frame in inputs.items():
            net = fp16(layout == "channels_last")
            out[f"benchmark_{layout}_ms"] = timed(lambda net=net, frame=frame: net(frame))
        for layout, frame in inputs.items():
            try:
                compiled = torch.compile(fp16(layout == "channels_last"), dynamic=False)
                out[f"compile_{layout}_ms"] = timed(lambda c=compiled, frame=frame: c(frame))
            except Exception as e:  # noqa: BLE001  (Inductor needs Triton and a host compiler: record why not)
                out[f"compile_{layout}_error"] = f"{type(e).__name__}: {e}"[:500]
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print({k: round(v, 3) for k, v in out.items() if isinstance(v, float)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
