"""The contextualized multi-task super-resolution network.

After Shi et al., *Structure-Preserving Image Super-resolution via Contextualized
Multi-task Learning* (IEEE TMM 2017): convolutional features are taken from the
low-resolution (LR) image, **one learned deconvolution** upsamples the feature maps
by the scale, and two branches work on the high-resolution (HR) feature maps:

* the image branch predicts the HR image and a salient-boundary map;
* the residual branch predicts the residual between the image branch's HR image
  and the ground truth.

The deployed output is image + residual. :class:`SPNet` is the training graph (all
three heads); :class:`DeployNet` is the inference graph, with the boundary head
dropped and the two branches folded into one pair of convolutions, which is
numerically the same image + residual.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

SCALES = (2, 3, 4)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Architecture:
    """Hyper-parameters that decide the network's shape (stored with its weights)."""

    scale: int = 2
    """Upscaling factor, one of 2, 3, 4."""
    features: int = 32
    """Channels of the 5x5 feature-extraction convolution on the LR image."""
    trunk: int = 24
    """Channels of the LR trunk after the 1x1 shrink."""
    trunk_layers: int = 4
    """3x3 convolutions in the LR trunk."""
    hr_features: int = 8
    """Channels the deconvolution produces at HR size (HR cost grows with scale^2)."""
    branch: int = 8
    """Hidden channels of each HR branch."""

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale}")
        for name in ("features", "trunk", "trunk_layers", "hr_features", "branch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def default(cls, scale: int) -> Architecture:
        """The architecture srsdk ships for ``scale``."""
        return cls(scale=scale)

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _deconv_geometry(scale: int) -> tuple[int, int]:
    """Kernel and padding of a stride-``scale`` deconvolution whose output is exactly
    ``scale`` times its input, symmetric, with every HR pixel fed by two LR pixels
    per axis."""
    padding = math.ceil(scale / 2)
    return scale + 2 * padding, padding


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class _Trunk(nn.Module):
    """LR feature extraction and the learned deconvolution: ``(N,3,H,W) -> (N,F,sH,sW)``."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.extract = _conv(3, arch.features, 5)
        self.extract_act = nn.PReLU(arch.features)
        self.shrink = _conv(arch.features, arch.trunk, 1)
        self.shrink_act = nn.PReLU(arch.trunk)
        layers: list[nn.Module] = []
        for _ in range(arch.trunk_layers):
            layers += [_conv(arch.trunk, arch.trunk, 3), nn.PReLU(arch.trunk)]
        self.body = nn.Sequential(*layers)
        kernel, padding = _deconv_geometry(arch.scale)
        self.deconv = nn.ConvTranspose2d(
            arch.trunk, arch.hr_features, kernel, stride=arch.scale, padding=padding
        )
        self.deconv_act = nn.PReLU(arch.hr_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.shrink_act(self.shrink(self.extract_act(self.extract(x))))
        f = f + self.body(f)
        return self.deconv_act(self.deconv(f))


class TrainingOutput(NamedTuple):
    """What the training graph returns; every tensor is at HR size."""

    image: torch.Tensor
    """Image branch: HR RGB image, ``(N,3,sH,sW)`` (bicubic skip included)."""
    boundary: torch.Tensor
    """Image branch: salient-boundary logits, ``(N,1,sH,sW)``."""
    residual: torch.Tensor
    """Residual branch: predicted ground truth minus ``image``, ``(N,3,sH,sW)``."""


class SPNet(nn.Module):
    """Training graph: LR RGB in ``[0,1]`` ``(N,3,H,W)`` -> :class:`TrainingOutput`.

    Any ``H, W >= 1``; every output is exactly ``(scale*H, scale*W)``.

    The image branch adds its prediction to a bicubic upsampling of the input (a fresh
    network starts at bicubic quality) and predicts salient-boundary logits from the same
    hidden layer. The residual branch is *contextualized*: it sees the HR feature maps
    together with the image branch's HR image and boundary probabilities, and predicts
    what that image still misses. (A residual branch that saw only the shared feature
    maps learned nothing: the image branch already minimises the same error from the same
    features.)
    """

    def __init__(self, *, arch: Architecture | None = None) -> None:
        super().__init__()
        self.arch = arch if arch is not None else Architecture()
        a = self.arch
        self.scale = a.scale
        self.trunk = _Trunk(a)
        self.image_hidden = _conv(a.hr_features, a.branch, 3)
        self.image_act = nn.PReLU(a.branch)
        self.image_heads = _conv(a.branch, 3 + 1, 3)
        """Output channels 0-2: the image (over bicubic); channel 3: boundary logits."""
        self.residual_hidden = _conv(a.hr_features + 3 + 1, a.branch, 3)
        self.residual_act = nn.PReLU(a.branch)
        self.residual_out = _conv(a.branch, 3, 3)
        for head in (self.image_heads, self.residual_out):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)  # type: ignore[arg-type]

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(image, boundary logits, residual)`` for LR ``x``."""
        features = self.trunk(x)
        heads = self.image_heads(self.image_act(self.image_hidden(features)))
        image = _bicubic(x, self.scale) + heads[:, :3]
        boundary = heads[:, 3:]
        context = torch.cat([features, image, torch.sigmoid(boundary)], 1)
        residual = self.residual_out(self.residual_act(self.residual_hidden(context)))
        return image, boundary, residual

    def forward(self, x: torch.Tensor) -> TrainingOutput:
        image, boundary, residual = self.branches(x)
        return TrainingOutput(image=image, boundary=boundary, residual=residual)

    def deploy(self) -> DeployNet:
        """The inference graph with these weights (a new module; ``self`` is untouched)."""
        deploy = DeployNet(arch=self.arch)
        deploy.load_state_dict(self.state_dict())
        return deploy.to(next(self.parameters()).device).eval()


class DeployNet(SPNet):
    """Inference graph: LR RGB ``(N,3,H,W)`` in ``[0,1]`` -> HR RGB ``(N,3,sH,sW)``.

    The same layers and weights as :class:`SPNet`, returning only ``image + residual``
    (not clamped). The boundary map is still computed, as the residual branch's context,
    but is not an output. Scriptable with ``torch.jit.script`` and exportable with dynamic
    batch, H and W.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        image, _, residual = self.branches(x)
        return image + residual


def _bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    # An explicit size (not scale_factor) keeps torch.export's shape guards integral.
    size = [x.shape[2] * scale, x.shape[3] * scale]
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


class Cost(NamedTuple):
    """Size and compute of a network."""

    parameters: int
    macs_per_lr_pixel: int
    """Multiply-accumulates of the convolutions per LR input pixel (bicubic skip excluded)."""


def cost(net: nn.Module) -> Cost:
    """Count parameters and per-LR-pixel MACs by running ``net`` once on a 16x16 input."""
    macs = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal macs
        assert isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))
        k = module.kernel_size[0] * module.kernel_size[1]
        per_group_in = module.in_channels // module.groups
        if isinstance(module, nn.ConvTranspose2d):
            macs += inputs[0].numel() * module.out_channels // module.groups * k
        else:
            macs += output.numel() * per_group_in * k

    hooks = [
        m.register_forward_hook(count)
        for m in net.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    try:
        param = next(net.parameters())
        with torch.no_grad():
            net(torch.zeros(1, 3, 16, 16, dtype=param.dtype, device=param.device))
    finally:
        for h in hooks:
            h.remove()
    return Cost(sum(p.numel() for p in net.parameters()), macs // 256)


def receptive_radius(net: DeployNet, *, size: int = 48) -> int:
    """Measure, by impulse response, how far (in LR pixels) an output depends on its input.

    Perturbing one LR pixel and seeing which HR pixels move is the same as asking which LR
    pixels carry gradient into one HR pixel; this does the latter for every sub-pixel phase
    of an output pixel in the middle of a ``size`` x ``size`` input, in float64 on a copy of
    ``net``. The result ``r`` means: HR pixel ``(y, x)`` depends only on LR pixels within
    ``r`` of ``(y // scale, x // scale)`` in both axes, which is the halo tiling needs.
    """
    probe = DeployNet(arch=net.arch).double()
    probe.load_state_dict(net.state_dict())
    s = net.arch.scale
    centre = size // 2
    radius = 0
    for phase in range(s):
        x = torch.rand(1, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(phase))
        x.requires_grad_(True)
        y = probe(x)
        y[0, :, centre * s + phase, centre * s + phase].sum().backward()
        assert x.grad is not None
        rows, cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1)), as_tuple=True)
        reach = torch.cat([rows - centre, cols - centre]).abs().max().item()
        if max(rows.max().item(), cols.max().item()) >= size - 1 or min(rows.min().item(), cols.min().item()) <= 0:
            raise ValueError(f"receptive field reaches the {size}-pixel probe's border; use a larger size")
        radius = max(radius, int(reach))
    return radius
