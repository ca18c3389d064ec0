"""onnxsim simplification that never costs correctness or dynamic dims.

Simplification is skipped, with the reason recorded, when the model's weights are over 2 GiB or
were left on disk by `load_onnx` (onnxsim serialises the whole model through protobuf, which
stops at 2 GiB), when onnxsim fails, or when it fixed a dim the user declared symbolic. The
caller still checks parity of the result and can fall back to the unsimplified graph.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgeport.exporter.onnx import fixed_declared_dims, weight_bytes
from edgeport.inspection import external_bytes
from edgeport.spec import TensorSpec

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

# Weights onnxsim can take: it serialises the model into one protobuf message.
SIZE_LIMIT = 2 * 1024**3


def skip_reason(model: onnx.ModelProto) -> str | None:
    """Why onnxsim cannot take ``model`` because of its size; None when it can.

    Over `SIZE_LIMIT` bytes of weights, or any weights still in external data (`load_onnx`
    leaves them on disk when the model would not fit in one protobuf message).
    """
    size = weight_bytes(model)
    if size > SIZE_LIMIT:
        return (
            f"skipped: weights are {size / 2**20:.1f} MiB, over the {SIZE_LIMIT / 2**20:.1f} MiB "
            "that onnxsim can serialise"
        )
    on_disk = external_bytes(model)
    if on_disk:
        return (
            f"skipped: {on_disk / 2**20:.1f} MiB of weights stay in external data (with them "
            "the model is over protobuf's 2 GiB message limit), and onnxsim needs the whole "
            "model in one message"
        )
    return None


def simplify_onnx(
    model: onnx.ModelProto, inputs: Sequence[TensorSpec]
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """Simplify ``model`` with onnxsim when that is safe.

    Returns:
        The model to use (simplified or the original) and the record for the manifest:
        ``{"applied": bool, "reason": str, "nodes_before": int, "nodes_after": int}``.
    """
    record: dict[str, Any] = {"applied": False, "nodes_before": len(model.graph.node)}
    too_large = skip_reason(model)
    if too_large is not None:
        record["reason"] = too_large
        log.info("onnxsim %s", too_large)
        return model, record
    try:
        import onnxsim
    except ImportError:
        record["reason"] = "skipped: onnxsim is not installed"
        return model, record
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            simplified, _ = onnxsim.simplify(model, check_n=0)
    except Exception as exc:
        record["reason"] = f"skipped: onnxsim failed: {type(exc).__name__}: {str(exc)[:300]}"
        log.warning("onnxsim failed; keeping the unsimplified graph: %s", exc)
        return model, record
    fixed = fixed_declared_dims(simplified, inputs)
    if fixed:
        record["reason"] = "skipped: onnxsim fixed declared dynamic dims: " + "; ".join(fixed)
        return model, record
    record.update(applied=True, reason="ok", nodes_after=len(simplified.graph.node))
    return simplified, record
