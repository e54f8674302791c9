"""The contextualized multi-task super-resolution network.

After Shi et al., *Structure-Preserving Image Super-resolution via Contextualized
Multi-task Learning* (IEEE TMM 2017): convolutional features are taken from the
low-resolution (LR) image, **one learned deconvolution** upsamples the feature maps
by the scale, and two branches work on the high-resolution (HR) feature maps:

* the image branch predicts the HR image and a salient-boundary map;
* the residual branch predicts the residual between the image branch's HR image
  and the ground truth.

The deployed output is image + residual. :class:`SPNet` is the training graph (all
three heads); :class:`DeployNet` is the inference graph: the same layers returning
image + residual.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from srsdk.errors import InputError, WeightsError, check_int

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
    residual_context: Literal["features", "image_branch"] = "features"
    """What the residual branch sees beside the image branch's image and boundary map: the
    deconvolution's HR feature maps (``"features"``, what every shipped file uses), or the
    image branch's hidden layer (``"image_branch"``), which puts the residual one layer
    deeper than the image it corrects, as deep as the path single-task training found
    (``srsdk train --residual-context``). Same shapes and cost either way
    (``hr_features == branch``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_int("scale", self.scale, allowed=SCALES))
        if self.residual_context not in ("features", "image_branch"):
            raise InputError(f"residual_context: expected 'features' or 'image_branch', got {self.residual_context!r}")
        for name in ("features", "trunk", "trunk_layers", "hr_features", "branch"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1))

    @classmethod
    def default(cls, scale: int) -> Architecture:
        """The architecture srsdk ships for ``scale``: at x2 a fifth trunk layer spends the
        40 kMAC/LR-pixel budget's spare 5 kMAC (chosen on held-out photos; the README's
        "Which x2 ships"); x3 and x4, whose HR layers cost more, keep four."""
        return cls(scale=scale, trunk_layers=5 if scale == 2 else 4)

    def to_dict(self) -> dict[str, int | str]:
        """The fields as a JSON-ready dict (what manifests record)."""
        return dataclasses.asdict(self)


def _deconv_geometry(scale: int) -> tuple[int, int]:
    """Kernel and padding of a stride-``scale`` deconvolution whose output is exactly
    ``scale`` times its input, symmetric, with every HR pixel fed by two LR pixels
    per axis."""
    padding = math.ceil(scale / 2)
    return scale + 2 * padding, padding


class Deconv(nn.ConvTranspose2d):
    """The learned deconvolution (a stride-``scale`` transposed convolution), computed as the
    equivalent 3x3 convolution followed by a pixel shuffle.

    Parameters and semantics are :class:`torch.nn.ConvTranspose2d`'s; only the evaluation
    differs. HR pixel ``scale * m + phase`` of a transposed convolution sums LR pixels
    ``m - 1 .. m + 1`` through kernel taps that depend only on ``phase``, so rearranging the
    kernel into ``scale**2`` output phases of a 3x3 convolution gives the same sums (up to
    float rounding). Why: oneDNN evaluates multi-threaded transposed convolutions with a
    work split that depends on the input's size, so one tile and the whole frame came out
    apart by float rounding, which can flip uint8 rounding ties in tiled inference
    (``benchmarks/tiling_exactness.py``); its convolutions
    compute each output pixel the same way at any size, which makes tiling exact. It also
    maps onto TensorRT's fastest kernels (convolution + depth-to-space).
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int) -> None:
        kernel, padding = _deconv_geometry(scale)
        super().__init__(in_channels, out_channels, kernel, stride=scale, padding=padding)
        # taps[phase_y, phase_x, 1 + dy, 1 + dx] = flat kernel index feeding that phase from LR
        # offset (dy, dx), or kernel**2 (a zero) where no tap does.
        taps = torch.full((scale, scale, 3, 3), kernel * kernel, dtype=torch.long)
        for py, px, dy, dx in itertools.product(range(scale), range(scale), (-1, 0, 1), (-1, 0, 1)):
            ky, kx = py + padding - scale * dy, px + padding - scale * dx
            if 0 <= ky < kernel and 0 <= kx < kernel:
                taps[py, px, dy + 1, dx + 1] = ky * kernel + kx
        self.register_buffer("taps", taps.flatten(), persistent=False)

    def subpixel_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The 3x3 convolution's weight ``(out * scale**2, in, 3, 3)`` and bias."""
        s = self.stride[0]
        cin, cout = self.weight.shape[0], self.weight.shape[1]
        flat = self.weight.permute(1, 0, 2, 3).reshape(cout, cin, -1)
        flat = torch.cat([flat, flat.new_zeros(cout, cin, 1)], dim=2)
        taps = self.taps
        assert isinstance(taps, torch.Tensor)  # a buffer (narrows the type for mypy)
        weight = flat[:, :, taps].reshape(cout, cin, s, s, 3, 3).permute(0, 2, 3, 1, 4, 5)
        bias = self.bias
        if bias is None:
            bias = self.weight.new_zeros(cout)
        return weight.reshape(cout * s * s, cin, 3, 3), bias.repeat_interleave(s * s)

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        weight, bias = self.subpixel_weight()
        return F.pixel_shuffle(F.conv2d(input, weight, bias, padding=1), self.stride[0])


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
        self.deconv = Deconv(arch.trunk, arch.hr_features, arch.scale)
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
    hidden layer. The residual branch is *contextualized*: it sees the image branch's HR
    image and boundary probabilities, beside either the HR feature maps or the image
    branch's hidden layer (:attr:`Architecture.residual_context`), and predicts what that
    image still misses. (A residual branch that saw only the shared feature maps learned
    nothing: the image branch already minimises the same error from the same features.)
    """

    def __init__(self, *, arch: Architecture | None = None) -> None:
        super().__init__()
        self.arch = arch if arch is not None else Architecture()
        a = self.arch
        self.scale = a.scale
        self.trunk = _Trunk(a)
        self.bicubic = Bicubic(a.scale)
        self.image_hidden = _conv(a.hr_features, a.branch, 3)
        self.image_act = nn.PReLU(a.branch)
        self.image_heads = _conv(a.branch, 3 + 1, 3)
        """Output channels 0-2: the image (over bicubic); channel 3: boundary logits."""
        self.residual_from_image_branch = a.residual_context == "image_branch"
        shared = a.branch if self.residual_from_image_branch else a.hr_features
        self.residual_hidden = _conv(shared + 3 + 1, a.branch, 3)
        self.residual_act = nn.PReLU(a.branch)
        self.residual_out = _conv(a.branch, 3, 3)
        for head in (self.image_heads, self.residual_out):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)  # type: ignore[arg-type]

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(image, boundary logits, residual)`` for LR ``x``."""
        low = x.to(self.image_heads.weight.dtype)  # the learned layers' dtype (see reduced_precision)
        features = self.trunk(low)
        hidden = self.image_act(self.image_hidden(features))
        heads = self.image_heads(hidden)
        image = self.bicubic(x) + heads[:, :3].to(x.dtype)
        boundary = heads[:, 3:]
        shared = hidden if self.residual_from_image_branch else features
        context = torch.cat([shared, image.to(low.dtype), torch.sigmoid(boundary)], 1)
        residual = self.residual_out(self.residual_act(self.residual_hidden(context)))
        return image, boundary, residual

    def forward(self, x: torch.Tensor) -> TrainingOutput:
        """LR RGB ``(N,3,H,W)`` in ``[0,1]`` -> the three training outputs, each ``(N,C,sH,sW)``:
        the image branch's HR image, its boundary logits and the residual branch's residual."""
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
        """LR RGB ``(N,3,H,W)`` in ``[0,1]`` -> HR RGB ``(N,3,sH,sW)``: image + residual."""
        image, _, residual = self.branches(x)
        return image + residual.to(image.dtype)

    def input_dtype(self) -> torch.dtype:
        """The dtype to feed: the parameters' dtype, except float32 for a
        :meth:`reduced_precision` copy."""
        weight = self.bicubic.weight
        assert isinstance(weight, torch.Tensor)  # a buffer (narrows the type for mypy)
        return weight.dtype

    def reduced_precision(self, dtype: torch.dtype) -> DeployNet:
        """A copy whose learned layers compute in ``dtype`` (channels-last), while the fixed
        bicubic skip and the sums that form the output stay in the input's dtype.

        Meant for ``torch.bfloat16`` on CPUs with bfloat16 matrix units (AMX, AVX-512 BF16),
        fed float32: bfloat16 keeps 8 significant bits, as coarse as the uint8 output near
        white, so the output itself must not be rounded to it; the learned layers only add
        a small correction to the bicubic image and lose little.
        """
        net = copy.deepcopy(self).to(dtype=dtype, memory_format=torch.channels_last)  # type: ignore[call-overload]
        net.bicubic = Bicubic(self.scale).to(next(self.parameters()).device)
        return net.eval()


class Bicubic(nn.Module):
    """Bicubic upsampling by an integer ``scale``: the same result as
    ``F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)`` (Keys
    kernel, a = -0.75, edge pixels repeated), up to float rounding.

    Written as a fixed 5x5 depthwise convolution per output phase plus a pixel shuffle, so
    every HR pixel is computed from its LR neighbours the same way wherever it sits.
    ``F.interpolate`` maps HR coordinates to LR in float; at x3 (1/3 is inexact) its cubic
    weights then depend on a pixel's absolute position, so a tile and the whole frame
    disagreed in the last bit and tiled inference was not exact.
    """

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        taps = torch.zeros(scale, 5, dtype=torch.float64)  # LR offsets -2..2 for each phase
        for phase in range(scale):
            source = (phase + 0.5) / scale - 0.5
            base = math.floor(source)
            t = source - base
            for k, d in enumerate((1 + t, t, 1 - t, 2 - t)):  # distances to base-1 .. base+2
                a = -0.75
                w = ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
                taps[phase, base - 1 + k + 2] = w
        kernel = (taps[:, None, :, None] * taps[None, :, None, :]).reshape(scale * scale, 1, 5, 5)
        self.register_buffer("weight", kernel.repeat(3, 1, 1, 1).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, [2, 2, 2, 2], mode="replicate")
        weight = self.weight
        assert isinstance(weight, torch.Tensor)  # a buffer (narrows the type for mypy)
        return F.pixel_shuffle(F.conv2d(padded, weight, groups=3), self.scale)


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
        dtype = net.input_dtype() if isinstance(net, DeployNet) else param.dtype  # float32 into a bf16 copy
        with torch.no_grad():
            net(torch.zeros(1, 3, 16, 16, dtype=dtype, device=param.device))
    finally:
        for h in hooks:
            h.remove()
    return Cost(sum(p.numel() for p in net.parameters()), macs // 256)


def receptive_radius(net: DeployNet, *, size: int | None = None) -> int:
    """Measure, by impulse response, how far (in LR pixels) an output depends on its input.

    Perturbing one LR pixel and seeing which HR pixels move is the same as asking which LR
    pixels carry gradient into one HR pixel; this does the latter for every sub-pixel phase
    of an output pixel in the middle of a ``size`` x ``size`` input, in float64 on a copy of
    ``net``. The result ``r`` means: HR pixel ``(y, x)`` depends only on LR pixels within
    ``r`` of ``(y // scale, x // scale)`` in both axes, which is the halo tiling needs.
    ``size=None`` starts at 48 and doubles while the field reaches the probe's border (deep
    trunks), up to 384.
    """
    if not isinstance(net, DeployNet):
        raise InputError(f"net: expected a DeployNet (load_pretrained(scale).deploy()), got {type(net).__name__}")
    for probe_size in (48, 96, 192, 384) if size is None else (size,):
        radius = _radius_within(net, probe_size)
        if radius is not None:
            return radius
    raise InputError(f"receptive field reaches the {probe_size}-pixel probe's border; use a larger size")


def _radius_within(net: DeployNet, size: int) -> int | None:
    """The receptive radius measured on a ``size`` probe, or None where it reaches the border."""
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
        if not torch.isfinite(x.grad).all():
            raise WeightsError("the network's outputs are not finite (weights with NaN or inf?)")
        rows, cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1)), as_tuple=True)
        reach = torch.cat([rows - centre, cols - centre]).abs().max().item()
        if max(rows.max().item(), cols.max().item()) >= size - 1 or min(rows.min().item(), cols.min().item()) <= 0:
            return None
        radius = max(radius, int(reach))
    return radius
