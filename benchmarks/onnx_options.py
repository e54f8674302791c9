"""Two ONNX Runtime choices for the x2 network, each measured against its alternative in one
process, interleaved run by run, on the same 960x540 input:

    python benchmarks/onnx_options.py --json benchmarks/results/onnx-options-cpu.json

* graph optimisation level: ``ORT_ENABLE_ALL`` (adds the NCHWc layout pass) vs
  ``ORT_ENABLE_EXTENDED`` (what srsdk uses);
* PReLU exported as ONNX ``PRelu`` vs as Mul + Max (what srsdk exports; bit-identical).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report

from srsdk.engine import build
from srsdk.pretrained import load_pretrained


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--size", default="960x540", help="input WxH")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    net = load_pretrained(2).deploy()
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        fast, plain = Path(tmp) / "mulmax.onnx", Path(tmp) / "prelu.onnx"
        build._export_onnx(copy.deepcopy(net), fast)
        build._export_onnx(copy.deepcopy(net), plain, max_prelu=False)  # the same export with PReLU left as is
        levels = ort.GraphOptimizationLevel
        variants = {
            "mulmax_extended": (fast, levels.ORT_ENABLE_EXTENDED),
            "mulmax_all": (fast, levels.ORT_ENABLE_ALL),
            "prelu_extended": (plain, levels.ORT_ENABLE_EXTENDED),
            "prelu_all": (plain, levels.ORT_ENABLE_ALL),
        }
        sessions = {}
        for name, (path, level) in variants.items():
            options = ort.SessionOptions()
            options.graph_optimization_level = level
            sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            sessions[name].run(None, {"lr": x})
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.repeats):
            for name, session in sessions.items():
                t0 = time.perf_counter()
                session.run(None, {"lr": x})
                times[name].append((time.perf_counter() - t0) * 1e3)
    median = {name: float(np.median(v)) for name, v in times.items()}
    result = {
        "benchmark": "onnx_options",
        "input": [height, width],
        "median_ms": median,
        "extended_vs_all": median["mulmax_extended"] / median["mulmax_all"],
        "mulmax_vs_prelu": median["mulmax_extended"] / median["prelu_extended"],
    }
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
