"""Optional dependencies, detected once and without importing them (no CUDA is touched).

``find_spec`` answers "is it installed" cheaply; the modules themselves are imported only
by the code that uses them.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path


@functools.cache
def version(distribution: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def has_torch_tensorrt() -> bool:
    return has_module("torch_tensorrt")


def has_onnxruntime() -> bool:
    return has_module("onnxruntime")


def has_modelopt() -> bool:
    return has_module("modelopt")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere)."""
    try:
        with Path("/proc/cpuinfo").open(encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


_ISA_PREFIXES = ("avx", "amx", "sse", "ssse", "fma", "f16c", "bmi", "popcnt", "movbe", "abm", "lzcnt", "gfni",
                 "vaes", "vpclmulqdq", "sha_ni", "adx", "aes", "pclmulqdq")  # fmt: skip


def cpu_isa_flags() -> list[str]:
    """The instruction-set extensions among :func:`cpu_flags` (what compiled code may use),
    sorted; not the flags that say nothing about instructions (``hypervisor``, say)."""
    return sorted(f for f in cpu_flags() if f.startswith(_ISA_PREFIXES))


def has_fast_bf16() -> bool:
    """Whether the CPU computes bfloat16 in hardware (AMX or AVX-512 BF16), where oneDNN's
    bfloat16 convolutions beat float32 several times over."""
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def has_avx512() -> bool:
    """Whether the CPU has AVX-512 (its foundation instructions)."""
    return "avx512f" in cpu_flags()


def has_cxx_compiler() -> bool:
    """Whether a C++ compiler is on PATH (or named by ``CXX``), as Inductor needs to build."""
    import os
    import shutil

    return any(shutil.which(name) for name in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if name)


def cpu_capability() -> str:
    """The vector instruction set torch's CPU kernels use here (``AVX2``, ``AVX512``, ...)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())
