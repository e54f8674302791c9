"""Helpers the command modules share."""

from __future__ import annotations

from pathlib import Path

from srsdk.errors import InputError
from srsdk.model import DeployNet


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; other names are checked."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise InputError(f"unknown device {name!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but torch sees no CUDA GPU")
    return name


def load_deploy_net(scale: int, weights: Path | None, device: str) -> tuple[DeployNet, str, str]:
    """The deploy graph for ``scale`` on ``device``, its weights' path and sha256."""
    from srsdk import pretrained

    if weights is None:
        entry = pretrained.manifest()["weights"].get(str(scale), {})
        path = pretrained.WEIGHTS_DIR / entry.get("file", f"srsdk_x{scale}.safetensors")
        net = pretrained.load_pretrained(scale)
        label = f"srsdk/weights/{path.name}"
    else:
        path = weights
        net = pretrained.load_weights(weights, scale=scale)
        label = str(weights)
    return net.deploy().to(resolve_device(device)), label, pretrained.sha256(path)
