"""Runners: one small class per artifact format, each mapping named numpy inputs to named outputs.

`ArtifactRunner.run` validates the feeds and then calls the format's `_run_impl` (the Polygraphy
``infer`` → ``infer_impl`` shape). The ONNX runner needs only onnxruntime; TorchScript imports
torch when it is used.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from edgeport.bundle import Bundle
from edgeport.errors import EdgeportError
from edgeport.runtime.torchscript import flatten_outputs, load_torchscript

log = logging.getLogger(__name__)


class ArtifactRunner(abc.ABC):
    """Runs one artifact. Subclasses implement `_run_impl`.

    Args:
        path: The artifact file.
        input_names: Input names in call order.
        output_names: Output names in the order the artifact returns them.
    """

    format: str = ""

    def __init__(self, path: Path, input_names: Sequence[str], output_names: Sequence[str]):
        self.path = Path(path)
        self.input_names = list(input_names)
        self.output_names = list(output_names)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on ``feeds`` (input name → array) and return output name → array."""
        missing = [n for n in self.input_names if n not in feeds]
        extra = [n for n in feeds if n not in self.input_names]
        if missing or extra:
            raise EdgeportError(
                f"feeds for {self.path.name} do not match its inputs: missing {missing}, "
                f"unexpected {extra}",
                expected=f"exactly the inputs {self.input_names}",
            )
        outputs = self._run_impl([np.ascontiguousarray(feeds[n]) for n in self.input_names])
        if len(outputs) != len(self.output_names):
            raise EdgeportError(
                f"{self.path.name} returned {len(outputs)} outputs",
                expected=f"{len(self.output_names)} outputs named {self.output_names}",
            )
        return dict(zip(self.output_names, outputs, strict=True))

    @abc.abstractmethod
    def _run_impl(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run with inputs in call order; return outputs in manifest order."""


class OnnxRunner(ArtifactRunner):
    """An ONNX file through `edgeport.Session` on the CPU provider."""

    format = "onnx"

    def __init__(
        self,
        path: Path,
        input_names: Sequence[str],
        output_names: Sequence[str],
        *,
        threads: int | None = None,
    ) -> None:
        super().__init__(path, input_names, output_names)
        from edgeport.runtime.session import Session

        self._session = Session(str(self.path), threads=threads)

    def _run_impl(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        outputs = self._session.run(inputs)
        return [outputs[name] for name in self._session.output_names]


class TorchScriptRunner(ArtifactRunner):
    """TorchScript on the CPU. Loading a TorchScript file runs its code: callers opt in."""

    format = "torchscript"

    def __init__(self, path: Path, input_names: Sequence[str], output_names: Sequence[str]):
        super().__init__(path, input_names, output_names)
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)  # jit.load is deprecated
            self._module = load_torchscript(str(self.path), "cpu")

    def _run_impl(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            result = self._module(*[torch.from_numpy(np.array(a)) for a in inputs])
        return [t.detach().cpu().numpy() for t in flatten_outputs(result)]


def runner_for(
    bundle: Bundle, artifact: str, *, threads: int | None = None, trust_code: bool = False
) -> ArtifactRunner:
    """A runner for a bundle's artifact (its path checked to stay inside the bundle).

    Raises:
        CodeNotTrusted: A TorchScript artifact without ``trust_code``.
    """
    from edgeport.trust import require_trust

    entry = bundle.entry(artifact)
    inputs = [s.name for s in bundle.inputs]
    outputs = [s.name for s in bundle.outputs]
    path = bundle.path_of(artifact)
    if entry.format == "onnx":
        return OnnxRunner(path, inputs, outputs, threads=threads)
    require_trust(trust_code, f"opening {entry.format} artifact {artifact!r} ({entry.path})")
    return TorchScriptRunner(path, inputs, outputs)
