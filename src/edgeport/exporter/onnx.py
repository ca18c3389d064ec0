"""ONNX export: the dynamo exporter first, the legacy TorchScript-based exporter as fallback.

torch 2.14's ``torch.onnx.export`` defaults to the dynamo exporter (``torch.export`` + onnxscript).
It fails on some models (data-dependent control flow, unsupported ops); then we fall back to
``dynamo=False`` and record why in the manifest. Both write into a scratch file; the caller then
simplifies and saves the final artifact with `save_onnx` (one file, or ``.data`` external data
for large models).

Outputs are flattened through `FlatOutputs`, so ONNX output order and names are exactly those the
manifest records, whatever structure (dict, tuple, nested) the model returns.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.errors import EdgeportError
from edgeport.exporter.torchscript import tracer_warnings
from edgeport.spec import TensorSpec

if TYPE_CHECKING:
    import onnx
    import torch

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
EXPORTERS = ("auto", "dynamo", "legacy")
# Above this many bytes of weights, the artifact stores them in model.onnx.data (protobuf's
# hard limit for one file is 2 GiB).
EXTERNAL_DATA_THRESHOLD = 1 << 30


def _make_flat_outputs() -> type:
    import torch

    from edgeport.runtime.torchscript import flatten_outputs

    class FlatOutputs(torch.nn.Module):
        """Wraps a model so that it returns a flat tuple of tensors."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(flatten_outputs(self.model(*args)))

    return FlatOutputs


def export_onnx(
    model: torch.nn.Module,
    example_inputs: tuple[Any, ...],
    path: Path,
    *,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
) -> dict[str, Any]:
    """Export ``model`` to ONNX at ``path`` (a scratch file: weights may be external).

    Args:
        model: The eager model in eval mode.
        example_inputs: Positional example inputs.
        path: Where to write the exported model.
        inputs: Input specs (names and symbolic dims) in call order.
        outputs: Output specs (names and symbolic dims) in flattened order.
        opset: ONNX opset version (default 18).
        exporter: ``auto`` (dynamo, then legacy on failure), ``dynamo`` or ``legacy``.

    Returns:
        The export record: exporter used, fallback reason, tracer warnings, opset.
    """
    import torch

    if exporter not in EXPORTERS:
        raise EdgeportError(f"unknown ONNX exporter {exporter!r}", available=", ".join(EXPORTERS))
    # A ScriptModule cannot be called from inside another module's trace; the legacy exporter
    # flattens its outputs itself, in the same order as `flatten_outputs`.
    is_script = isinstance(model, torch.jit.ScriptModule)
    wrapped = model if is_script else _make_flat_outputs()(model).eval()
    record: dict[str, Any] = {"torch": torch.__version__, "opset": opset}
    if exporter in ("auto", "dynamo") and not is_script:
        try:
            _export_dynamo(wrapped, example_inputs, path, inputs, outputs, opset)
            record["exporter"] = "dynamo"
            return record
        except Exception as exc:
            if exporter == "dynamo":
                raise EdgeportError(
                    f"the dynamo ONNX exporter failed: {exporter_failure(exc)}",
                    fix="try --exporter legacy or --exporter auto",
                ) from exc
            record["fallback_reason"] = f"dynamo exporter failed: {exporter_failure(exc)}"
            log.info(
                "dynamo ONNX export failed, using the legacy exporter: %s",
                record["fallback_reason"],
            )
    elif exporter == "auto":
        record["fallback_reason"] = (
            "the source is TorchScript, which only the legacy exporter reads"
        )
    record["exporter"] = "legacy"
    record["tracer_warnings"] = _export_legacy(
        wrapped, example_inputs, path, inputs, outputs, opset
    )
    return record


def _export_dynamo(
    wrapped: torch.nn.Module,
    example_inputs: tuple[Any, ...],
    path: Path,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    opset: int,
) -> None:
    import torch

    dynamic = any(s.dynamic_axes for s in inputs)
    shapes = (tuple(dict(s.dynamic_axes) or None for s in inputs),) if dynamic else None
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), _quiet_warnings():
        program = torch.onnx.export(
            wrapped,
            example_inputs,
            dynamo=True,
            input_names=[s.name for s in inputs],
            output_names=[s.name for s in outputs],
            dynamic_shapes=shapes,
            opset_version=opset,
            verbose=False,
            optimize=True,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path), external_data=_weight_bytes(wrapped) > EXTERNAL_DATA_THRESHOLD)


def _export_legacy(
    wrapped: torch.nn.Module,
    example_inputs: tuple[Any, ...],
    path: Path,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    opset: int,
) -> list[str]:
    import torch

    axes = {s.name: s.dynamic_axes for s in [*inputs, *outputs] if s.dynamic_axes}
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        try:
            torch.onnx.export(
                wrapped,
                example_inputs,
                str(path),
                dynamo=False,
                input_names=[s.name for s in inputs],
                output_names=[s.name for s in outputs],
                dynamic_axes=axes or None,
                opset_version=opset,
                do_constant_folding=True,
            )
        except Exception as exc:
            raise EdgeportError(
                f"ONNX export failed with both exporters; the legacy exporter said: "
                f"{exporter_failure(exc)}",
                fix="check the op is supported at this --opset, or try a newer --opset",
            ) from exc
    return tracer_warnings(caught)


@contextlib.contextmanager
def _quiet_warnings() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        yield


def _weight_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def exporter_failure(exc: BaseException) -> str:
    """One line saying why an exporter failed: the exception summary and the user code line."""
    text = str(exc)
    where = ""
    if "The following call raised this error:" in text:
        call = text.split("The following call raised this error:", 1)[1].strip().splitlines()
        where = " at " + " ".join(ln.strip() for ln in call[:2] if ln.strip())
    if "## Exception summary" in text:
        text = text.split("## Exception summary", 1)[1]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    summary = lines[0] if lines else ""
    match = re.match(r"<class '([\w.]+)'>:?\s*(.*)", summary)
    if match:
        summary = f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}"
    return f"{type(exc).__name__}: {summary[:300]}{where[:200]}"


def load_onnx(path: Path) -> onnx.ModelProto:
    """Load an ONNX model with its external data."""
    import onnx

    return onnx.load(str(path), load_external_data=True)


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of all initializers (raw data or typed fields)."""
    from onnx import numpy_helper

    total = 0
    for tensor in model.graph.initializer:
        if tensor.HasField("raw_data"):
            total += len(tensor.raw_data)
        else:
            total += numpy_helper.to_array(tensor).nbytes
    return total


def set_symbolic_dims(
    model: onnx.ModelProto, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
) -> None:
    """Name every declared symbolic dim of the graph's inputs/outputs with its label.

    Exporters name dims their own way (``s0``, ``Addoutput_dim_0``); the manifest's labels are
    the contract, so the graph is made to use them.
    """
    specs = {s.name: s for s in [*inputs, *outputs]}
    for value in [*model.graph.input, *model.graph.output]:
        spec = specs.get(value.name)
        if spec is None or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        for axis, label in spec.dynamic_axes.items():
            if axis < len(dims):
                dims[axis].Clear()
                dims[axis].dim_param = label


def fixed_declared_dims(model: onnx.ModelProto, inputs: Sequence[TensorSpec]) -> list[str]:
    """Declared symbolic input dims that the graph has fixed to a number (a broken export)."""
    problems = []
    graph_inputs = {v.name: v for v in model.graph.input}
    for spec in inputs:
        value = graph_inputs.get(spec.name)
        if value is None:
            problems.append(f"input {spec.name!r} is missing from the graph")
            continue
        dims = value.type.tensor_type.shape.dim
        for axis, label in spec.dynamic_axes.items():
            if axis >= len(dims) or not dims[axis].dim_param:
                got = dims[axis].dim_value if axis < len(dims) else "absent"
                problems.append(f"{spec.name} axis {axis} ({label}) is fixed to {got}")
    return problems


def save_onnx(model: onnx.ModelProto, path: Path) -> list[str]:
    """Save the final artifact; weights go to ``<name>.data`` when they are large.

    Returns:
        Relative paths of external data files written (empty for a single file).
    """
    import onnx

    data_name = f"{path.name}.data"
    (path.parent / data_name).unlink(missing_ok=True)  # never append to old external data
    large = weight_bytes(model) > EXTERNAL_DATA_THRESHOLD
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=large,
        all_tensors_to_one_file=True,
        location=data_name,
        size_threshold=1024,
    )
    return [data_name] if large else []
