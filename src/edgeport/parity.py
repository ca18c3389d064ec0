"""Parity metrics and tolerance profiles (docs/design.md §4).

Reference is eager PyTorch in ``eval()`` on the golden inputs. Per output we compute max abs
error, max rel error, mean abs error, cosine similarity, SQNR (dB) and, for classifier-shaped
outputs (``[N, C]``), top-1 / top-5 agreement. A tolerance profile decides pass/fail; a failure
names the output, the metric, the value and the tolerance.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeport.errors import CheckFailed

_EPS = 1e-12
# A reference whose largest value is under this many atols makes the elementwise check vacuous.
DEGENERATE_FACTOR = 100.0


class Precision(enum.Enum):
    """Numeric precision of an artifact; picks the default tolerance profile."""

    FP32 = "fp32"
    INT8 = "int8"


@dataclass(frozen=True)
class Tolerance:
    """Pass criteria for one output.

    Attributes:
        rtol: Relative tolerance (elementwise ``|a-r| <= atol + rtol*|r|``); None to skip.
        atol: Absolute tolerance for the elementwise check.
        min_cosine: Minimum cosine similarity; None to skip.
        min_top1: Minimum top-1 agreement for classifier outputs; None to skip.
    """

    rtol: float | None = None
    atol: float = 0.0
    min_cosine: float | None = None
    min_top1: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The tolerance as recorded in the manifest (unset criteria omitted)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


PROFILES: dict[Precision, Tolerance] = {
    Precision.FP32: Tolerance(rtol=1e-3, atol=1e-5),
    Precision.INT8: Tolerance(min_cosine=0.99, min_top1=0.95),
}


_LOOSER_WHEN_LARGER = ("rtol", "atol")


def effective_tolerance(
    precision: Precision | str,
    recorded: Mapping[str, float] | None = None,
    override: Mapping[str, float | None] | None = None,
) -> Tolerance:
    """The tolerance verify applies: a manifest may only tighten the precision's profile.

    Per criterion the tighter of profile and ``recorded`` wins (smaller ``rtol``/``atol``,
    larger ``min_cosine``/``min_top1``); a criterion only the manifest sets is kept. Values in
    ``override`` (the user's command line) replace the result and may be looser. libedgeport's
    ``effective_tolerance`` applies the same rule.
    """
    values: dict[str, float | None] = asdict(PROFILES[Precision(precision)])
    if values["rtol"] is None:
        values["atol"] = None  # a profile without an elementwise check sets no atol either
    for key, value in (recorded or {}).items():
        current = values.get(key)
        if current is None:
            values[key] = value
        elif key in _LOOSER_WHEN_LARGER:
            values[key] = min(current, value)
        else:
            values[key] = max(current, value)
    values.update({k: v for k, v in (override or {}).items() if v is not None})
    values["atol"] = values["atol"] or 0.0
    return Tolerance(**values)  # type: ignore[arg-type]


@dataclass
class OutputParity:
    """Metrics of one output against its reference, and the verdict."""

    name: str
    metrics: dict[str, float]
    tolerance: Tolerance
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every criterion of the tolerance holds."""
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        """Manifest form."""
        return {
            "metrics": self.metrics,
            "tolerance": self.tolerance.to_json(),
            "passed": self.passed,
            "failures": self.failures,
            "notes": self.notes,
        }


def compare(name: str, candidate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Parity metrics of ``candidate`` against ``reference`` (same shape)."""
    a = np.asarray(candidate, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    diff = np.abs(a - r)
    metrics: dict[str, float] = {
        "max_abs_err": float(diff.max(initial=0.0)),
        "max_rel_err": float((diff / np.maximum(np.abs(r), 1e-6)).max(initial=0.0)),
        "mean_abs_err": float(diff.mean()) if diff.size else 0.0,
        "cosine": _cosine(a, r),
        "sqnr_db": _sqnr_db(a, r),
        "ref_max_abs": float(np.abs(r).max(initial=0.0)),
    }
    if a.ndim == 2 and a.shape[1] >= 2 and a.shape[0] >= 1:
        metrics["top1_agreement"] = _topk_agreement(a, r, 1)
        if a.shape[1] >= 5:
            metrics["top5_agreement"] = _topk_agreement(a, r, 5)
    return metrics


def _cosine(a: np.ndarray, r: np.ndarray) -> float:
    na, nr = np.linalg.norm(a), np.linalg.norm(r)
    if na < _EPS and nr < _EPS:
        return 1.0
    return float(np.dot(a.ravel(), r.ravel()) / max(na * nr, _EPS))


def _sqnr_db(a: np.ndarray, r: np.ndarray) -> float:
    noise = float(np.sum((a - r) ** 2))
    signal = float(np.sum(r**2))
    if noise < _EPS:
        return float("inf")
    return float(10.0 * np.log10(max(signal, _EPS) / noise))


def _topk_agreement(a: np.ndarray, r: np.ndarray, k: int) -> float:
    """Fraction of rows whose reference top-1 class is in the candidate's top-k."""
    ref_top1 = np.argmax(r, axis=1)
    cand_topk = np.argsort(-a, axis=1)[:, :k]
    return float(np.mean([ref_top1[i] in cand_topk[i] for i in range(a.shape[0])]))


def check_output(
    name: str, candidate: np.ndarray, reference: np.ndarray, tolerance: Tolerance
) -> OutputParity:
    """Compare one output and judge it against ``tolerance``."""
    if candidate.shape != reference.shape or candidate.dtype != reference.dtype:
        return OutputParity(
            name,
            {},
            tolerance,
            [
                f"output {name!r}: got {candidate.dtype}{list(candidate.shape)}, "
                f"reference is {reference.dtype}{list(reference.shape)}"
            ],
        )
    metrics = compare(name, candidate, reference)
    failures = []
    if tolerance.rtol is not None:
        a = np.asarray(candidate, dtype=np.float64)
        r = np.asarray(reference, dtype=np.float64)
        excess = np.abs(a - r) - (tolerance.atol + tolerance.rtol * np.abs(r))
        if excess.size and excess.max() > 0:
            worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
            failures.append(
                f"output {name!r}: max_abs_err {metrics['max_abs_err']:.3g} exceeds tolerance "
                f"atol {tolerance.atol:g} + rtol {tolerance.rtol:g}·|ref| "
                f"(worst at index {tuple(int(i) for i in worst)}: got {a[worst]:.6g}, "
                f"reference {r[worst]:.6g}; {int((excess > 0).sum())} of {excess.size} "
                "elements out of tolerance)"
            )
    if tolerance.min_cosine is not None and metrics["cosine"] < tolerance.min_cosine:
        failures.append(
            f"output {name!r}: cosine {metrics['cosine']:.5f} is below tolerance "
            f"{tolerance.min_cosine}"
        )
    notes = []
    if tolerance.rtol is not None and metrics["ref_max_abs"] < DEGENERATE_FACTOR * tolerance.atol:
        notes.append(
            f"output {name!r}: the reference is degenerate (max |value| "
            f"{metrics['ref_max_abs']:.3g} < {DEGENERATE_FACTOR:g}×atol), so the elementwise "
            f"check says little (cosine {metrics['cosine']:.3g}); verify with real weights or "
            "real inputs"
        )
    top1 = metrics.get("top1_agreement")
    if tolerance.min_top1 is not None and top1 is not None and top1 < tolerance.min_top1:
        failures.append(
            f"output {name!r}: top1_agreement {top1:.3f} is below tolerance {tolerance.min_top1}"
        )
    return OutputParity(name, metrics, tolerance, failures, notes)


def check_outputs(
    candidate: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    tolerance: Tolerance,
) -> list[OutputParity]:
    """Check every reference output; a missing candidate output is a failure."""
    results = []
    for name, ref in reference.items():
        if name not in candidate:
            results.append(
                OutputParity(name, {}, tolerance, [f"output {name!r} is missing from the result"])
            )
            continue
        results.append(check_output(name, np.asarray(candidate[name]), ref, tolerance))
    return results


def raise_on_failures(artifact: str, set_name: str, results: Iterable[OutputParity]) -> None:
    """Raise `CheckFailed` naming every failed output, metric, value and tolerance."""
    failures = [f for r in results for f in r.failures]
    if failures:
        raise CheckFailed(
            f"artifact {artifact!r} failed parity against eager PyTorch on golden set "
            f"{set_name!r}: " + "; ".join(failures),
            fix="inspect the model for ops the exporter handles differently, or loosen the "
            "tolerance explicitly if this error is expected",
        )
