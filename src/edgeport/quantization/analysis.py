"""Looking at quantized graphs: structure counts, per-tensor quantization error, accuracy.

`rank_tensors` measures, for every activation that the QDQ graph quantizes, the SQNR between the
float tensor and its QuantizeLinear→DequantizeLinear round trip on real samples: the tensors that
lose most are where keeping float pays off first.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.benchmarks.parity import compare
from edgeport.data import SampleSet

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
class TensorError:
    """Quantization error of one activation tensor."""

    tensor: str
    sqnr_db: float
    nodes: tuple[str, ...]  # producer and consumers: keeping these float removes the QDQ pair


def rank_tensors(qdq_path: Path, samples: SampleSet, *, limit: int = 16) -> list[TensorError]:
    """Activations of a QDQ model, worst SQNR (float vs Q→DQ round trip) first."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(qdq_path))
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    pairs = []
    ranges: dict[str, tuple[float, float]] = {}
    for q in (n for n in graph.node if n.op_type == "QuantizeLinear"):
        source = q.input[0]
        if source in inits:
            continue
        for dq in (c for c in consumers[q.output[0]] if c.op_type == "DequantizeLinear"):
            pairs.append((source, dq.output[0]))
            ranges[source] = _representable(q, graph)
            break
    if not pairs:
        return []
    existing = {o.name for o in graph.output}
    for name in {n for pair in pairs for n in pair} - existing:
        graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    collected: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    for i, feeds in enumerate(samples.feeds(1)):
        if i >= limit:
            break
        for name, value in zip(names, session.run(names, feeds), strict=True):
            collected[name].append(np.asarray(value, dtype=np.float64))
    errors = []
    for source, dq_out in pairs:
        # Against the float tensor clipped to the representable range: a Relu/Clip that the
        # quantizer folded into the range is intended, not error.
        low, high = ranges[source]
        reference = np.clip(np.concatenate(collected[source]), low, high)
        sqnr = channel_sqnr_db(np.concatenate(collected[dq_out]), reference)
        nodes = [producers[source].name] if source in producers else []
        nodes += [c.name for c in _float_consumers(dq_out, consumers)]
        errors.append(TensorError(source, sqnr, tuple(dict.fromkeys(nodes))))
    return sorted(errors, key=lambda e: e.sqnr_db)


def channel_sqnr_db(candidate: np.ndarray, reference: np.ndarray) -> float:
    """Mean over channels (axis 1) of each channel's SQNR in dB, capped at 100 dB.

    Whole-tensor SQNR hides a quantization range that one large channel dominates (the others
    round to zero but carry little energy); per channel, the lost channels show.
    """
    if reference.ndim < 2:
        candidate, reference = candidate.reshape(-1, 1), reference.reshape(-1, 1)
    ref = np.moveaxis(reference, 1, 0).reshape(reference.shape[1], -1)
    cand = np.moveaxis(candidate, 1, 0).reshape(candidate.shape[1], -1)
    signal = (ref**2).sum(axis=1)
    noise = ((cand - ref) ** 2).sum(axis=1)
    live = signal > 1e-12 * max(float(signal.max()), 1e-30)
    ratios = signal[live] / np.maximum(noise[live], signal[live] * 1e-10)
    return float(np.mean(np.minimum(10 * np.log10(ratios), 100.0))) if live.any() else 100.0


def _representable(q: Any, graph: Any) -> tuple[float, float]:
    """Float range a QuantizeLinear can represent (per-tensor scale and zero point)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    if len(q.input) < 3 or q.input[1] not in inits or q.input[2] not in inits:
        return -np.inf, np.inf
    scale = numpy_helper.to_array(inits[q.input[1]]).astype(np.float64)
    zero = numpy_helper.to_array(inits[q.input[2]])
    info = np.iinfo(zero.dtype)
    if scale.size != 1:
        return -np.inf, np.inf
    z = float(zero.reshape(-1)[0])
    return float((info.min - z) * scale.reshape(-1)[0]), float(
        (info.max - z) * scale.reshape(-1)[0]
    )


def _float_consumers(name: str, consumers: dict[str, list[Any]]) -> list[Any]:
    return [c for c in consumers[name] if c.op_type not in QDQ_OPS]


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
    """MACs per op type (Conv, Gemm, MatMul, ...) at the given symbolic sizes."""
    import onnx

    from edgeport.inspection import macs_by_op

    return macs_by_op(onnx.load(str(model_path)), sizes)
