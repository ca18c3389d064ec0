"""`verify_bundle`: re-check a bundle's hashes and every artifact's golden parity.

verify decides and the manifest only records (docs/design.md §7): each artifact is judged with
`effective_tolerance` (never looser than its precision's profile unless the caller passes looser
values), an artifact checked on no golden set fails, and every golden file's sha256 is checked
before it is read. TorchScript artifacts and the eager re-check load code, so they run only with
``trust_code``; without it TorchScript artifacts are listed as skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.bundle import Bundle, GoldenSet, hash_problems, load_bundle
from edgeport.errors import EdgeportError
from edgeport.manifest import ArtifactEntry
from edgeport.parity import check_outputs, effective_tolerance
from edgeport.runtime.session import Session
from edgeport.trust import require_trust


class GoldenSetError(EdgeportError):
    """A golden set that cannot be fed or compared as the manifest records it (exit 2)."""


@dataclass
class VerifyReport:
    """Outcome of `verify_bundle`.

    Attributes:
        bundle: The bundle directory.
        problems: Every failure found (hash mismatch, parity out of tolerance, load errors).
        artifacts: Artifact name → golden set → output → parity JSON.
        skipped: Artifact name → why it was not checked (code without ``trust_code``).
    """

    bundle: str
    problems: list[str] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when nothing failed and at least one artifact was checked."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Machine-readable form (``edgeport verify --json``)."""
        return {
            "bundle": self.bundle,
            "passed": self.passed,
            "problems": self.problems,
            "artifacts": self.artifacts,
            "skipped": self.skipped,
        }


def verify_bundle(
    path: str | Path,
    *,
    artifacts: list[str] | None = None,
    eager_sizes: list[dict[str, int]] | None = None,
    trust_code: bool = False,
    tolerance: Mapping[str, float | None] | None = None,
    public_key: str | Path | None = None,
) -> VerifyReport:
    """Check hashes, then run every artifact on its golden sets with the effective tolerance.

    Args:
        path: The bundle directory.
        artifacts: Only these artifacts (default: all).
        eager_sizes: Also rebuild the model from its source and compare at these symbolic sizes
            (e.g. ``[{"batch": 3}, {"batch": 7}]``); needs torch, and ``trust_code`` unless the
            source is a torchvision builder.
        trust_code: Also check TorchScript artifacts (loading them runs their code).
        tolerance: The caller's own criteria (``rtol``, ``atol``, ``min_cosine``,
            ``min_top1``); they replace the profile's and the manifest's, and may be looser.
        public_key: Refuse the bundle unless its signature verifies with this PEM key.

    Returns:
        The report; `VerifyReport.passed` is False on any failure found in the bundle's content.

    Raises:
        EdgeportError: Not a bundle, a bad manifest or golden file, or code without trust.
        IntegrityError: The signature is missing or wrong (when ``public_key`` is given).
    """
    bundle = load_bundle(path, check_hashes=False, public_key=public_key)
    report = VerifyReport(str(path))
    names = artifacts or list(bundle.spec.artifacts)
    entries = [bundle.entry(n) for n in names]  # unknown name: clear error listing the others
    if artifacts:
        for entry in entries:
            if entry.runs_code:
                require_trust(trust_code, f"checking {entry.format} artifact {entry.name!r}")
    if eager_sizes:
        from edgeport.pruning.flow import require_rebuild_trust

        _check_sizes(bundle, eager_sizes)
        require_rebuild_trust(bundle, trust_code)
    report.problems += hash_problems(bundle)
    if report.problems:
        return report  # nothing a tampered bundle holds is run
    sets = {g.name: g for g in bundle.golden_sets(check_hashes=False)}
    for entry in entries:
        if entry.runs_code and not trust_code:
            report.skipped[entry.name] = (
                f"{entry.format} loads code from the bundle; pass --trust-code to check it"
            )
            continue
        _check_artifact(bundle, entry, sets, trust_code, tolerance, report)
    if not report.artifacts and not report.problems:
        report.problems.append(
            "no artifact was checked ("
            + ("; ".join(f"{k}: {v}" for k, v in report.skipped.items()) or "the bundle has none")
            + ")"
        )
    for sizes in eager_sizes or []:
        _check_eager(bundle, sizes, report, trust_code)
    return report


def _check_sizes(bundle: Bundle, eager_sizes: list[dict[str, int]]) -> None:
    """Every ``--sizes`` label must be one of the model's symbolic dims."""
    labels = sorted({d for s in bundle.inputs for d in s.shape if isinstance(d, str)})
    for sizes in eager_sizes:
        unknown = [k for k in sizes if k not in labels]
        if unknown:
            raise EdgeportError(
                f"--sizes names {unknown}, which are not symbolic dims of this model",
                available=", ".join(labels)
                or "none: every dim is fixed, so there is nothing to resize",
            )


def _check_artifact(
    bundle: Bundle,
    entry: ArtifactEntry,
    sets: dict[str, GoldenSet],
    trust_code: bool,
    override: Mapping[str, float | None] | None,
    report: VerifyReport,
) -> None:
    name = entry.name
    wanted = list(sets) if entry.golden_sets is None else list(entry.golden_sets)
    unknown = [s for s in wanted if s not in sets]
    report.problems += [
        f"artifact {name!r} names golden set {s!r}, which the manifest does not have"
        for s in unknown
    ]
    wanted = [s for s in wanted if s in sets]
    if not wanted:
        report.problems.append(
            f"artifact {name!r} is checked on no golden set: verify cannot vouch for it"
        )
        return
    tolerance = effective_tolerance(entry.precision, entry.tolerance, override)
    names = [i.name for i in bundle.inputs], [o.name for o in bundle.outputs]
    feeds = {s: batched_feeds(sets[s], *names) for s in wanted}
    try:
        session = _session(bundle, entry, trust_code)
        per_set = {}
        for set_name in wanted:
            gset = sets[set_name]
            got = _run(session, feeds[set_name], set_name)
            results = check_outputs(got, gset.outputs, tolerance)
            per_set[set_name] = {r.name: r.to_json() for r in results}
            report.problems += [
                f"artifact {name!r}, golden set {set_name!r}: {f}"
                for r in results
                for f in r.failures
            ]
        report.artifacts[name] = per_set
    except GoldenSetError:
        raise
    except EdgeportError as exc:
        report.problems.append(f"artifact {name!r}: {exc}")


def batched_feeds(
    gset: GoldenSet, inputs: list[str], outputs: list[str]
) -> list[dict[str, np.ndarray]]:
    """The golden set's inputs as the runs verify makes: all at once, or ``batch`` at a time.

    The set must hold every input and a reference for every output. A batched set needs
    inputs of rank ≥ 1 that agree on their sample count (libedgeport checks the same, with the
    same messages).

    Raises:
        EdgeportError: A golden set that cannot be fed as recorded.
    """
    for kind, names, have in (("input", inputs, gset.inputs), ("output", outputs, gset.outputs)):
        missing = [n for n in names if n not in have]
        if missing:
            raise GoldenSetError(
                f"golden set {gset.name!r} has no {kind} {missing}", fix="re-export the bundle"
            )
    for name in outputs:
        if gset.outputs[name].size == 0:
            raise GoldenSetError(
                f"golden set {gset.name!r}: reference output {name!r} is empty: it checks nothing",
                fix="re-export the bundle",
            )
    if gset.batch is None:
        return [gset.inputs]
    for key, value in gset.inputs.items():
        if value.ndim == 0:
            raise GoldenSetError(
                f"golden set {gset.name!r} is run in batches of {gset.batch}, but input "
                f"{key!r} is 0-d"
            )
    counts = {k: v.shape[0] for k, v in sorted(gset.inputs.items())}
    if len(set(counts.values())) > 1:
        raise GoldenSetError(
            f"golden set {gset.name!r}: inputs disagree on the number of samples ("
            + ", ".join(f"{k} has {n}" for k, n in counts.items())
            + ")"
        )
    total = next(iter(counts.values()))
    if total == 0:
        return [gset.inputs]  # one run with no samples, as libedgeport does
    return [
        {k: v[i : i + gset.batch] for k, v in gset.inputs.items()}
        for i in range(0, total, gset.batch)
    ]


def _session(bundle: Bundle, entry: ArtifactEntry, trust_code: bool) -> Session:
    """A session on a bundle verify has opened: the artifact's file (checked to stay inside
    the bundle) with the manifest's IO specs, on the CPU with ONNX Runtime's default threads."""
    return Session.for_file(
        bundle.path_of(entry.name),
        entry.format,
        bundle.inputs,
        bundle.outputs,
        trust_code=trust_code,
        name=entry.name,
    )


def _run(session: Session, feeds: list[dict[str, np.ndarray]], set_name: str) -> dict[str, Any]:
    """Outputs over the runs; batched runs are concatenated along the sample axis."""
    if len(feeds) == 1:
        return dict(session.run(feeds[0]))
    parts = [session.run(f) for f in feeds]
    for key, value in parts[0].items():
        if np.ndim(value) == 0:
            raise GoldenSetError(
                f"golden set {set_name!r} is run in batches, but output {key!r} is 0-d"
            )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _check_eager(
    bundle: Bundle, sizes: dict[str, int], report: VerifyReport, trust_code: bool
) -> None:
    label = ",".join(f"{k}={v}" for k, v in sizes.items())
    try:
        results = eager_outputs_match(bundle, sizes, trust_code=trust_code)
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


def eager_outputs_match(
    bundle: Bundle, sizes: dict[str, int], *, seed: int = 7, trust_code: bool = False
) -> dict[str, dict[str, Any]]:
    """Re-build the model from the manifest's source and compare every artifact at ``sizes``.

    The model must rebuild to the same state dict (sha256 in the manifest): a source whose
    weights changed is an error, not a silent pass. TorchScript artifacts are compared only
    with ``trust_code``.

    Returns:
        Artifact name → output name → parity JSON, at these sizes.
    """
    from edgeport.data import random_inputs
    from edgeport.exporter.eager import run_eager
    from edgeport.pruning.flow import rebuild_eager
    from edgeport.runtime.torchscript import flatten_outputs

    loaded = rebuild_eager(bundle, trust_code=trust_code)
    specs = bundle.inputs
    feeds = random_inputs(specs, sizes, seed=seed)
    flat = flatten_outputs(run_eager(loaded.module, specs, feeds))
    reference = {s.name: t.numpy() for s, t in zip(bundle.outputs, flat, strict=True)}
    report: dict[str, dict[str, Any]] = {}
    for name, entry in bundle.spec.artifacts.items():
        if entry.runs_code and not trust_code:
            continue
        tolerance = effective_tolerance(entry.precision)
        results = check_outputs(
            _session(bundle, entry, trust_code).run(feeds), reference, tolerance
        )
        report[name] = {r.name: r.to_json() for r in results}
    return report
