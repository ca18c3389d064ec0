from __future__ import annotations

import math

import numpy as np
import pytest

from edgeport.parity import PROFILES, Precision, check_output, compare


def test_metrics_on_known_values() -> None:
    ref = np.array([[1.0, 2.0, 3.0], [4.0, 0.5, 1.0]], dtype=np.float32)
    cand = ref + np.array([[0.0, 0.1, 0.0], [0.0, 0.0, -0.2]], dtype=np.float32)
    m = compare("y", cand, ref)
    assert m["max_abs_err"] == pytest.approx(0.2, rel=1e-5)
    assert m["max_rel_err"] == pytest.approx(0.2, rel=1e-5)  # 0.2 / |1.0|
    assert m["mean_abs_err"] == pytest.approx(0.3 / 6, rel=1e-5)
    expected_sqnr = 10 * math.log10(float((ref.astype(np.float64) ** 2).sum()) / 0.05)
    assert m["sqnr_db"] == pytest.approx(expected_sqnr, rel=1e-4)
    assert m["top1_agreement"] == 1.0
    assert "top5_agreement" not in m  # only 3 classes


def test_top1_agreement_counts_rows() -> None:
    ref = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    cand = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    assert compare("y", cand, ref)["top1_agreement"] == 0.75


def test_fp32_failure_names_output_metric_value_and_tolerance() -> None:
    ref = np.ones((2, 4), dtype=np.float32)
    cand = ref.copy()
    cand[1, 2] += 0.01
    result = check_output("logits", cand, ref, PROFILES[Precision.FP32])
    assert not result.passed
    assert result.failures == [
        "output 'logits': max_abs_err 0.01 exceeds tolerance atol 1e-05 + rtol 0.001·|ref| "
        "(worst at index (1, 2): got 1.01, reference 1; 1 of 8 elements out of tolerance)"
    ]


def test_fp32_passes_within_tolerance() -> None:
    ref = np.linspace(-1, 1, 100, dtype=np.float32).reshape(4, 25)
    result = check_output("y", ref * (1 + 5e-4), ref, PROFILES[Precision.FP32])
    assert result.passed, result.failures


def test_int8_profile_uses_cosine_and_top1() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((20, 10))
    noisy = ref + rng.standard_normal((20, 10)) * 0.5
    result = check_output("y", noisy, ref, PROFILES[Precision.INT8])
    assert not result.passed
    assert any("cosine" in f and "below tolerance 0.99" in f for f in result.failures)


def test_shape_mismatch_is_a_failure() -> None:
    result = check_output(
        "y", np.zeros((2, 3), np.float32), np.zeros((3, 3), np.float32), PROFILES[Precision.FP32]
    )
    assert result.failures == ["output 'y': got float32[2, 3], reference is float32[3, 3]"]
