"""Provider policy (docs/design.md §5): ask for a provider, get it or a clear error.

`resolve` maps ``"cpu" | "cuda" | "tensorrt"`` to ONNX Runtime execution providers. A provider
that this onnxruntime build lacks is an error naming what is available, unless the caller allows
fallback; after the session is created, `check_used` confirms ONNX Runtime really registered the
provider (it silently drops CUDA when the CUDA libraries fail to load). With fallback allowed,
every result is labeled with the provider that really ran.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgeport.errors import EdgeportError

log = logging.getLogger(__name__)


class Provider(enum.Enum):
    """Execution providers edgeport knows, by their short names."""

    CPU = "cpu"
    CUDA = "cuda"
    TENSORRT = "tensorrt"

    @property
    def ort_name(self) -> str:
        """ONNX Runtime's name for this provider."""
        return _ORT_NAMES[self]

    @classmethod
    def parse(cls, value: str | Provider) -> Provider:
        """`Provider` from its short name (case-insensitive), or a clear error."""
        if isinstance(value, Provider):
            return value
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise EdgeportError(
                f"unknown provider {value!r}",
                available=", ".join(p.value for p in cls),
            ) from None


_ORT_NAMES = {
    Provider.CPU: "CPUExecutionProvider",
    Provider.CUDA: "CUDAExecutionProvider",
    Provider.TENSORRT: "TensorrtExecutionProvider",
}
_SHORT = {v: k.value for k, v in _ORT_NAMES.items()}


def short_name(ort_name: str) -> str:
    """``CUDAExecutionProvider`` → ``cuda``; unknown names pass through."""
    return _SHORT.get(ort_name, ort_name)


@dataclass(frozen=True)
class ProviderPlan:
    """The providers to pass to ONNX Runtime, in priority order, and what was asked for."""

    requested: Provider
    ort_providers: list[Any]
    fallback: bool

    @property
    def expected(self) -> str:
        """ONNX Runtime name of the requested provider."""
        return self.requested.ort_name


def available_providers() -> list[str]:
    """ONNX Runtime providers this build has (names like ``CPUExecutionProvider``)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve(
    provider: str | Provider,
    *,
    allow_fallback: bool = False,
    device_id: int = 0,
    tf32: bool = False,
    available: Sequence[str] | None = None,
) -> ProviderPlan:
    """Plan the ONNX Runtime providers for a request.

    Args:
        provider: ``cpu``, ``cuda`` or ``tensorrt``.
        allow_fallback: Fall back to the CPU instead of failing when the provider is unusable.
        device_id: GPU index for CUDA / TensorRT.
        tf32: Let CUDA's matrix products and convolutions use TF32 (10-bit mantissa) on
            Ampere and newer. Off by default: an fp32 artifact is verified at fp32 tolerances,
            and ONNX Runtime's CUDA provider enables TF32 unless told otherwise (measured on an
            H100: resnet18 logits then differ from the CPU by up to 1.8e-3).
        available: Providers to plan against (default: this onnxruntime's).

    Raises:
        EdgeportError: The provider is not in this build and fallback is not allowed.
    """
    wanted = Provider.parse(provider)
    have = list(available if available is not None else available_providers())
    cpu = Provider.CPU.ort_name
    if wanted.ort_name not in have:
        if not allow_fallback:
            raise EdgeportError(
                f"provider {wanted.value!r} ({wanted.ort_name}) is not usable: this onnxruntime "
                f"build has {', '.join(short_name(p) for p in have)}",
                available=", ".join(have),
                fix=_install_hint(wanted) + ", or pass allow_fallback=True (--allow-fallback) "
                "to run on the CPU with results labeled 'cpu'",
            )
        log.warning("provider %s is not available; falling back to cpu", wanted.value)
        return ProviderPlan(wanted, [cpu], fallback=True)
    gpu = {"device_id": device_id}
    cuda = {**gpu, "use_tf32": int(tf32)}
    chain: list[Any] = []
    if wanted is Provider.TENSORRT:
        chain.append((wanted.ort_name, {**gpu, "trt_engine_cache_enable": True}))
        if Provider.CUDA.ort_name in have:
            chain.append((Provider.CUDA.ort_name, cuda))
    elif wanted is Provider.CUDA:
        chain.append((wanted.ort_name, cuda))
    # ONNX Runtime places nodes a GPU provider cannot take on the CPU provider; the placement
    # report says which.
    chain.append(cpu)
    return ProviderPlan(wanted, chain, fallback=allow_fallback)


def check_used(plan: ProviderPlan, registered: Sequence[str]) -> str:
    """The provider that really runs, given what the session registered.

    Raises:
        EdgeportError: The requested provider was dropped by ONNX Runtime (e.g. the CUDA
            libraries failed to load) and fallback is not allowed.
    """
    if plan.expected in registered:
        return plan.requested.value
    if not plan.fallback:
        raise EdgeportError(
            f"provider {plan.requested.value!r} was requested but ONNX Runtime registered only "
            f"{', '.join(registered)} (it drops a provider whose libraries fail to load)",
            fix=_install_hint(plan.requested) + "; check the ONNX Runtime log for the load error",
        )
    log.warning("provider %s did not load; results are labeled %s", plan.expected, registered[0])
    return short_name(registered[0])


def _install_hint(provider: Provider) -> str:
    if provider is Provider.CPU:
        return "reinstall onnxruntime"
    return (
        "install onnxruntime-gpu (instead of onnxruntime) with matching CUDA/cuDNN"
        + (" and TensorRT" if provider is Provider.TENSORRT else "")
        + " on a machine with an NVIDIA GPU"
    )
