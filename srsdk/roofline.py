"""How fast the network could possibly run: a per-layer roofline.

Each layer's time is bounded below by its arithmetic at the device's peak throughput and by
the bytes it must move (its input and output activations, and its weights) at the device's
memory bandwidth; the frame's bound is the sum of the larger of the two per layer. Host
frames add the PCIe transfer of the uint8 input and output. Achieved speed divided by that
bound says how far from the physical limit an implementation is.
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn

from srsdk.model import Bicubic, Deconv, DeployNet

# Dense FP16 tensor-core peak and memory bandwidth from NVIDIA's datasheets.
GPU_PEAKS = {
    "H100 SXM": (989e12, 3.35e12),
    "H100 PCIe": (756e12, 2.0e12),
    "H100 NVL": (835e12, 3.9e12),
    "H200": (989e12, 4.8e12),
}
PRECISION_RATE = {"fp16": 1.0, "bf16": 1.0, "fp32": 0.5, "int8": 2.0}
"""Dense tensor-core throughput per precision relative to FP16 on these GPUs (Hopper
datasheets): FP32 convolutions run as TF32 (cuDNN's default, ``allow_tf32``) at half the
FP16 rate; INT8 at twice it."""
PCIE_BYTES_PER_S = 64e9  # PCIe 5.0 x16, one direction, theoretical


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str
    macs: int
    bytes: int


def layers(net: DeployNet, height: int, width: int, *, bytes_per_element: int) -> list[Layer]:
    """The layers one ``height x width`` LR frame runs through, as executed."""
    found: list[Layer] = []

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            x = inputs[0]
            params = sum(p.numel() for p in module.parameters(recurse=False))
            moved = (x.numel() + output.numel() + params) * bytes_per_element
            if isinstance(module, Deconv):  # runs as a 3x3 convolution into scale**2 phases
                macs = x.shape[2] * x.shape[3] * module.out_channels * module.stride[0] ** 2 * module.in_channels * 9
            elif isinstance(module, nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1]
                macs = output.numel() * module.in_channels // module.groups * k
            elif isinstance(module, Bicubic):  # a 5x5 depthwise convolution per output phase
                macs = output.numel() * 25
            else:  # element-wise (PReLU): memory only
                macs = 0
            found.append(Layer(name, int(macs), int(moved)))

        return hook

    kinds = (nn.Conv2d, nn.PReLU, Bicubic, Deconv)
    hooks = [m.register_forward_hook(record(n)) for n, m in net.named_modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, height, width, device=next(net.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return found


def bound_seconds(found: list[Layer], *, flops_per_s: float, bytes_per_s: float) -> float:
    return sum(max(2 * layer.macs / flops_per_s, layer.bytes / bytes_per_s) for layer in found)


def gpu_peaks(name: str, precision: str = "fp16") -> tuple[float, float] | None:
    """(FLOP/s at ``precision``, bytes/s) for a GPU by the name torch reports, else None.

    torch names the SXM H100 "NVIDIA H100 80GB HBM3"; the other forms say PCIe or NVL.
    """
    found = _fp16_peaks(name)
    if found is None:
        return None
    return found[0] * PRECISION_RATE[precision], found[1]


def _fp16_peaks(name: str) -> tuple[float, float] | None:
    upper = name.upper()
    if "H200" in upper:
        return GPU_PEAKS["H200"]
    if "H100" in upper:
        for form in ("PCIE", "NVL"):
            if form in upper:
                return GPU_PEAKS["H100 PCIe" if form == "PCIE" else "H100 NVL"]
        return GPU_PEAKS["H100 SXM"]
    return None


def measure_cpu_peaks(dtype: torch.dtype = torch.float32, seconds: float = 0.5) -> tuple[float, float]:
    """This CPU's practical peaks: FLOP/s of a large ``dtype`` matmul (BF16 runs on AMX
    where the CPU has it), bytes/s of a large copy."""
    a = torch.rand(1024, 1024).to(dtype)
    torch.mm(a, a)  # warm-up: oneDNN picks and prepares its kernel on the first call
    flops = 0.0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.mm(a, a)
        flops += 2 * 1024**3
    flops_per_s = flops / (time.perf_counter() - started)
    src, dst = torch.empty(64 * 2**20, dtype=torch.uint8), torch.empty(64 * 2**20, dtype=torch.uint8)
    moved = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        dst.copy_(src)
        moved += 2 * src.numel()  # read + write
    return flops_per_s, moved / (time.perf_counter() - started)
