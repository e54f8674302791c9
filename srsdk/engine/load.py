"""Loading a built engine: manifest first, then the file; no compiler is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from srsdk.engine import manifest
from srsdk.engine.config import CPU_ONLY, MAX_BATCH, Backend, Precision, ShapeProfile
from srsdk.errors import EngineMismatchError, InputError, ShapeError, check_int, disk_error
from srsdk.model import Architecture


class Engine:
    """A loaded engine: LR RGB ``(N,3,H,W)`` floats in ``[0,1]`` -> HR ``(N,3,sH,sW)``.

    ``H, W`` must lie inside the engine's shape profile. Inputs are moved to the engine's
    device and precision; outputs stay there (float32 for ONNX, the engine's dtype
    otherwise). Not thread-safe: give each thread its own Engine.
    """

    def __init__(self, path: Path, data: dict[str, Any], runner: Any, device: torch.device) -> None:
        self.path = path
        self.manifest = data
        self.scale: int = check_int("scale", data["scale"], allowed=(2, 3, 4))
        self.backend = Backend(data["backend"])
        self.precision = Precision(data["precision"])
        self.profile = ShapeProfile.from_json(data["profile"])
        self.architecture = self._architecture()
        """The network the engine runs, from its manifest; manifests written before they
        recorded it give the shipped architecture when the engine holds the shipped weights,
        else None."""
        if self.architecture is not None and self.architecture.scale != self.scale:
            raise ValueError(f"architecture is for x{self.architecture.scale}, scale is {self.scale}")
        self.receptive_radius: int = self._receptive_radius()
        """The network's receptive radius in LR pixels: the halo that makes tiles exact."""
        self.device = device
        self.dtype = torch.float16 if self.precision == Precision.FP16 else torch.float32
        self._runner = runner

    def _receptive_radius(self) -> int:
        if "receptive_radius" in self.manifest or self.architecture is None:
            return check_int("receptive_radius", self.manifest["receptive_radius"], minimum=0)
        from srsdk.model import DeployNet, receptive_radius

        return receptive_radius(DeployNet(arch=self.architecture))  # manifests from before it was recorded

    def _architecture(self) -> Architecture | None:
        from srsdk.pretrained import manifest as weights_manifest

        if "architecture" in self.manifest:
            return Architecture(**self.manifest["architecture"])
        entry = weights_manifest()["weights"][str(self.scale)]
        if self.manifest.get("weights_sha256") == entry["sha256"]:
            return Architecture(**entry["architecture"])
        return None

    def __repr__(self) -> str:
        return f"Engine({str(self.path)!r}, x{self.scale}, {self.backend.value}, {self.precision.value}, {self.device})"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run the engine on a batch: ``(N, 3, H, W)`` floats in ``[0, 1]`` -> ``(N, 3, sH, sW)``.
        For uint8 images, :meth:`upscale`."""
        if not isinstance(x, torch.Tensor):
            raise ShapeError(f"engine input: expected a torch.Tensor (N, 3, H, W); got {type(x).__name__} (upscale() takes uint8 arrays)")
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] < 1:
            raise ShapeError(f"engine input: expected (N, 3, H, W) with N >= 1, got {tuple(x.shape)}")
        if x.shape[0] > MAX_BATCH.get(self.backend, x.shape[0]):
            raise ShapeError(
                f"engine input: a batch of {x.shape[0]}, but {self.backend.value} engines take at most "
                f"{MAX_BATCH[self.backend]} (split it)"
            )
        if not self.profile.accepts(x.shape[2], x.shape[3]):
            raise ShapeError(
                f"engine input: {x.shape[2]}x{x.shape[3]} is outside the engine's profile "
                f"{self.profile.min[0]}x{self.profile.min[1]} .. {self.profile.max[0]}x{self.profile.max[1]} (HxW)"
            )
        if self.backend == Backend.ONNX:
            (array,) = self._runner.run(None, {"lr": x.detach().float().cpu().numpy()})
            out = torch.from_numpy(array)
        else:
            with torch.inference_mode():
                x = x.to(self.device, self.dtype)
                # AOTInductor's kernels are compiled for the contiguous layout the export saw.
                out = self._runner(x.contiguous() if self.backend == Backend.AOTI else x)
        expected = (x.shape[0], 3, x.shape[2] * self.scale, x.shape[3] * self.scale)
        if tuple(out.shape) != expected:  # a manifest that is not this engine's (edited, or copied)
            raise EngineMismatchError(
                f"{self.path}: gave {tuple(out.shape)} for {tuple(x.shape)}, not the x{self.scale} its manifest says"
            )
        return out

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 ``HxWx3`` RGB -> uint8 ``(sH)x(sW)x3``, rounded as :func:`srsdk.inference.upscale_array`.

        Images larger than the profile's maximum run as tiles of that size with the
        network's receptive radius as halo (the same result; see :mod:`srsdk.tiling`).
        """
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
            raise ShapeError(f"expected a non-empty HxWx3 uint8 array, got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        if not self.profile.accepts(height, width) and height >= self.profile.min[0] and width >= self.profile.min[1]:
            from srsdk import tiling

            plan = tiling.plan_tiles(height, width, tile=self.profile.max, halo=self.receptive_radius)
            tiles = torch.from_numpy(tiling.pack(rgb, plan))
            with torch.inference_mode():
                outputs = torch.cat([self(tiles[i : i + 1]).float().cpu() for i in range(len(plan))])
            return tiling.blend(outputs, plan, scale=self.scale).numpy()
        x = torch.from_numpy(np.require(rgb, requirements=["C", "W"])).permute(2, 0, 1)[None].float().div(255)
        with torch.inference_mode():
            y = self(x)[0].float()
            return y.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _torch_device(device: str | torch.device | int) -> torch.device:
    """``device`` as a CPU or CUDA ``torch.device``, else :class:`InputError`."""
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}") from e
    if target.type not in ("cpu", "cuda"):
        raise InputError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return target


def open_engine(path: Path, data: dict[str, Any], device: str | torch.device | None = None) -> Engine:
    """Load ``path`` as described by ``data`` without checking them against each other."""
    backend = Backend(data["backend"])
    if device is None:
        device = "cpu" if data.get("device", "cpu") == "cpu" or not torch.cuda.is_available() else "cuda"
    target = _torch_device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device: {device!r} asked for, but torch sees no CUDA GPU")
    if target.type == "cuda" and backend in CPU_ONLY:
        raise InputError(f"device: {device!r} asked for, but {backend.value} engines run on the CPU")
    if target.type == "cpu" and data.get("device") == "cuda":  # TensorRT cannot run there; FP16 would crawl
        raise InputError(f"device: {device!r} asked for, but this engine was built for CUDA")
    try:
        if backend == Backend.ONNX:
            import onnxruntime as ort

            options = ort.SessionOptions()
            # Not ORT_ENABLE_ALL: its NCHWc layout rewrite wraps the activations in reorders and
            # is slower on this network (benchmarks/onnx_options.py, results/onnx-options-cpu.json).
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            runner: Any = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            target = torch.device("cpu")
        elif backend == Backend.AOTI:
            from torch._inductor import aoti_load_package

            with path.open("rb") as f:  # a file object: a build loads it under a temporary name
                runner = aoti_load_package(f)
            target = torch.device("cpu")
        else:
            if backend == Backend.TENSORRT:
                import torch_tensorrt  # noqa: F401 - registers the TensorRT runtime ops TorchScript needs

            runner = torch.jit.load(str(path), map_location=target)
            runner.eval()
            if data.get("optimize_for_inference") and target.type == "cpu":
                runner = torch.jit.optimize_for_inference(runner)
    except ImportError as e:
        extra = "onnx" if backend == Backend.ONNX else "trt"
        raise EngineMismatchError(f"{path}: a {backend.value} engine needs {e.name}: pip install 'srsdk[{extra}]'") from e
    except MemoryError:
        raise
    except Exception as e:  # ONNX Runtime's errors derive from Exception only
        if (disk := disk_error(e)) is not None:  # AOTInductor unpacks its library into a temporary folder
            raise InputError(f"{path}: cannot be loaded: writing its unpacked files failed ({disk.strerror})") from e
        raise EngineMismatchError(f"{path}: cannot be loaded as a {backend.value} engine ({e})") from e
    try:
        return Engine(path, data, runner, target)
    except (KeyError, TypeError, ValueError) as e:
        raise EngineMismatchError(f"{path}: its manifest is damaged ({type(e).__name__}: {e}); rebuild the engine") from e


def load_engine(path: str | Path, *, scale: int | None = None, device: str | torch.device | None = None) -> Engine:
    """Load an engine built by ``srsdk-build-engine``, after checking its manifest.

    Refuses (:class:`~srsdk.errors.EngineMismatchError`, naming the field) an engine whose
    file does not match its recorded sha256, whose format version, scale (when ``scale`` is
    given), torch / Torch-TensorRT / TensorRT versions or GPU differ from this machine's.
    """
    path = Path(path)
    if scale is not None:
        scale = check_int("scale", scale, allowed=(2, 3, 4))
    if device is not None:
        device = str(_torch_device(device))
    data = manifest.read(path)
    manifest.check(data, path, scale=scale, device=device)
    return open_engine(path, data, device)
