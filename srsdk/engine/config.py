"""What decides an engine: :class:`BuildConfig` (shared by the CLI and the Python API)."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

from srsdk.errors import InputError, check_int

ENGINE_DIR = Path("trt/engines")
DEFAULT_CALIBRATION = Path("../shared/data/train/bsds500")


class Precision(str, enum.Enum):
    """The number format an engine computes in."""

    FP32 = "fp32"
    FP16 = "fp16"
    """Half precision on a CUDA GPU."""
    BF16 = "bf16"
    """bfloat16 learned layers on a CPU (TorchScript), float32 input, skip and output; fast
    where the CPU has bfloat16 matrix units (AMX, AVX-512 BF16)."""
    INT8 = "int8"


class Backend(str, enum.Enum):
    """What compiles and runs an engine."""

    AUTO = "auto"
    """TensorRT where torch-tensorrt and a CUDA GPU are present, else TorchScript."""
    TENSORRT = "tensorrt"
    TORCHSCRIPT = "torchscript"
    ONNX = "onnx"
    AOTI = "aoti"
    """AOTInductor: ``torch.export`` compiled ahead of time by Inductor into a ``.pt2``
    package of native code (FP32, CPU). Building needs a C++ compiler; loading needs torch
    only, on a CPU with the vector instructions it was built for."""


CPU_ONLY = (Backend.ONNX, Backend.AOTI)
"""Backends whose engines run on the CPU only (ONNX Runtime's CPU provider; native CPU code)."""

MAX_BATCH = {Backend.TENSORRT: 1, Backend.AOTI: 64}
"""The largest batch an engine of these backends is built for (the others take any)."""

QUALITY_LIMIT_DB = {Precision.FP32: 0.01, Precision.FP16: 0.1, Precision.BF16: 0.1, Precision.INT8: 0.3}
"""Largest PSNR-Y loss on Set5 against the FP32 weights an engine may have without --force."""


def parse_size(text: str, order: str = "HxW") -> tuple[int, int]:
    """``"AxB"`` -> ``(A, B)``; ``order`` (``"HxW"`` or ``"WxH"``) only names the two in errors."""
    example = "540x960" if order == "HxW" else "960x540"
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as e:
        raise InputError(f"expected a size as {order} (e.g. {example}), got {text!r}") from e
    if h < 1 or w < 1:
        raise InputError(f"sizes must be at least 1x1, got {text!r}")
    return h, w


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShapeProfile:
    """LR input sizes ``(H, W)`` an engine accepts: ``min <= opt <= max`` in both axes."""

    min: tuple[int, int] = (16, 16)
    opt: tuple[int, int] = (540, 960)
    max: tuple[int, int] = (1080, 1920)

    def __post_init__(self) -> None:
        for axis, name in ((0, "height"), (1, "width")):
            if not 1 <= self.min[axis] <= self.opt[axis] <= self.max[axis]:
                raise InputError(
                    f"shape profile {name}: expected 1 <= min <= opt <= max, got "
                    f"{self.min[axis]}, {self.opt[axis]}, {self.max[axis]}"
                )

    def accepts(self, height: int, width: int) -> bool:
        """Whether an LR input of ``height`` x ``width`` lies inside the profile."""
        return self.min[0] <= height <= self.max[0] and self.min[1] <= width <= self.max[1]

    def to_json(self) -> dict[str, list[int]]:
        """``{"min": [H, W], "opt": [H, W], "max": [H, W]}``, as manifests record it."""
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_json(cls, data: dict[str, list[int]]) -> ShapeProfile:
        """The profile :meth:`to_json` wrote."""
        return cls(min=tuple(data["min"]), opt=tuple(data["opt"]), max=tuple(data["max"]))  # type: ignore[arg-type]

    def label(self) -> str:
        """``min-opt-max`` as ``HxW`` sizes, for engine file names."""
        return "-".join(f"{h}x{w}" for h, w in (self.min, self.opt, self.max))


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """Everything that decides an engine, and where it goes.

    ``weights=None`` means the shipped weights for ``scale``; ``output=None`` puts the engine
    under ``trt/engines/`` with a name derived from everything that decides it.
    """

    scale: int = 2
    precision: Precision = Precision.FP32
    backend: Backend = Backend.AUTO
    profile: ShapeProfile = dataclasses.field(default_factory=ShapeProfile)
    weights: Path | None = None
    calib: Path = DEFAULT_CALIBRATION
    """INT8 only: folder of real photos to calibrate activation ranges on."""
    calib_images: int = 64
    quality_set: Path | None = None
    """Images for the quality gate; None = ../shared/data/eval/set5, else the packaged image."""
    output: Path | None = None
    directory: Path = ENGINE_DIR
    """Where an engine goes when ``output`` is None (under its derived name)."""
    force: bool = False
    """Keep an engine that fails the quality gate (the loss is still recorded)."""
    optimize_for_inference: bool = False
    """TorchScript FP32 on the CPU only: run the engine through
    ``torch.jit.optimize_for_inference`` when it is loaded (oneDNN convolutions on prepacked
    weights, activations kept in oneDNN's blocked layout between them). The pass's result
    cannot be saved, so the file holds the frozen graph and the manifest asks for the pass."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_int("scale", self.scale, allowed=(2, 3, 4)))
        object.__setattr__(self, "calib_images", check_int("calib_images", self.calib_images, minimum=1))
        for name in ("weights", "calib", "quality_set", "output", "directory"):  # str paths too
            if (value := getattr(self, name)) is not None:
                try:
                    object.__setattr__(self, name, Path(value))
                except TypeError as e:
                    raise InputError(f"{name}: expected a path, got {value!r}") from e
        for name, kind in (("precision", Precision), ("backend", Backend)):
            try:
                object.__setattr__(self, name, kind(getattr(self, name)))
            except ValueError as e:
                raise InputError(f"{name}: expected one of {[k.value for k in kind]}, got {getattr(self, name)!r}") from e
