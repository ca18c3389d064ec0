"""Looking at quantized graphs: structure counts, per-tensor quantization error, accuracy.

`rank_sensitivity` measures, for every quantized activation and weight, how much of the output's
error goes away when that tensor alone stays float; the budget loop keeps the top of that list in
float.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.data import SampleSet
from edgeport.parity import compare

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
INTEGER_OPS = (
    "QLinearConv",
    "QLinearMatMul",
    "MatMulInteger",
    "ConvInteger",
    "QLinearAdd",
    "QLinearMul",
    "QLinearGlobalAveragePool",
    "QGemm",
    "DynamicQuantizeMatMul",
    "QAttention",
    "DynamicQuantizeLSTM",
)
LAYOUT_OPS = (
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Shape",
    "Gather",
    "Concat",
    "Slice",
    "Constant",
    "Identity",
    "Cast",
    "Split",
)


def structure(model_path: Path) -> dict[str, Any]:
    """Counts of Q/DQ and integer ops, compute ops left in float, initializer dtypes."""
    import onnx
    from onnx import helper

    model = onnx.load(str(model_path), load_external_data=False)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    from_dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    float_ops = collections.Counter(
        n.op_type
        for n in model.graph.node
        if n.op_type not in QDQ_OPS + INTEGER_OPS + LAYOUT_OPS
        and not any(i in from_dq for i in n.input)
    )
    dtypes = collections.Counter(
        str(helper.tensor_dtype_to_np_dtype(t.data_type)) for t in model.graph.initializer
    )
    return {
        "quantize_linear": ops.get("QuantizeLinear", 0),
        "dequantize_linear": ops.get("DequantizeLinear", 0),
        "integer_ops": {k: v for k, v in ops.items() if k in INTEGER_OPS},
        "float_ops": dict(float_ops.most_common()),
        "initializer_dtypes": dict(dtypes.most_common()),
    }


@dataclass(frozen=True)
class Sensitivity:
    """How much of the output's error goes away when one quantized tensor stays float."""

    kind: str  # "activation" or "weight"
    tensor: str
    nodes: tuple[str, ...]  # nodes to exclude from quantization to keep this tensor float
    cosine_gain: float  # output cosine with this tensor in float, minus the all-int8 cosine


def rank_sensitivity(
    qdq_path: Path,
    float_path: Path,
    samples: SampleSet,
    reference: dict[str, np.ndarray],
    *,
    limit: int = 32,
) -> list[Sensitivity]:
    """Quantized tensors of a QDQ model, the one whose float version helps the output most first.

    Each tensor is measured on its own, inside the otherwise int8 model: an activation's
    QuantizeLinear→DequantizeLinear is bypassed for all its consumers; a node's weights (and
    bias) are replaced by the float ones from ``float_path``, the model that was quantized. The
    whole model's output is compared with ``reference`` (fp32 outputs for ``samples``, in
    order). This ranks by effect on the output rather than by local error: an outlier channel
    that crushes an activation's range shows, and so does an early layer whose small error every
    later layer carries along.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(qdq_path))
    graph = model.graph
    float_weights = FloatWeights(float_path)
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    inits = {t.name for t in graph.initializer}
    count = min(limit, len(samples))
    subset = SampleSet(samples.source, {k: v[:count] for k, v in samples.arrays.items()})
    ref = {k: v[:count] for k, v in reference.items()}
    options = ort.SessionOptions()
    options.log_severity_level = 3

    def cosine() -> float:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        got = run_all(
            lambda feeds: dict(zip(names, session.run(names, feeds), strict=True)), subset, 1
        )
        return min(compare(k, got[k], v)["cosine"] for k, v in ref.items())

    def measure(edits: list[tuple[Any, int, str]], weights: list[str]) -> float:
        """Output cosine with ``node.input[i] = name`` edits and float weights added."""
        saved = [(node, i, node.input[i]) for node, i, _ in edits]
        for name in weights:
            tensor = float_weights.read(name)
            tensor.name = f"{name}.edgeport_float"  # a DequantizeLinear output may hold the name
            graph.initializer.append(tensor)
        for node, i, name in edits:
            node.input[i] = name
        try:
            return cosine()
        finally:
            for node, i, name in saved:
                node.input[i] = name
            for _ in weights:
                del graph.initializer[-1]

    base = cosine()
    ranked = []
    for q in [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]:
        source = q.input[0]
        edits = [
            (c, i, source)
            for dq in consumers[q.output[0]]
            if dq.op_type == "DequantizeLinear"
            for c in consumers[dq.output[0]]
            for i, name in enumerate(c.input)
            if name == dq.output[0]
        ]
        if not edits:
            continue
        nodes = [producers[source].name] if source in producers else []
        nodes += [c.name for c, _, _ in edits if c.op_type not in QDQ_OPS]
        gain = measure(edits, []) - base
        ranked.append(Sensitivity("activation", source, tuple(dict.fromkeys(nodes)), gain))
    for node in [n for n in graph.node if n.op_type not in QDQ_OPS]:
        weights = []
        for i, name in enumerate(node.input):
            dq = producers.get(name)
            if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
                continue
            original = dq.input[0].removesuffix("_quantized")
            if original in float_weights:
                weights.append((i, original))
        if weights:
            edits = [(node, i, f"{w}.edgeport_float") for i, w in weights]
            gain = measure(edits, [w for _, w in weights]) - base
            tensor = next((w for i, w in weights if i == 1), weights[0][1])
            ranked.append(Sensitivity("weight", tensor, (node.name,), gain))
    return sorted(ranked, key=lambda s: -s.cosine_gain)


class FloatWeights:
    """The initializers of a float model, read from disk one at a time when asked for.

    Only the graph is loaded up front (`load_graph`), so ranking the weights of a large model
    holds one node's float weights at a time, not a second copy of the model.
    """

    def __init__(self, path: Path) -> None:
        from edgeport.bundle import check_external_data
        from edgeport.inspection import load_graph

        check_external_data(path)
        self._dir = path.parent
        self._tensors = {t.name: t for t in load_graph(path).graph.initializer}

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def read(self, name: str) -> Any:
        """A copy of initializer ``name`` with its data in memory."""
        import onnx
        from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

        tensor = onnx.TensorProto()
        tensor.CopyFrom(self._tensors[name])
        if uses_external_data(tensor):
            load_external_data_for_tensor(tensor, str(self._dir))
        return tensor


@dataclass
class Evaluation:
    """int8 vs fp32 on evaluation samples."""

    samples: int
    cosine: float
    top1_agreement: float | None
    accuracy_fp32: float | None = None
    accuracy_int8: float | None = None

    @property
    def drop_pp(self) -> float | None:
        """Accuracy drop in percentage points (labels), else top-1 disagreement in points."""
        if self.accuracy_fp32 is not None and self.accuracy_int8 is not None:
            return (self.accuracy_fp32 - self.accuracy_int8) * 100
        if self.top1_agreement is not None:
            return (1 - self.top1_agreement) * 100
        return None

    def to_json(self) -> dict[str, Any]:
        """Manifest form."""
        return {
            "samples": self.samples,
            "cosine": self.cosine,
            "top1_agreement": self.top1_agreement,
            "accuracy_fp32": self.accuracy_fp32,
            "accuracy_int8": self.accuracy_int8,
            "drop_pp": self.drop_pp,
        }


Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def run_all(run: Runner, samples: SampleSet, batch: int) -> dict[str, np.ndarray]:
    """Outputs of ``run`` over every sample, concatenated along axis 0."""
    parts: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    for feeds in samples.feeds(batch):
        for name, value in run(feeds).items():
            parts[name].append(value)
    return {k: np.concatenate(v) for k, v in parts.items()}


def evaluate(
    reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], labels: np.ndarray | None
) -> Evaluation:
    """Cosine (worst output), top-1 agreement and, with labels, accuracy of both."""
    first = next(iter(reference))
    cosines = [compare(k, candidate[k], v)["cosine"] for k, v in reference.items()]
    ref, cand = reference[first], candidate[first]
    classifier = ref.ndim == 2 and ref.shape[1] >= 2
    evaluation = Evaluation(
        samples=len(ref),
        cosine=float(min(cosines)),
        top1_agreement=float(np.mean(ref.argmax(1) == cand.argmax(1))) if classifier else None,
    )
    if labels is not None and classifier:
        evaluation.accuracy_fp32 = float(np.mean(ref.argmax(1) == labels))
        evaluation.accuracy_int8 = float(np.mean(cand.argmax(1) == labels))
    return evaluation


def op_macs(model_path: Path, sizes: dict[str, int]) -> dict[str, int]:
    """MACs per op type (Conv, Gemm, MatMul, ...) at the given symbolic sizes, from the graph
    and its shapes (the weights are not read)."""
    from edgeport.inspection import load_graph, macs_by_op

    return macs_by_op(load_graph(model_path), sizes)
