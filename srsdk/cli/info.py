"""Show the network for a scale: parameters, MACs per LR pixel, receptive radius, weights.

The receptive radius is measured by impulse response, not declared.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scale", type=int, action="append", choices=(2, 3, 4), help="default: all, or the scale of --weights"
    )
    parser.add_argument("--weights", type=Path, help="a weights file (default: the shipped weights)")


def run(args: argparse.Namespace) -> int:
    from srsdk.cli._common import load_deploy_net
    from srsdk.model import cost, receptive_radius
    from srsdk.pretrained import load_weights

    scales = sorted(set(args.scale)) if args.scale else ([load_weights(args.weights).arch.scale] if args.weights else [2, 3, 4])
    rows = []
    for scale in scales:
        net, weights, sha = load_deploy_net(scale, args.weights, "cpu")
        params, macs = cost(net)
        rows.append(
            {
                "scale": scale,
                "parameters": params,
                "macs_per_lr_pixel": macs,
                "receptive_radius_lr_px": receptive_radius(net),
                "architecture": net.arch.to_dict(),
                "weights": weights,
                "weights_sha256": sha,
            }
        )
    print(json.dumps(rows, indent=2))
    return 0
