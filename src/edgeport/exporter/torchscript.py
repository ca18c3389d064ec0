"""TorchScript export: trace by default, script on request.

``torch.jit.trace`` records one path through the model. When the model branches on tensor values
the tracer warns and the trace is silently wrong for other inputs; we record every TracerWarning
(message and source line) so that parity on other inputs can name the cause when it fails.
torch 2.14 deprecates ``torch.jit.trace/script``; the deprecation warnings are filtered here, on
purpose, and the method used is recorded in the manifest.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.errors import EdgeportError

if TYPE_CHECKING:
    import torch


def export_torchscript(
    model: torch.nn.Module, example_inputs: tuple[Any, ...], path: Path, *, script: bool = False
) -> dict[str, Any]:
    """Write ``model`` as TorchScript to ``path``.

    Args:
        model: The eager model, in eval mode (or a ScriptModule, saved as is).
        example_inputs: Positional example inputs used for tracing.
        path: Destination file.
        script: Use ``torch.jit.script`` instead of tracing.

    Returns:
        The export record for the manifest: method, torch version, tracer warnings.
    """
    import torch

    record: dict[str, Any] = {"exporter": "torchscript", "torch": torch.__version__}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        if isinstance(model, torch.jit.ScriptModule):
            record["method"] = "already-torchscript"
            scripted = model
        elif script:
            record["method"] = "script"
            scripted = _script(model)
        else:
            record["method"] = "trace"
            with torch.no_grad():
                scripted = torch.jit.trace(model, example_inputs, strict=False, check_trace=False)
        record["tracer_warnings"] = tracer_warnings(caught)
        torch.jit.save(scripted, str(path))
    return record


def _script(model: torch.nn.Module) -> torch.jit.ScriptModule:
    import torch

    try:
        return torch.jit.script(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()
        raise EdgeportError(
            f"torch.jit.script cannot compile {type(model).__name__}: "
            f"{first[0] if first else type(exc).__name__}",
            fix="drop --script to trace the model instead, or make the model scriptable",
        ) from exc


def tracer_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """TracerWarnings as ``file:line: message`` strings, deduplicated, in order."""
    import torch

    seen: list[str] = []
    for w in caught:
        if issubclass(w.category, torch.jit.TracerWarning):
            text = f"{w.filename}:{w.lineno}: {str(w.message).splitlines()[0]}"
            if text not in seen:
                seen.append(text)
    return seen
