"""The Torch-TensorRT build (dynamo path), FP32/FP16/INT8. Imported only to build.

Written against Torch-TensorRT 2.9-2.14 as documented (../shared/research/deployment-notes.md):
2.10+ is strongly typed, so FP16 means a half model with half inputs (``enabled_precisions``
is rejected or ignored there and is passed only to older versions); INT8 is NVIDIA
ModelOpt post-training quantisation (Q/DQ nodes) compiled the same way. The result is saved
as TorchScript so :func:`srsdk.load_engine` serves every backend with one loader.
TensorRT cannot be installed on the machines this was written on: this module has not run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from srsdk import _features
from srsdk.engine.calibration import calibration_batches
from srsdk.engine.config import MAX_BATCH, Backend, BuildConfig, Precision
from srsdk.errors import EngineBuildError
from srsdk.model import DeployNet


def _strongly_typed() -> bool:
    """Torch-TensorRT 2.10+ types the graph strictly (FP16 = a half model and half inputs)."""
    import re

    found = _features.version("torch-tensorrt") or _features.version("torch_tensorrt") or ""
    match = re.match(r"(\d+)\.(\d+)", found)
    return match is None or (int(match[1]), int(match[2])) >= (2, 10)


def quantize_int8(net: DeployNet, config: BuildConfig, device: str) -> torch.nn.Module:
    """ModelOpt INT8 (per-channel weights, per-tensor activations), calibrated on real photos."""
    try:
        import modelopt.torch.quantization as mtq
    except ImportError as e:
        raise EngineBuildError("--int8 needs NVIDIA ModelOpt: pip install nvidia-modelopt") from e
    batches = [b.to(device) for b in calibration_batches(
        config.calib, scale=config.scale, count=config.calib_images, profile=config.profile
    )]  # fmt: skip

    def forward_loop(model: torch.nn.Module) -> None:
        with torch.no_grad():
            for batch in batches:
                model(batch)

    return mtq.quantize(net, mtq.INT8_DEFAULT_CFG, forward_loop)


def build(net: DeployNet, config: BuildConfig, path: Path, device: str) -> None:
    """Compile ``net`` for ``config`` and save it at ``path`` (TorchScript container)."""
    try:
        import torch_tensorrt
    except ImportError as e:
        raise EngineBuildError("--backend tensorrt needs Torch-TensorRT and TensorRT: pip install 'srsdk[trt]'") from e
    features = getattr(torch_tensorrt, "ENABLED_FEATURES", None)
    if features is not None and not getattr(features, "torch_tensorrt_runtime", True):
        # Checked before a build of minutes: the engine is saved as TorchScript, which only
        # loads with the C++ runtime (libtorchtrt), missing from some wheels (deployment notes).
        raise EngineBuildError(
            "this Torch-TensorRT has no C++ runtime (libtorchtrt), which TorchScript engines need to load; "
            "install the PyPI torch-tensorrt wheel"
        )
    half = config.precision == Precision.FP16
    dtype = torch.float16 if half else torch.float32
    module: torch.nn.Module = net.to(device, dtype).eval()
    p = config.profile
    inputs = [
        torch_tensorrt.Input(
            min_shape=(1, 3, *p.min), opt_shape=(1, 3, *p.opt), max_shape=(MAX_BATCH[Backend.TENSORRT], 3, *p.max),
            dtype=dtype, name="lr",
        )
    ]
    settings: dict[str, object] = {"min_block_size": 1}
    if not _strongly_typed():  # weakly typed (2.9 and before): the precisions TensorRT may pick
        if half:
            settings["enabled_precisions"] = {torch.half}
        elif config.precision == Precision.INT8:  # ModelOpt's Q/DQ nodes need INT8 kernels allowed
            settings["enabled_precisions"] = {torch.float32, torch.int8}
    example = torch.rand(1, 3, *p.opt, device=device, dtype=dtype)
    if config.precision == Precision.INT8:
        from modelopt.torch.quantization.utils import export_torch_mode

        module = quantize_int8(net, config, device)
        with export_torch_mode():
            compiled = torch_tensorrt.compile(module, ir="dynamo", inputs=inputs, **settings)
            torch_tensorrt.save(compiled, str(path), output_format="torchscript", arg_inputs=[example])
        return
    compiled = torch_tensorrt.compile(module, ir="dynamo", inputs=inputs, **settings)
    torch_tensorrt.save(compiled, str(path), output_format="torchscript", arg_inputs=[example])
