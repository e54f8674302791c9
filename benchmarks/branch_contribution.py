"""What the residual branch adds: PSNR-Y of the image branch alone against image + residual.

    python benchmarks/branch_contribution.py --weights A.safetensors B.safetensors \\
        --json benchmarks/results/branch-contribution-x2.json DIR [DIR ...]

For each weights file and folder, the evaluation protocol of ``srsdk eval`` (bicubic LR,
BT.601 luma, ``scale`` pixels shaved) scores two outputs of the same forward pass: the
image branch's HR image (bicubic skip included) and the deployed output, image +
residual. A multi-task network whose image branch is trained to be the HR image on its own
leaves little for the residual; a single-task network uses the image branch as an
intermediate and the residual carries the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from srsdk.evaluate import evaluate
from srsdk.pretrained import load_weights, read_metadata, sha256


def _upscaler(net: torch.nn.Module, output: str):  # type: ignore[no-untyped-def]
    def upscale(lr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.array(lr)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            image, _, residual = net.branches(x)
        y = image if output == "image" else image + residual
        return (y[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    return upscale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("--weights", nargs="+", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    results = []
    for path in args.weights:
        net = load_weights(path)
        entry: dict[str, object] = {
            "weights": str(path),
            "weights_sha256": sha256(path),
            "architecture": net.arch.to_dict(),
            "training": json.loads(read_metadata(path).get("training", "{}")),
        }
        for output in ("image", "final"):
            report = evaluate(args.folders, scale=net.arch.scale, upscale=_upscaler(net, output))
            entry[output] = {name: d["psnr_y"] for name, d in report.datasets.items()}
        gain = {k: round(entry["final"][k] - entry["image"][k], 4) for k in entry["final"]}  # type: ignore[index]
        entry["residual_gain_db"] = gain
        results.append(entry)
        print(f"{path}: image branch {entry['image']}, image + residual {entry['final']}, gain {gain}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
