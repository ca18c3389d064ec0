"""The quantization methods: ONNX Runtime dynamic and static (QDQ or QOperator) quantization.

Types are chosen for the CPU: with VNNI (AVX512-VNNI or AVX-VNNI) u8 activations × s8 weights is
the fast path; on AVX2/AVX-512 without VNNI the same types need ``reduce_range`` (7-bit weights)
to avoid saturation in the u8×s8 multiply (ONNX Runtime's quantization guide); ARM uses u8/s8 too.

A source over protobuf's 2 GiB limit is quantized with ONNX Runtime's external-data format (its
intermediate models cannot be one protobuf message); the int8 result, a quarter of the weights,
is then written back as the one file a bundle artifact is.
"""

from __future__ import annotations

import contextlib
import enum
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeport.data import SampleSet
from edgeport.errors import EdgeportError, short_message
from edgeport.quantization.calibration import SampleReader

log = logging.getLogger(__name__)

# Ops ONNX Runtime's dynamic quantization speeds up. Gemm is not in its dynamic registry, and
# Conv is slower quantized dynamically (activations re-quantized per run).
DYNAMIC_OPS = ("MatMul", "Attention", "LSTM", "GRU")


class CalibrationMethod(enum.Enum):
    """Calibration methods (ONNX Runtime's MinMax, Entropy, Percentile)."""

    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


class QuantFormat(enum.Enum):
    """QDQ (QuantizeLinear/DequantizeLinear pairs; the default) or QOperator (QLinear* ops)."""

    QDQ = "qdq"
    QOPERATOR = "qoperator"


@dataclass(frozen=True)
class CpuTypes:
    """Activation/weight types for this CPU, and why."""

    activation: str
    weight: str
    reduce_range: bool
    reason: str


def choose_types(isa: Sequence[str], machine: str) -> CpuTypes:
    """u8 activations, s8 weights; reduce_range on x86 without VNNI (saturation)."""
    flags = set(isa)
    if flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        return CpuTypes("uint8", "int8", False, "VNNI: u8×s8 dot products without saturation")
    if machine in ("x86_64", "AMD64", "i386") and flags & {"avx2", "avx512f"}:
        return CpuTypes(
            "uint8", "int8", True, "AVX2/AVX-512 without VNNI: reduce_range avoids u8×s8 saturation"
        )
    return CpuTypes("uint8", "int8", False, f"{machine}: u8×s8 (no x86 saturation issue)")


def quantize_dynamic_onnx(
    src: Path,
    dst: Path,
    *,
    op_types: Sequence[str] = DYNAMIC_OPS,
    nodes_to_exclude: Sequence[str] = (),
    per_channel: bool = False,
    reduce_range: bool = False,
) -> dict[str, Any]:
    """ONNX Runtime dynamic quantization (weights int8, activations quantized at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgeport.inspection import over_protobuf_limit

    large = over_protobuf_limit(src)
    with _quiet():
        try:
            quantize_dynamic(
                str(src),
                str(dst),
                op_types_to_quantize=list(op_types),
                nodes_to_exclude=list(nodes_to_exclude),
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
                use_external_data_format=large,
            )
        except Exception as exc:
            raise EdgeportError(
                f"dynamic quantization of {str(src)!r} failed: {type(exc).__name__}: "
                f"{short_message(exc)}",
                fix="exclude the failing node with --exclude-node, or ship the fp32 artifact",
            ) from exc
    if large:
        inline_external_data(dst)
    return {
        "method": "dynamic",
        "op_types": list(op_types),
        "per_channel": per_channel,
        "reduce_range": reduce_range,
        "weight_type": "int8",
        "nodes_excluded": list(nodes_to_exclude),
    }


def quantize_static_onnx(
    src: Path,
    dst: Path,
    samples: SampleSet,
    *,
    types: CpuTypes,
    method: CalibrationMethod = CalibrationMethod.MINMAX,
    fmt: QuantFormat = QuantFormat.QDQ,
    per_channel: bool = True,
    nodes_to_exclude: Sequence[str] = (),
    op_types_to_exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """ONNX Runtime static quantization calibrated on ``samples``."""
    import onnx
    from onnxruntime import quantization as q

    from edgeport.inspection import over_protobuf_limit

    quant_type = {"uint8": q.QuantType.QUInt8, "int8": q.QuantType.QInt8}
    ops = _op_types_present(onnx.load(str(src), load_external_data=False), op_types_to_exclude)
    large = over_protobuf_limit(src)
    with _quiet():
        try:
            q.quantize_static(
                str(src),
                str(dst),
                SampleReader(samples),
                quant_format=q.QuantFormat.QDQ
                if fmt is QuantFormat.QDQ
                else q.QuantFormat.QOperator,
                op_types_to_quantize=ops,
                per_channel=per_channel,
                reduce_range=types.reduce_range,
                activation_type=quant_type[types.activation],
                weight_type=quant_type[types.weight],
                nodes_to_exclude=list(nodes_to_exclude),
                calibrate_method={
                    CalibrationMethod.MINMAX: q.CalibrationMethod.MinMax,
                    CalibrationMethod.ENTROPY: q.CalibrationMethod.Entropy,
                    CalibrationMethod.PERCENTILE: q.CalibrationMethod.Percentile,
                }[method],
                extra_options={"CalibMovingAverage": False},
                use_external_data_format=large,
            )
        except Exception as exc:
            raise EdgeportError(
                f"static quantization failed: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300]}",
                fix="try --method minmax, exclude the failing op type with --exclude-op, or "
                "--mode dynamic",
            ) from exc
    if large:
        inline_external_data(dst)
    return {
        "method": "static",
        "format": fmt.value,
        "calibration": method.value,
        "per_channel": per_channel,
        "activation_type": types.activation,
        "weight_type": types.weight,
        "reduce_range": types.reduce_range,
        "types_reason": types.reason,
        "nodes_excluded": list(nodes_to_exclude),
        "op_types_excluded": list(op_types_to_exclude),
    }


def inline_external_data(path: Path) -> None:
    """Rewrite the ONNX file at ``path`` as one file, its external data read in and removed.

    ONNX Runtime writes a quantized model with external data when its source was; an int8
    model is about a quarter of its float weights, and a bundle artifact is one file.

    Raises:
        EdgeportError: The model with its data would be over protobuf's 2 GiB limit.
    """
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    from edgeport.bundle import check_external_data
    from edgeport.inspection import PROTOBUF_LIMIT, load_graph, proto_bytes

    locations = check_external_data(path)
    model = load_graph(path)
    size = proto_bytes(model)
    if size > PROTOBUF_LIMIT:
        raise EdgeportError(
            f"the quantized model is {size / 2**30:.2f} GiB, over the 2 GiB that one ONNX file "
            "can hold, and quantize writes its artifact as one file",
            expected="an int8 model under 2 GiB (float weights under about 8 GiB)",
            fix="quantize a smaller model or ship the fp32 artifact; int8 artifacts with "
            "external data are not supported yet",
        )
    load_external_data_for_model(model, str(path.parent))
    onnx.save_model(model, str(path))
    for location in locations:
        (path.parent / location).unlink(missing_ok=True)


def _op_types_present(model: Any, exclude: Sequence[str]) -> list[str]:
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    supported = set(QDQRegistry) | set(QLinearOpsRegistry)
    present = {n.op_type for n in model.graph.node}
    return sorted((present & supported) - set(exclude))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs advice on the root logger
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
