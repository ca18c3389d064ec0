"""ONNX Runtime's quantization pre-processing, with fallbacks that never fail the quantization.

``quant_pre_process`` runs symbolic shape inference, ONNX shape inference and graph optimization.
Symbolic shape inference gives up on some transformer graphs; then we retry without it, then
without the optimization, and finally use the model as is. Each attempt's failure is recorded.
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


def preprocess(src: Path, dst: Path) -> dict[str, Any]:
    """Pre-process ``src`` into ``dst``; returns the record (variant used, failures).

    When every variant fails, ``dst`` is not written and ``variant`` is ``"none"``.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    failures: list[str] = []
    for label, skip_symbolic, skip_optimization in VARIANTS:
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                quant_pre_process(
                    str(src),
                    str(dst),
                    skip_symbolic_shape=skip_symbolic,
                    skip_optimization=skip_optimization,
                )
            return {"variant": label, "failures": failures}
        except Exception as exc:
            first = str(exc).strip().splitlines()
            failures.append(f"{label}: {type(exc).__name__}: {first[0][:200] if first else ''}")
            log.info("quantization pre-processing (%s) failed: %s", label, exc)
    return {"variant": "none", "failures": failures}
