"""ONNX Runtime's quantization pre-processing, with fallbacks that never fail the quantization.

``quant_pre_process`` runs symbolic shape inference, ONNX shape inference and graph optimization.
Symbolic shape inference gives up on some transformer graphs; then we retry without it, then
without the optimization, and finally use the model as is. Each attempt's failure is recorded.

A model over protobuf's 2 GiB limit goes through the path-based steps only: symbolic shape
inference takes the model as one protobuf message and is skipped (recorded under ``skipped``);
the optimizer and ONNX shape inference read and write external data (``dst``'s ``.data``).
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# (label, skip_symbolic_shape, skip_optimization), from the full step to the lightest.
VARIANTS = (
    ("full", False, False),
    ("no-symbolic-shape", True, False),
    ("shape-inference-only", True, True),
)
SYMBOLIC_OVER_LIMIT = (
    "ONNX Runtime's symbolic shape inference holds the model as one protobuf message, and "
    "this one is over protobuf's 2 GiB limit"
)


def preprocess(src: Path, dst: Path) -> dict[str, Any]:
    """Pre-process ``src`` into ``dst``; returns the record (variant used, failures, skipped).

    When every variant fails, ``dst`` is not written and ``variant`` is ``"none"``.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgeport.inspection import over_protobuf_limit

    # ONNX Runtime's symbolic shape inference saves "sym_shape_infer_temp.onnx" (and its external
    # data) into the working directory when it gives up: it runs from dst's scratch directory.
    src, dst = src.resolve(), dst.resolve()
    large = over_protobuf_limit(src)
    external: dict[str, Any] = {}
    if large:
        external = {
            "save_as_external_data": True,
            "all_tensors_to_one_file": True,
            "external_data_location": f"{dst.name}.data",
        }
    failures: list[str] = []
    skipped: list[str] = []
    for label, skip_symbolic, skip_optimization in VARIANTS:
        if large and not skip_symbolic:
            skipped.append(f"{label}: {SYMBOLIC_OVER_LIMIT}")
            continue
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
                contextlib.chdir(dst.parent),  # its temp files land here, not in the user's cwd
            ):
                quant_pre_process(
                    str(src),
                    str(dst),
                    skip_symbolic_shape=skip_symbolic,
                    skip_optimization=skip_optimization,
                    **external,
                )
            return _record(label, failures, skipped)
        except Exception as exc:
            first = str(exc).strip().splitlines()
            failures.append(f"{label}: {type(exc).__name__}: {first[0][:200] if first else ''}")
            log.info("quantization pre-processing (%s) failed: %s", label, exc)
    return _record("none", failures, skipped)


def _record(variant: str, failures: list[str], skipped: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {"variant": variant, "failures": failures}
    if skipped:
        record["skipped"] = skipped
    return record
