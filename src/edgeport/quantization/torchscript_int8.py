"""TorchScript int8 (optional artifact): ``torch.ao.quantization`` dynamic quantization of Linear
and LSTM layers, traced to TorchScript.

``torch.ao.quantization`` and ``torch.jit.trace`` are deprecated in torch 2.14 (they still work);
this module is the only place that uses them, so their removal touches nothing else.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.errors import EdgeportError

if TYPE_CHECKING:
    import torch


def quantize_torchscript_dynamic(
    model: torch.nn.Module, example_inputs: tuple[Any, ...], path: Path
) -> dict[str, Any]:
    """Dynamically quantize ``model``'s Linear/LSTM layers (qint8) and save the trace at ``path``.

    Raises:
        EdgeportError: The model has no Linear/LSTM layer, or the quantized model cannot be
            traced (e.g. ``nn.TransformerEncoderLayer``'s fast path reads float weights).
    """
    import copy

    import torch
    from torch.ao.quantization import quantize_dynamic

    layers = {torch.nn.Linear, torch.nn.LSTM}
    if not any(type(m) in layers for m in model.modules()):
        raise EdgeportError(
            "TorchScript int8 (dynamic) quantizes Linear and LSTM layers; this model has none",
            fix="use the ONNX int8 artifacts, which also quantize convolutions",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = quantize_dynamic(copy.deepcopy(model).eval(), layers, dtype=torch.qint8)
        try:
            with torch.inference_mode():
                traced = torch.jit.trace(quantized, example_inputs, check_trace=False, strict=False)
        except Exception as exc:
            raise EdgeportError(
                f"the dynamically quantized model cannot be traced: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}",
                fix="use --mode dynamic for the ONNX artifact instead",
            ) from exc
        torch.jit.save(traced, str(path))
    return {
        "method": "torch.ao.quantization.quantize_dynamic + torch.jit.trace (deprecated APIs)",
        "layers": sorted(t.__name__ for t in layers),
        "dtype": "qint8",
        "engine": torch.backends.quantized.engine,
        "torch": torch.__version__,
    }
