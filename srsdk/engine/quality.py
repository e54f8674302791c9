"""The quality gate: an engine is scored on Set5 against the FP32 weights it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srsdk.engine.config import QUALITY_LIMIT_DB, Precision
from srsdk.errors import EngineBuildError
from srsdk.evaluate import Upscale, evaluate
from srsdk.io.image import images_sha256

SET5 = Path("../shared/data/eval/set5")
PACKAGED = Path(__file__).resolve().parent.parent / "assets"


def quality_images(choice: Path | None) -> Path:
    """The folder the gate scores on: ``choice``, else Set5 beside the checkout, else the
    photo the package ships."""
    if choice is not None:
        return choice
    return SET5 if SET5.is_dir() else PACKAGED


def measure(engine: Upscale, reference: Upscale, folder: Path, *, scale: int, precision: Precision) -> dict[str, Any]:
    """PSNR-Y of ``engine`` and ``reference`` on ``folder``; ``passed`` when the engine loses
    at most the limit for its precision."""
    ours = evaluate([folder], scale=scale, upscale=engine).datasets
    theirs = evaluate([folder], scale=scale, upscale=reference).datasets
    if not ours:
        raise EngineBuildError(f"quality gate: no image in {folder} could be scored (unreadable, or too small for x{scale})")
    name = next(iter(ours))
    loss = round(theirs[name]["psnr_y"] - ours[name]["psnr_y"], 4)
    limit = QUALITY_LIMIT_DB[precision]
    return {
        "images": str(folder),
        "images_sha256": images_sha256(folder),
        "n": ours[name]["n"],
        "psnr_y_fp32_weights": theirs[name]["psnr_y"],
        "psnr_y_engine": ours[name]["psnr_y"],
        "loss_db": loss,
        "limit_db": limit,
        "passed": loss <= limit,
    }
