"""OpenCV's FSRCNN and ESPCN peers scored exactly as srsdk is scored (``srsdk eval``'s protocol).

    python benchmarks/peers_quality.py --json benchmarks/results/eval-peers-x2.json

Same HR crops, same bicubic (antialiased) degradation, same BT.601-luma PSNR / SSIM / GMSD
with ``scale`` pixels shaved, on ../shared/data/eval/{set5,set14,bsd100}. The peers upscale
luma with their network and chroma bicubically (that is how ``cv2.dnn_superres`` works).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report
from backends import PEERS, SHARED

from srsdk.evaluate import evaluate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    parser.add_argument("--sets", default="set5,set14,bsd100")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import cv2

    folders = [SHARED / "data" / "eval" / name for name in args.sets.split(",")]
    result: dict[str, object] = {"benchmark": "peers_quality", "scale": args.scale, "models": {}}
    for name, file in (("fsrcnn", f"FSRCNN_x{args.scale}.pb"), ("espcn", f"ESPCN_x{args.scale}.pb")):
        model = cv2.dnn_superres.DnnSuperResImpl_create()
        model.readModel(str(PEERS / file))
        model.setModel(name, args.scale)

        def upscale(lr: np.ndarray, model=model) -> np.ndarray:  # type: ignore[no-untyped-def]
            return np.ascontiguousarray(model.upsample(np.ascontiguousarray(lr[:, :, ::-1]))[:, :, ::-1])

        scored = evaluate(folders, scale=args.scale, upscale=upscale)
        result["models"][f"opencv_{name}"] = scored.datasets  # type: ignore[index]
        print(name, {k: v["psnr_y"] for k, v in scored.datasets.items()}, file=sys.stderr)
    return report(result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
