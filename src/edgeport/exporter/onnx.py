"""ONNX export paths: the dynamo exporter and the legacy TorchScript-based one.

torch 2.14's ``torch.onnx.export`` defaults to the dynamo exporter (``torch.export`` +
onnxscript). An export can fail outright (data-dependent control flow, unsupported ops), or
succeed and still be wrong at other sizes (a length baked into a shape constant, by the exporter
or by onnxsim trusting its shape annotations). So the flow tries `export_paths` in order, each
to the end (export, simplify, ONNX Runtime, parity), and keeps the first that passes
(docs/design.md §10). This module makes one export per call (`export_onnx`, raising
`ExportFailed` with a one-line reason and dynamo's guards) and says what pinned a dim when none
passed (`baked_dims`). Both exporters write into a scratch file; the caller then saves the final
artifact with `save_onnx` (one file, or ``.data`` external data for large models).

Outputs are flattened through `FlatOutputs`, so ONNX output order and names are exactly those the
manifest records, whatever structure (dict, tuple, nested) the model returns.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from edgeport.errors import EdgeportError
from edgeport.exporter.torchscript import tracer_warnings
from edgeport.spec import TensorSpec

if TYPE_CHECKING:
    import onnx
    import torch

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
EXPORTERS = ("auto", "dynamo", "legacy")
# The exporters `auto` tries, in order.
ONNX_EXPORTERS = ("dynamo", "legacy")
# Above this many bytes of weights, the artifact stores them in model.onnx.data (protobuf's
# hard limit for one file is 2 GiB).
EXTERNAL_DATA_THRESHOLD = 1 << 30
TORCHSCRIPT_SOURCE = "the source is TorchScript, which only the legacy exporter reads"


@dataclass(frozen=True)
class ExportPath:
    """One way to make the ONNX artifact: an exporter, and whether onnxsim runs on its graph."""

    exporter: str
    simplify: bool

    def __str__(self) -> str:
        return f"{self.exporter}, {'simplified' if self.simplify else 'not simplified'}"


def export_paths(exporter: str, *, simplify: bool, torchscript: bool) -> list[ExportPath]:
    """The ONNX export paths to try, in order: dynamo before legacy, simplified before not.

    Args:
        exporter: ``auto`` (every exporter), ``dynamo`` or ``legacy`` (that one only).
        simplify: Whether onnxsim may run (``False``: only the unsimplified paths).
        torchscript: The source is a ScriptModule, which only the legacy exporter reads.
    """
    if exporter not in EXPORTERS:
        raise EdgeportError(f"unknown ONNX exporter {exporter!r}", available=", ".join(EXPORTERS))
    names = [e for e in ONNX_EXPORTERS if exporter in ("auto", e)]
    if torchscript:
        names = ["legacy"]
    flags = (True, False) if simplify else (False,)
    return [ExportPath(name, flag) for name in names for flag in flags]


class ExportFailed(EdgeportError):
    """One ONNX exporter raised.

    Attributes:
        exporter: ``dynamo`` or ``legacy``.
        reason: One line: the exception summary and the user code line.
        guards: dynamo's guards that pinned a symbolic input dim to a number, each naming the
            input, the dim and the source line.
    """

    def __init__(self, exporter: str, reason: str, guards: Sequence[str] = ()) -> None:
        self.exporter = exporter
        self.reason = reason
        self.guards = tuple(guards)
        super().__init__(
            f"the {exporter} ONNX exporter failed: {reason}",
            fix="check the op is supported at this --opset, or try another --exporter",
        )


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
    exporter: str = "dynamo",
) -> dict[str, Any]:
    """Export ``model`` to ONNX at ``path`` (a scratch file: weights may be external).

    Args:
        model: The eager model in eval mode (or a ScriptModule, legacy exporter only).
        example_inputs: Positional example inputs.
        path: Where to write the exported model.
        inputs: Input specs (names and symbolic dims) in call order.
        outputs: Output specs (names and symbolic dims) in flattened order.
        opset: ONNX opset version (default 18).
        exporter: ``dynamo`` (default) or ``legacy``; `export_paths` says which to try.

    Returns:
        The export record: torch version, opset, exporter, and for ``legacy`` the tracer's
        warnings (``file:line: message``).

    Raises:
        ExportFailed: The exporter raised; its reason and dynamo's guards.
    """
    import torch

    if exporter not in ONNX_EXPORTERS:
        raise EdgeportError(
            f"unknown ONNX exporter {exporter!r}", available=", ".join(ONNX_EXPORTERS)
        )
    # A ScriptModule cannot be called from inside another module's trace; the legacy exporter
    # flattens its outputs itself, in the same order as `flatten_outputs`.
    is_script = isinstance(model, torch.jit.ScriptModule)
    if is_script and exporter == "dynamo":
        raise ExportFailed("dynamo", TORCHSCRIPT_SOURCE)
    wrapped = model if is_script else _make_flat_outputs()(model).eval()
    record: dict[str, Any] = {"torch": torch.__version__, "opset": opset, "exporter": exporter}
    if exporter == "dynamo":
        _export_dynamo(wrapped, example_inputs, path, inputs, outputs, opset)
    else:
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
    with (
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        _quiet_warnings(),
        _dynamo_guards() as guards,
    ):
        try:
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
        except Exception as exc:
            raise ExportFailed("dynamo", exporter_failure(exc), guards.describe(inputs)) from exc
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
            raise ExportFailed("legacy", exporter_failure(exc)) from exc
    return tracer_warnings(caught)


class _GuardLog(logging.Handler):
    """Collects dynamo's guards that pin a shape symbol to a number (``Eq(s27, 20)``)."""

    _SYMBOL = re.compile(
        r"create_symbol (s\d+) = -?\d+ for L\['(?:flat_)?args'\]\[(\d+)\]\.size\(\)\[(\d+)\]"
    )
    _GUARD = re.compile(
        r"eval Eq\((s\d+), (-?\d+)\) \[guard added\] (.*?)(?:, for more info run with .*)?$"
    )

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.symbols: dict[str, tuple[int, int]] = {}
        self.pinned: dict[tuple[int, int] | str, tuple[int, str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if symbol := self._SYMBOL.search(message):
            self.symbols[symbol.group(1)] = (int(symbol.group(2)), int(symbol.group(3)))
        elif guard := self._GUARD.search(message):
            key = self.symbols.get(guard.group(1), guard.group(1))
            where = " ".join(guard.group(3).split())
            # Each guard is logged once per tracing pass; keep the most telling source line.
            if key not in self.pinned or len(where) > len(self.pinned[key][1]):
                self.pinned[key] = (int(guard.group(2)), where)

    def describe(self, inputs: Sequence[TensorSpec]) -> list[str]:
        """One line per pinned symbol: the input, axis and label when known, value, source."""
        lines = []
        for key, (value, where) in self.pinned.items():
            if isinstance(key, tuple) and key[0] < len(inputs):
                spec = inputs[key[0]]
                label = spec.shape[key[1]] if key[1] < len(spec.shape) else None
                dim = f"{label}={value}" if isinstance(label, str) else f"size {value}"
                what = f"{spec.name} axis {key[1]} ({dim})"
            else:
                what = f"{key} = {value}"
            lines.append(f"dynamo guard pins {what} at {where}")
        return lines


@contextlib.contextmanager
def _dynamo_guards() -> Iterator[_GuardLog]:
    """Listen to torch's symbolic-shapes log (INFO) while dynamo traces, printing nothing."""
    logger = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    handler = _GuardLog()
    levels = [(h, h.level) for h in logger.handlers]
    old_level = logger.level
    for other, level in levels:
        other.setLevel(max(level, logging.WARNING))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        for other, level in levels:
            other.setLevel(level)


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
    if summary.endswith(":") and len(lines) > 1:  # a heading; its first item says what
        summary = f"{summary} {lines[1].lstrip('- ')}"
    match = re.match(r"<class '([\w.]+)'>:?\s*(.*)", summary)
    if match:
        summary = f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}"
    return f"{type(exc).__name__}: {summary[:400]}{where[:200]}"


def load_onnx(path: Path) -> onnx.ModelProto:
    """Load an exported model, with its weights when the whole model fits in one protobuf
    message (onnxsim and the in-memory ONNX APIs need them).

    A larger model is loaded as its graph (`load_graph`): each large tensor keeps its external
    reference, with a ``basepath`` entry naming ``path``'s directory, so that `save_onnx` can
    copy its bytes from that file into the artifact without holding the weights in memory.
    """
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    from edgeport.bundle import check_external_data
    from edgeport.inspection import PROTOBUF_LIMIT, all_tensors, load_graph, proto_bytes

    check_external_data(path)
    model = load_graph(path)
    if proto_bytes(model) <= PROTOBUF_LIMIT:
        load_external_data_for_model(model, str(path.parent))
        return model
    for tensor in all_tensors(model):
        if uses_external_data(tensor):
            _set_location(tensor, path.parent, _external_info(tensor)["location"])
    return model


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of all initializers, in memory or in external data."""
    from edgeport.inspection import tensor_bytes

    return sum(tensor_bytes(t) for t in model.graph.initializer)


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


# Ops whose shape operand fixes an output size, and that operand's index.
SHAPE_OPERANDS = {"Reshape": 1, "Expand": 1, "ConstantOfShape": 0}


def baked_dims(model: onnx.ModelProto, inputs: Sequence[TensorSpec]) -> list[str]:
    """Nodes whose constant shape operand holds the example size of a symbolic input dim.

    Such a node (``Reshape`` to ``[-1, 20, 10]`` when ``seq`` was exported at 20) makes the
    graph run, or be right, only at that size. Example sizes 0 and 1 are too common in shape
    constants to mean anything and are not looked for.

    Returns:
        One line per node, e.g. ``node 'Reshape_2' (Reshape) fixes dim seq=20 (shape constant
        [-1, 20, 10])``; empty when no node matches.
    """
    labels: dict[int, list[str]] = {}
    for spec in inputs:
        for label, size in spec.examples.items():
            if size > 1 and label not in labels.get(size, []):
                labels.setdefault(size, []).append(label)
    if not labels:
        return []
    constants = _small_int_constants(model.graph)
    found = []
    for node in model.graph.node:
        operand = SHAPE_OPERANDS.get(node.op_type)
        if operand is None or len(node.input) <= operand:
            continue
        values = constants.get(node.input[operand], [])
        dims = [f"{label}={v}" for v in dict.fromkeys(values) for label in labels.get(v, [])]
        if dims:
            found.append(
                f"node {node.name or node.output[0]!r} ({node.op_type}) fixes dim "
                f"{' or '.join(dims)} (shape constant {values})"
            )
    return found


def _small_int_constants(graph: onnx.GraphProto) -> dict[str, list[int]]:
    """Values of the graph's 1-D integer constants of up to 8 elements (initializers and
    Constant nodes), by name."""
    from onnx import TensorProto, numpy_helper

    tensors = {t.name: t for t in graph.initializer}
    values: dict[str, list[int]] = {}
    for node in graph.node:
        if node.op_type != "Constant":
            continue
        for attr in node.attribute:
            if attr.name == "value":
                tensors[node.output[0]] = attr.t
            elif attr.name == "value_ints":
                values[node.output[0]] = list(attr.ints)
    for name, tensor in tensors.items():
        small = len(tensor.dims) <= 1 and all(d <= 8 for d in tensor.dims)
        if small and tensor.data_type in (TensorProto.INT64, TensorProto.INT32):
            values[name] = [int(v) for v in numpy_helper.to_array(tensor).reshape(-1)]
    return values


def save_onnx(model: onnx.ModelProto, path: Path) -> list[str]:
    """Save the final artifact; weights go to ``<name>.data`` when they are large.

    Large means over `EXTERNAL_DATA_THRESHOLD` bytes of weights, or weights already external
    (a model `load_onnx` left on disk): those are copied from their files a chunk at a time,
    so a model of any size is saved in the memory of its graph.

    Returns:
        Relative paths of external data files written (empty for a single file).
    """
    import onnx
    from onnx.external_data_helper import uses_external_data

    from edgeport.inspection import all_tensors

    data_name = f"{path.name}.data"
    external = any(uses_external_data(t) for t in all_tensors(model))
    if not external and weight_bytes(model) <= EXTERNAL_DATA_THRESHOLD:
        (path.parent / data_name).unlink(missing_ok=True)
        onnx.save_model(model, str(path))
        return []
    write_external_data(model, path.parent / data_name)
    onnx.save_model(model, str(path))
    for tensor in all_tensors(model):  # the proto in memory still knows where its data is
        if uses_external_data(tensor):
            _set_location(tensor, path.parent, data_name)
    return [data_name]


# Tensors of at least ALIGN_FROM bytes start at a multiple of ALIGNMENT in the data file, so that
# a runtime can map them page-aligned (64 KiB: the largest alignment ONNX's external-data format
# allows, and Windows' mapping granularity).
ALIGNMENT = 64 * 1024
ALIGN_FROM = 1 << 20
_COPY_CHUNK = 16 << 20


def write_external_data(model: onnx.ModelProto, data_path: Path, *, min_bytes: int = 1024) -> None:
    """Write the model's tensor data into one file, ``data_path``, and point the tensors at it.

    Tensors already external (initializers or attributes) are copied from their files, found
    through their ``basepath`` entry (else ``data_path``'s directory), at most 16 MiB in memory
    at a time; initializers in memory of ``min_bytes`` or more (default 1 KiB) are moved out of
    the proto. The file is written under a temporary name and renamed over ``data_path``, so a
    model may be re-saved over the file its data comes from, and old data is never appended to.
    """
    from onnx.external_data_helper import (
        _get_attribute_tensors,
        _get_initializer_tensors,
        uses_external_data,
    )

    partial = data_path.with_name(f"{data_path.name}.partial")
    with open(partial, "wb") as out:
        for tensor in _get_initializer_tensors(model):
            if uses_external_data(tensor):
                _copy_tensor(tensor, out, data_path)
            elif tensor.HasField("raw_data") and len(tensor.raw_data) >= min_bytes:
                start = _pad(out, tensor)
                out.write(tensor.raw_data)
                tensor.ClearField("raw_data")
                _point_at(tensor, data_path.name, start, out.tell() - start)
        for tensor in _get_attribute_tensors(model):
            if uses_external_data(tensor):
                _copy_tensor(tensor, out, data_path)
    os.replace(partial, data_path)


def _copy_tensor(tensor: onnx.TensorProto, out: BinaryIO, data_path: Path) -> None:
    """Append an external tensor's bytes to ``out`` and point it there."""
    info = _external_info(tensor)
    source = Path(info.get("basepath") or data_path.parent) / info["location"]
    start = _pad(out, tensor)
    with open(source, "rb") as f:
        offset = int(info.get("offset", 0))
        f.seek(offset)
        left = int(info["length"]) if "length" in info else os.fstat(f.fileno()).st_size - offset
        while left > 0:
            chunk = f.read(min(left, _COPY_CHUNK))
            if not chunk:
                raise EdgeportError(
                    f"external data file {str(source)!r} ends {left} bytes before tensor "
                    f"{tensor.name!r} does",
                    fix="the exporter's output is incomplete; check the disk has room, re-export",
                )
            out.write(chunk)
            left -= len(chunk)
    _point_at(tensor, data_path.name, start, out.tell() - start)


def _external_info(tensor: onnx.TensorProto) -> dict[str, str]:
    return {e.key: e.value for e in tensor.external_data}


def _pad(out: BinaryIO, tensor: onnx.TensorProto) -> int:
    """Move ``out`` to the next aligned offset when ``tensor`` is large; the offset."""
    from edgeport.inspection import tensor_bytes

    offset = out.tell()
    if tensor_bytes(tensor) >= ALIGN_FROM and offset % ALIGNMENT:
        out.write(b"\0" * (ALIGNMENT - offset % ALIGNMENT))
    return out.tell()


def _point_at(tensor: onnx.TensorProto, location: str, offset: int, length: int) -> None:
    import onnx

    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        tensor.external_data.add(key=key, value=str(value))


def _set_location(tensor: onnx.TensorProto, base: Path, location: str) -> None:
    """Keep ``tensor``'s offset and length; its data is at ``base / location``."""
    info = {**_external_info(tensor), "location": location, "basepath": str(base.resolve())}
    del tensor.external_data[:]
    for key, value in info.items():
        tensor.external_data.add(key=key, value=value)
