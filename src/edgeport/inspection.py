"""What is inside an ONNX file or a bundle: IO, op histogram, parameters, MACs, size.

MACs are counted from the graph with ONNX shape inference at concrete sizes (symbolic dims take
their example size, or 1): Conv/ConvTranspose, Gemm and MatMul, the ops that dominate CNNs and
transformers. Other ops count zero.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.bundle import check_external_data, load_bundle
from edgeport.errors import EdgeportError

if TYPE_CHECKING:
    import onnx


def summarize_onnx(path: str | Path, sizes: dict[str, int] | None = None) -> dict[str, Any]:
    """Summary of an ONNX file: inputs, outputs, op histogram, parameters, MACs, size (bytes).

    Args:
        path: The .onnx file (external data, if any, must sit inside its directory).
        sizes: Symbolic dim label → size for the MAC count (default 1 for every label).

    Raises:
        EdgeportError: The file is missing, truncated or not ONNX.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise EdgeportError(f"{str(path)!r} does not exist")
    data_files = check_external_data(path)
    model = onnx.load(str(path), load_external_data=True)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise EdgeportError(
            f"{str(path)!r} is not a valid ONNX model: {str(exc).splitlines()[0][:300]}",
            fix="the file may be truncated or corrupt; re-export it",
        ) from exc
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


def inspect_path(path: str | Path) -> dict[str, Any]:
    """`summarize_onnx` for a file; for a bundle, its manifest summary plus each ONNX artifact."""
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
                info.update(ops=summary["ops"], nodes=summary["nodes"])
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

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
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
