"""`verify_bundle`: re-check a bundle's hashes and every artifact's golden parity."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeport.benchmarks.parity import Precision, Tolerance, check_outputs
from edgeport.bundle import hash_problems, load_bundle
from edgeport.errors import EdgeportError


@dataclass
class VerifyReport:
    """Outcome of `verify_bundle`.

    Attributes:
        bundle: The bundle directory.
        problems: Every failure found (hash mismatch, parity out of tolerance, load errors).
        artifacts: Artifact name → golden set → output → parity JSON.
    """

    bundle: str
    problems: list[str] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when nothing failed."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Machine-readable form (``edgeport verify --json``)."""
        return {
            "bundle": self.bundle,
            "passed": self.passed,
            "problems": self.problems,
            "artifacts": self.artifacts,
        }


def verify_bundle(
    path: str | Path,
    *,
    artifacts: list[str] | None = None,
    eager_sizes: list[dict[str, int]] | None = None,
) -> VerifyReport:
    """Check hashes, then run every artifact on every golden set against the manifest tolerance.

    Args:
        path: The bundle directory.
        artifacts: Only these artifacts (default: all).
        eager_sizes: Also rebuild the model from its source and compare at these symbolic sizes
            (e.g. ``[{"batch": 3}, {"batch": 7}]``); needs torch and the model source.

    Returns:
        The report; `VerifyReport.passed` is False on any failure (never raises for failures
        found in the bundle's content; a path that is not a bundle raises `EdgeportError`).
    """
    from edgeport.runtime.runners import runner_for

    bundle = load_bundle(path, check_hashes=False)
    report = VerifyReport(str(path))
    report.problems += hash_problems(bundle)
    names = artifacts or list(bundle.artifacts)
    for name in names:
        bundle.artifact(name)  # unknown name: clear error listing the others
    broken = {p.split("'")[1] for p in report.problems if p.startswith("artifact '")}
    sets = bundle.golden_sets()
    for name in names:
        if name in broken:
            continue
        entry = bundle.artifact(name)
        tolerance = _tolerance(entry)
        try:
            runner = runner_for(bundle, name)
            per_set = {}
            wanted = entry.get("golden_sets")
            for gset in (g for g in sets if wanted is None or g.name in wanted):
                results = check_outputs(_run(runner, gset), gset.outputs, tolerance)
                per_set[gset.name] = {r.name: r.to_json() for r in results}
                report.problems += [
                    f"artifact {name!r}, golden set {gset.name!r}: {f}"
                    for r in results
                    for f in r.failures
                ]
            report.artifacts[name] = per_set
        except EdgeportError as exc:
            report.problems.append(f"artifact {name!r}: {exc}")
    for sizes in eager_sizes or []:
        _check_eager(bundle, sizes, report)
    return report


def _check_eager(bundle: Any, sizes: dict[str, int], report: VerifyReport) -> None:
    from edgeport.exporter.flow import eager_outputs_match

    label = ",".join(f"{k}={v}" for k, v in sizes.items())
    try:
        results = eager_outputs_match(bundle, sizes)
    except EdgeportError as exc:
        report.problems.append(f"eager re-check at {label}: {exc}")
        return
    for name, outputs in results.items():
        report.artifacts.setdefault(name, {})[f"eager@{label}"] = outputs
        report.problems += [
            f"artifact {name!r} vs eager at {label}: {f}"
            for out in outputs.values()
            for f in out["failures"]
        ]


def _run(runner: Any, gset: Any) -> dict[str, Any]:
    """Outputs on a golden set; sets of many samples are fed ``gset.batch`` at a time."""
    import numpy as np

    if gset.batch is None:
        return dict(runner.run(gset.inputs))
    total = len(next(iter(gset.inputs.values())))
    parts = [
        runner.run({k: v[i : i + gset.batch] for k, v in gset.inputs.items()})
        for i in range(0, total, gset.batch)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _tolerance(entry: dict[str, Any]) -> Tolerance:
    recorded = entry.get("tolerance")
    if recorded:
        return Tolerance(**recorded)
    from edgeport.benchmarks.parity import PROFILES

    return PROFILES[Precision(entry.get("precision", "fp32"))]
