"""The training recipe as a frozen config (no torch import: the CLI reads its defaults)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Literal, get_args

from srsdk.errors import InputError

ResidualContext = Literal["features", "image_branch"]
"""The values of :attr:`srsdk.model.Architecture.residual_context`."""
RESIDUAL_CONTEXTS: tuple[str, ...] = get_args(ResidualContext)
PixelLoss = Literal["l1", "l2"]
"""The distance of the image, residual and final loss terms (:attr:`TrainConfig.pixel_loss`)."""
PIXEL_LOSSES: tuple[str, ...] = get_args(PixelLoss)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything that decides a training run. Defaults are the first x2 recipe (20k steps
    on the CPU); the shipped weights' recipes are in their manifest and the README."""

    scale: int = 2
    steps: int = 20_000
    batch: int = 16
    patch: int = 48
    """LR patch side in pixels."""
    lr: float = 2e-3
    """Peak Adam learning rate; cosine decay to zero after a short warm-up."""
    warmup: int = 500
    seed: int = 0
    image_weight: float = 1.0
    boundary_weight: float = 0.05
    residual_weight: float = 1.0
    final_weight: float = 1.0
    trunk_layers: int = 4
    """:attr:`srsdk.model.Architecture.trunk_layers` of the network trained."""
    residual_context: ResidualContext = "features"
    """:attr:`srsdk.model.Architecture.residual_context` of the network trained."""
    pixel_loss: PixelLoss = "l1"
    """Distance of the image, residual and final terms: ``"l1"`` (mean absolute error) or
    ``"l2"``, the root of the mean squared error, which PSNR measures; the root keeps its
    gradients on the scale of L1's, so the loss weights keep their balance."""
    boundary_emphasis: float = 0.0
    """Weight each pixel of the image, residual and final terms by ``1 + boundary_emphasis *
    boundary_target`` (a weighted mean): errors on the annotated boundaries count more."""
    chroma_weight: float | None = None
    """Measure the image, residual and final terms in BT.601 luma and colour differences
    (Y, Cb, Cr), with the colour differences weighted this much against luma's 1: PSNR-Y,
    the reported metric, sees luma only. ``None`` (the default) measures them on RGB."""
    single_task: bool = False
    """The ablation baseline: one SR loss on the deployed output (image + residual), no
    boundary and no intermediate supervision; same network, same budget."""
    downscales: tuple[float, ...] = ()
    """Also train on copies of every photo downscaled by these factors, e.g. ``(0.8, 0.6)``
    (:class:`srsdk.data.TrainingSet`)."""
    images: Path = Path("../shared/data/train/bsds500")
    boundaries: Path = Path("../shared/data/train/bsds500_boundaries")
    ema: float = 0.0
    """Decay of an exponential moving average of the weights, updated every step (0: off).
    When on, the saved weights are the average, not the last step's."""
    init: Path | None = None
    """Start from these weights (any scale: layers whose shapes match are copied)."""
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "patch", "trunk_layers"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("image_weight", "boundary_weight", "residual_weight", "final_weight", "boundary_emphasis", "lr"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise InputError(f"{name} must be a finite number >= 0, got {value}")
        if not any(self.loss_weights().values()):
            raise InputError("every loss weight is 0: nothing would be trained")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"seed must be in [0, 2**63), got {self.seed}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        if self.residual_context not in RESIDUAL_CONTEXTS:
            raise InputError(f"residual_context must be features or image_branch, got {self.residual_context!r}")
        if self.pixel_loss not in PIXEL_LOSSES:
            raise InputError(f"pixel_loss must be l1 or l2, got {self.pixel_loss!r}")
        if any(not 0 < f < 1 for f in self.downscales):
            raise InputError(f"downscales must be in (0, 1), got {list(self.downscales)}")
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"ema must be in [0, 1), got {self.ema}")
        if self.chroma_weight is not None and not (math.isfinite(self.chroma_weight) and self.chroma_weight >= 0):
            raise InputError(f"chroma_weight must be a finite number >= 0, got {self.chroma_weight}")
        if self.single_task and self.boundary_emphasis:
            raise InputError("single_task trains without the boundary annotations; boundary_emphasis must be 0")

    def loss_weights(self) -> dict[str, float]:
        """The weight of each loss term (image, boundary, residual, final) this config trains with."""
        if self.single_task:
            return {"image": 0.0, "boundary": 0.0, "residual": 0.0, "final": 1.0}
        return {
            "image": self.image_weight,
            "boundary": self.boundary_weight,
            "residual": self.residual_weight,
            "final": self.final_weight,
        }

    def to_json(self) -> dict[str, object]:
        """The config as a JSON-ready dict (what checkpoints and weights headers record)."""

        def plain(v: object) -> object:
            return str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v

        return {k: plain(v) for k, v in dataclasses.asdict(self).items()}
