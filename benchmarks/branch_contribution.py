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
import functools
import json
import sys
from pathlib import Path

import torch

from srsdk.evaluate import evaluate
from srsdk.inference import upscale_array
from srsdk.model import DeployNet
from srsdk.pretrained import load_weights, read_metadata, sha256


class ImageBranch(DeployNet):
    """The deploy graph's image branch alone (bicubic skip included): no residual."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.branches(x)[0]


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
        image_only = ImageBranch(arch=net.arch)
        image_only.load_state_dict(net.state_dict())
        for output, graph in (("image", image_only.eval()), ("final", net.deploy())):
            report = evaluate(args.folders, scale=net.arch.scale, upscale=functools.partial(upscale_array, graph))
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
