"""TorchScript: loading a file (it runs the file's code: callers check the user's trust first, see
`edgeport.trust`) and flattening a model's nested outputs into the named list the bundle records.
torch is imported only when a function needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeport.errors import EdgeportError, short_message


def load_torchscript(path: str, device: Any) -> Any:
    """``torch.jit.load`` in eval mode; a file it cannot load is a clear error. Loading runs the
    file's code: callers check the user's trust first (`edgeport.trust`)."""
    import torch

    try:
        return torch.jit.load(path, map_location=device).eval()
    except (RuntimeError, ValueError, OSError) as exc:
        raise EdgeportError(
            f"TorchScript cannot load {path!r}: {short_message(exc)}",
            fix="the file is corrupt or was made by another torch version; re-export it",
        ) from exc


def flatten_outputs(result: Any) -> list[Any]:
    """Flatten a model's return value (tensor, tuple/list, dict; nested) into a list of tensors.

    Dicts flatten in insertion order, which is also the order of the output names that
    `output_names_for` gives.
    """
    if isinstance(result, Mapping):
        return [t for v in result.values() for t in flatten_outputs(v)]
    if isinstance(result, list | tuple):
        return [t for v in result for t in flatten_outputs(v)]
    return [result]


def output_names_for(result: Any, prefix: str = "") -> list[str]:
    """Names for the flattened outputs: dict keys, ``output_0``… for sequences, ``output`` alone."""
    if isinstance(result, Mapping):
        names = []
        for key, value in result.items():
            sub = output_names_for(value, f"{prefix}{key}.")
            names += [f"{prefix}{key}"] if len(sub) == 1 else sub
        return names
    if isinstance(result, list | tuple):
        names = []
        for i, value in enumerate(result):
            sub = output_names_for(value, f"{prefix}{i}.")
            names += [f"{prefix or 'output_'}{i}"] if len(sub) == 1 else sub
        return names
    return [prefix.rstrip(".") or "output"]
