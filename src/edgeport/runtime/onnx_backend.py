"""An ONNX backend (``onnx.backend.base.Backend``) that runs models through `edgeport.Session`.

It lets ONNX's own backend test suite (the node tests shipped with the onnx package) exercise
edgeport's runtime layer: validation, provider policy and monitoring must never turn a model
ONNX Runtime runs into one edgeport refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from edgeport.runtime.session import Session

_DEVICES = {"CPU": "cpu", "CUDA": "cuda"}


class EdgeportBackendRep(BackendRep):
    """A prepared model: one `Session`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Run on positional inputs (a list, or one array); outputs in graph order."""
        if isinstance(inputs, dict):
            feeds: Any = inputs
        elif isinstance(inputs, Sequence) and not isinstance(inputs, np.ndarray):
            feeds = list(inputs)
        else:
            feeds = [inputs]
        outputs = self.session.run(feeds)
        return tuple(outputs[name] for name in self.session.output_names)


class EdgeportBackend(Backend):
    """``prepare`` builds a `Session` from a ModelProto; devices ``CPU`` and ``CUDA``."""

    @classmethod
    def prepare(
        cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any
    ) -> EdgeportBackendRep:
        """Check nothing ONNX Runtime would not, then open a Session on the model's bytes."""
        super().prepare(model, device, **kwargs)
        provider = _DEVICES.get(device.split(":")[0].upper(), "cpu")
        return EdgeportBackendRep(Session(model.SerializeToString(), provider=provider))

    @classmethod
    def run_model(
        cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any
    ) -> tuple[Any, ...]:
        """Prepare and run once."""
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """CPU always; CUDA when this onnxruntime has the CUDA provider."""
        from edgeport.runtime.providers import available_providers

        kind = device.split(":")[0].upper()
        if kind == "CUDA":
            return "CUDAExecutionProvider" in available_providers()
        return kind == "CPU"
