"""ONNX's node test suite, run through raw onnxruntime and through edgeport's backend.

edgeport must pass every node test that raw ONNX Runtime passes: its validation, provider policy
and monitoring may never turn a model ONNX Runtime runs into one edgeport refuses.
"""

from __future__ import annotations

import io
import unittest
from typing import Any

import numpy as np
import onnx
import onnx.backend.test
import onnxruntime as ort
import pytest
from onnx.backend.base import Backend, BackendRep

from edgeport.runtime.onnx_backend import EdgeportBackend


class RawOrtRep(BackendRep):
    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session

    def run(self, inputs: Any, **kwargs: Any) -> list[Any]:
        names = [i.name for i in self.session.get_inputs()]
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        return list(self.session.run(None, dict(zip(names, inputs, strict=False))))


class RawOrtBackend(Backend):
    """The baseline: a bare InferenceSession, nothing else."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> RawOrtRep:
        options = ort.SessionOptions()
        options.log_severity_level = 4
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        return RawOrtRep(session)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


def run_node_suite(backend: type[Backend]) -> tuple[set[str], set[str]]:
    """(names of the CPU node tests that ran, names of those that passed)."""
    tests = onnx.backend.test.BackendTest(backend, backend.__name__)
    tests.include(r"^test_.*_cpu$")
    suite = unittest.TestSuite()
    for case in tests.test_cases.values():
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(case))
    names = {t.id().rsplit(".", 1)[-1] for t in suite}
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
    bad = {t.id().rsplit(".", 1)[-1] for t, _ in [*result.failures, *result.errors]}
    skipped = {t.id().rsplit(".", 1)[-1] for t, _ in result.skipped}  # filtered out (CUDA)
    ran = names - skipped
    return ran, ran - bad


@pytest.mark.slow
def test_edgeport_passes_every_node_test_raw_onnxruntime_passes() -> None:
    ort.set_default_logger_severity(4)
    raw_all, raw_pass = run_node_suite(RawOrtBackend)
    edge_all, edge_pass = run_node_suite(EdgeportBackend)
    assert raw_all == edge_all
    assert len(raw_pass) > 1000, "the node suite did not run"
    assert sorted(raw_pass - edge_pass) == []
    print(
        f"CPU node tests run: {len(raw_all)}; raw onnxruntime passes {len(raw_pass)}, "
        f"edgeport passes {len(edge_pass)}"
    )
