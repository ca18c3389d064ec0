"""What is inside an ONNX file or a bundle: IO, op histogram, parameters, MACs, size.

MACs are counted from the graph with ONNX shape inference at concrete sizes (symbolic dims take
their example size, or 1): Conv/ConvTranspose, Gemm and MatMul, the ops that dominate CNNs and
transformers. Other ops count zero.

Nothing here reads a model's weights: the summary needs the graph, the initializers' dims and the
small constants that shape inference folds (`load_graph`), so a model over protobuf's 2 GiB limit
(weights in external data) is inspected in the memory its graph takes. The file is checked with
ONNX's path-based checker, which reads external data where it lies instead of serialising the
whole model into one message.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.bundle import check_external_data, load_bundle
from edgeport.errors import EdgeportError, short_message

if TYPE_CHECKING:
    import onnx

# protobuf serialises and parses one message of at most 2 GiB - 1 bytes: a model over it keeps
# its weights in external data, and only path-based ONNX APIs can handle it.
PROTOBUF_LIMIT = 2**31 - 1
# External tensors below this many bytes (shape constants, small biases) are read with the graph.
GRAPH_TENSOR_BYTES = 1024


def summarize_onnx(path: str | Path, sizes: dict[str, int] | None = None) -> dict[str, Any]:
    """Summary of an ONNX file: inputs, outputs, op histogram, parameters, MACs, size (bytes).

    Args:
        path: The .onnx file (external data, if any, must sit inside its directory).
        sizes: Symbolic dim label → size for the MAC count (default 1 for every label).

    Raises:
        EdgeportError: The file is missing, truncated or not ONNX.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeportError(f"{str(path)!r} does not exist")
    check_single_file_size(path)
    data_files = check_external_data(path)
    check_onnx_file(path)
    model = load_graph(path)
    size = path.stat().st_size + sum((path.parent / p).stat().st_size for p in data_files)
    return {
        "path": str(path),
        "size_bytes": size,
        "opset": {d.domain or "ai.onnx": d.version for d in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [_value_json(v) for v in _real_inputs(model)],
        "outputs": [_value_json(v) for v in model.graph.output],
        "ops": dict(collections.Counter(n.op_type for n in model.graph.node).most_common()),
        "nodes": len(model.graph.node),
        "parameters": count_parameters(model),
        "macs": count_macs(model, sizes or {}),
    }


def check_single_file_size(path: Path) -> None:
    """An ONNX file over protobuf's limit cannot be parsed: say so, instead of "corrupt".

    Raises:
        EdgeportError: ``path`` is more than 2 GiB - 1 bytes.
    """
    size = path.stat().st_size
    if size > PROTOBUF_LIMIT:
        raise EdgeportError(
            f"{str(path)!r} is {size / 2**30:.2f} GiB in one file, over the 2 GiB that protobuf "
            "(and so ONNX) can parse",
            expected="a model over 2 GiB saved with its weights in external data",
            fix="save it with onnx.save_model(model, path, save_as_external_data=True)",
        )


def check_onnx_file(path: Path) -> None:
    """ONNX's checker, given the path: external data is checked where it lies, so a model of
    any size is checked without its weights being loaded or serialised.

    Raises:
        EdgeportError: The checker refused the model.
    """
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise EdgeportError(
            f"{str(path)!r} is not a valid ONNX model: {short_message(exc)}",
            fix="the file may be truncated or corrupt; re-export it",
        ) from exc


def load_graph(path: str | Path) -> onnx.ModelProto:
    """The model at ``path`` without its large external weights.

    External tensors under `GRAPH_TENSOR_BYTES` (shape constants) are read in, so that shape
    inference can fold them; larger ones keep their external-data reference, relative to
    ``path``'s directory, and take no memory. Weights stored inside the .onnx file itself are
    read with it (such a file is under 2 GiB). Check locations with `check_external_data` first.
    """
    import onnx
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    for tensor in all_tensors(model):
        if uses_external_data(tensor) and tensor_bytes(tensor) < GRAPH_TENSOR_BYTES:
            load_external_data_for_tensor(tensor, str(path.parent))
    return model


def all_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """Every tensor of the model: initializers and attribute tensors, subgraphs included."""
    from onnx.external_data_helper import _get_all_tensors

    return list(_get_all_tensors(model))


def tensor_bytes(tensor: onnx.TensorProto) -> int:
    """Bytes of a tensor's data, read from its external-data ``length`` (or dims) when it is
    external, without loading it."""
    from onnx import helper, numpy_helper
    from onnx.external_data_helper import uses_external_data

    if uses_external_data(tensor):
        info = {e.key: e.value for e in tensor.external_data}
        if "length" in info:
            return int(info["length"])
        itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        return math.prod(tensor.dims) * itemsize
    if tensor.HasField("raw_data"):
        return len(tensor.raw_data)
    return int(numpy_helper.to_array(tensor).nbytes)


def external_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the tensors that are still in external data (not loaded)."""
    from onnx.external_data_helper import uses_external_data

    return sum(tensor_bytes(t) for t in all_tensors(model) if uses_external_data(t))


def proto_bytes(model: onnx.ModelProto) -> int:
    """Bytes the model would take as one protobuf message, its external data read in."""
    return model.ByteSize() + external_bytes(model)


def over_protobuf_limit(path: str | Path) -> bool:
    """Whether the ONNX model at ``path``, its external data read in, would be over protobuf's
    limit for one message (`PROTOBUF_LIMIT`): then only path-based APIs can handle it."""
    return proto_bytes(load_graph(path)) > PROTOBUF_LIMIT


def inspect_path(path: str | Path) -> dict[str, Any]:
    """`summarize_onnx` for a file; for a bundle, its manifest summary plus each ONNX artifact
    (ops, nodes, and its size with its external data)."""
    path = Path(path)
    if path.is_dir():
        bundle = load_bundle(path, check_hashes=False)
        manifest = bundle.manifest
        artifacts = {}
        for name, entry in bundle.artifacts.items():
            info = {k: entry.get(k) for k in ("path", "format", "precision")}
            info["size_bytes"] = bundle.size_of(name)
            if entry["format"] == "onnx":
                summary = summarize_onnx(bundle.path_of(name))
                info.update(
                    size_bytes=summary["size_bytes"], ops=summary["ops"], nodes=summary["nodes"]
                )
            artifacts[name] = info
        return {
            "bundle": str(path),
            "model": manifest.get("model") or {},
            "inputs": manifest.get("inputs", []),
            "outputs": manifest.get("outputs", []),
            "artifacts": artifacts,
        }
    return summarize_onnx(path)


def _real_inputs(model: onnx.ModelProto) -> list[Any]:
    inits = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def _value_json(value: Any) -> dict[str, Any]:
    from onnx import helper

    tensor_type = value.type.tensor_type
    shape: list[int | str | None] = []
    for d in tensor_type.shape.dim:
        shape.append(
            d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") else None)
        )
    dtype = str(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    return {"name": value.name, "dtype": dtype, "shape": shape}


def count_parameters(model: onnx.ModelProto) -> int:
    """Number of elements in all initializers."""
    return int(sum(math.prod(t.dims) for t in model.graph.initializer))


def count_macs(model: onnx.ModelProto, sizes: dict[str, int]) -> int:
    """Multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul at the given sizes."""
    return sum(macs_by_op(model, sizes).values())


def macs_by_op(model: onnx.ModelProto, sizes: dict[str, int]) -> dict[str, int]:
    """MACs per op type (only op types that have any) at the given symbolic sizes."""
    import onnx

    fixed = shapes_only(model)
    for value in fixed.graph.input:
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param:
                label = d.dim_param
                d.Clear()
                d.dim_value = sizes.get(label, 1)
    del fixed.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, strict_mode=False, data_prop=True)
    except Exception:
        return {}
    shapes = _known_shapes(inferred)
    per_op: dict[str, int] = collections.Counter()
    for node in inferred.graph.node:
        per_op[node.op_type] += _node_macs(node, shapes)
    return {op: int(macs) for op, macs in per_op.items() if macs}


def shapes_only(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose main-graph initializers of `GRAPH_TENSOR_BYTES` or more keep
    their dims and type but no data: what shape inference needs, in the memory of the graph
    (a copy with its weights could not even be serialised past 2 GiB)."""
    import onnx

    graph = model.graph
    copy = onnx.ModelProto(**{f.name: v for f, v in model.ListFields() if f.name != "graph"})
    copy.graph.CopyFrom(
        onnx.GraphProto(**{f.name: v for f, v in graph.ListFields() if f.name != "initializer"})
    )
    for tensor in graph.initializer:
        if tensor_bytes(tensor) < GRAPH_TENSOR_BYTES:
            copy.graph.initializer.append(tensor)
            continue
        stub = copy.graph.initializer.add(
            name=tensor.name, dims=tensor.dims, data_type=tensor.data_type
        )
        stub.data_location = onnx.TensorProto.EXTERNAL
        stub.external_data.add(key="location", value="not-loaded")
    return copy


def _known_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    return shapes


def _node_macs(node: Any, shapes: dict[str, list[int]]) -> int:
    ins = [shapes.get(name) for name in node.input]
    out = shapes.get(node.output[0]) if node.output else None
    if node.op_type == "Conv" and out and len(ins) > 1 and ins[1]:
        weight = ins[1]  # [Cout, Cin/groups, k...]
        return math.prod(out) * math.prod(weight[1:])
    if node.op_type == "ConvTranspose" and ins[0] and len(ins) > 1 and ins[1]:
        weight = ins[1]  # [Cin, Cout/groups, k...]
        return math.prod(ins[0]) * math.prod(weight[1:])
    if node.op_type == "Gemm" and out and ins[0]:
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)
        k = ins[0][0] if trans_a else ins[0][-1]
        return math.prod(out) * k
    if node.op_type == "MatMul" and out and ins[0]:
        return math.prod(out) * ins[0][-1]
    return 0
