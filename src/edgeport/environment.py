"""The environment a bundle was made in: versions, CPU model and ISA flags, providers."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path
from typing import Any

ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "asimd",
    "sve",
)
PACKAGES = (
    "torch",
    "torchvision",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxscript",
    "onnxsim",
    "numpy",
)


def collect_environment() -> dict[str, Any]:
    """Versions of python and the packages that shape an artifact, CPU model, ISA flags."""
    cpu, flags = _cpu_info()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "isa": [f for f in ISA_FLAGS if f in flags],
        "packages": {p: _version(p) for p in PACKAGES if _version(p)},
        "providers": _providers(),
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_info() -> tuple[str, set[str]]:
    cpu, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                cpu = value.strip()
            elif key in ("flags", "Features"):
                flags = set(value.split())
    return cpu, flags


def _providers() -> list[str]:
    try:
        import onnxruntime

        return list(onnxruntime.get_available_providers())
    except ImportError:
        return []
