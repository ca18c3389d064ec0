"""`quantize`: add int8 ONNX artifacts to a bundle, measured for accuracy and speed.

The mode is chosen from the model (``auto``: static for conv-heavy models with calibration data,
dynamic for MatMul/attention-heavy ones), pre-processing is a measured choice, the accuracy budget
is enforced by keeping the most sensitive tensors in float, and every int8 artifact is timed
against fp32 in the same process: a slower one is marked and never recommended.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.bundle import Bundle, BundleWriter, check_external_data, file_record, load_bundle
from edgeport.data import DEFAULT_MAX_SAMPLES, SampleSet, load_samples
from edgeport.environment import collect_environment
from edgeport.errors import CheckFailed, EdgeportError
from edgeport.parity import PROFILES, Precision, Tolerance, check_outputs
from edgeport.quantization.analysis import (
    Evaluation,
    evaluate,
    op_macs,
    rank_sensitivity,
    run_all,
    structure,
)
from edgeport.quantization.methods import (
    DYNAMIC_OPS,
    CalibrationMethod,
    QuantFormat,
    choose_types,
    quantize_dynamic_onnx,
    quantize_static_onnx,
)
from edgeport.quantization.preprocess import preprocess
from edgeport.recommend import recommend
from edgeport.runtime.session import Session
from edgeport.timing import Schedule, time_interleaved

log = logging.getLogger(__name__)

MODES = ("auto", "dynamic", "static")
PREPROCESS = ("auto", "on", "off")
SAMPLE_SET = "sample"
SAMPLE_SET_SIZE = 64
CONV_HEAVY = 0.5  # share of MACs in Conv above which a model counts as conv-heavy
# quantize's speed check: the bench's schedule (8 blocks, 0.1 s pauses), 1 s per variant.
SPEED_CHECK = Schedule(duration=1.0, blocks=8)


@dataclass(frozen=True)
class QuantizeOptions:
    """How to quantize. Validated on construction.

    Attributes:
        mode: ``auto`` (default), ``dynamic`` or ``static``.
        calib: Calibration data (``.npz``, ``.npy``, image folder, ``texts.txt`` with the
            bundle's tokenizer, ``file.py:fn``, ``random``).
        eval: Evaluation data (with ``labels`` for accuracy); default: the calibration data.
        max_drop: Accuracy budget in percentage points (top-1 disagreement without labels).
        method: Calibration method (minmax, entropy, percentile).
        fmt: QDQ (default) or QOperator.
        per_channel: Per-channel weight scales (default True; static).
        exclude_nodes: Node names never quantized.
        exclude_ops: Op types never quantized (static).
        force_conv: Quantize Conv dynamically too (slow on CPUs; warned).
        preprocess: ``auto`` (measure with and without, keep the better), ``on``, ``off``.
        max_samples: Cap on calibration samples read.
        max_eval_samples: Cap on evaluation samples read.
        max_reverts: Bound on re-quantization rounds spent finding the fewest nodes to keep
            in float.
        torchscript: Also add a TorchScript int8 artifact (torch dynamic quantization of
            Linear/LSTM; needs the eager model, rebuilt from the manifest's source).
        tolerance: Override of the int8 tolerance profile (cosine ≥ 0.99, top-1 agreement ≥
            0.95); recorded in the manifest. ``min_top1=None`` drops the top-1 criterion, e.g.
            for random-weight models whose logits are near ties.
    """

    mode: str = "auto"
    calib: str | None = None
    eval: str | None = None
    max_drop: float | None = None
    method: CalibrationMethod = CalibrationMethod.MINMAX
    fmt: QuantFormat = QuantFormat.QDQ
    per_channel: bool = True
    exclude_nodes: tuple[str, ...] = ()
    exclude_ops: tuple[str, ...] = ()
    force_conv: bool = False
    preprocess: str = "auto"
    max_samples: int = DEFAULT_MAX_SAMPLES
    max_eval_samples: int = 2048
    max_reverts: int = 10
    torchscript: bool = False
    tolerance: Tolerance = PROFILES[Precision.INT8]

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise EdgeportError(f"unknown --mode {self.mode!r}", available=", ".join(MODES))
        if self.preprocess not in PREPROCESS:
            raise EdgeportError(
                f"unknown --preprocess {self.preprocess!r}", available=", ".join(PREPROCESS)
            )
        if self.max_drop is not None and self.max_drop < 0:
            raise EdgeportError(f"--max-drop {self.max_drop} is negative", expected="≥ 0 points")
        if self.mode == "static" and self.calib is None:
            raise EdgeportError(
                "--mode static needs calibration data, and none was given",
                expected="--calib DATA: an .npz with one array per input (a few hundred real "
                "samples), an .npy, an image folder or file.py:factory",
                fix="pass --calib DATA; or --calib random if you accept unknown accuracy; or "
                "--mode dynamic, which needs no calibration",
            )


@dataclass
class _Candidate:
    path: Path
    recipe: dict[str, Any]
    evaluation: Evaluation
    outputs: dict[str, np.ndarray]


@dataclass
class _Job:
    """What every quantization round shares."""

    fp32: Path
    pre: tuple[Path, dict[str, Any]] | None
    work: Path
    mode: str
    calib: SampleSet | None
    evals: SampleSet
    reference: dict[str, np.ndarray]
    batch: int
    options: QuantizeOptions


def quantize(
    bundle_dir: str | Path,
    options: QuantizeOptions | None = None,
    *,
    model: Any = None,
    trust_code: bool = False,
) -> Bundle:
    """Add an int8 artifact to the bundle at ``bundle_dir`` (rewritten atomically).

    ``trust_code`` allows rebuilding the eager model from the manifest's source for
    ``options.torchscript`` (`edgeport.trust`); without it such a request fails before any work.

    Returns:
        The updated bundle.

    Raises:
        EdgeportError: Bad options or data, or nothing to quantize.
        CheckFailed: The int8 model misses its accuracy budget even with the allowed reverts.
    """
    from edgeport._progress import step

    options = options or QuantizeOptions()
    bundle = load_bundle(bundle_dir)
    if options.torchscript and model is None:
        from edgeport.pruning.flow import require_rebuild_trust

        require_rebuild_trust(bundle, trust_code)
    fp32 = bundle.path_of("onnx-fp32")
    check_external_data(fp32)
    sizes = {k: v for s in bundle.inputs for k, v in s.examples.items()}
    mode, reason = _choose_mode(fp32, sizes, options)
    log.info("quantization mode %s: %s", mode, reason)
    calib = _samples(options.calib, bundle, options, "--calib") if options.calib else None
    evals = _samples(options.eval, bundle, options, "--eval") if options.eval else calib
    if evals is None:
        evals = SampleSet("golden", _golden_arrays(bundle), random=True)
    batch = 32 if isinstance(bundle.inputs[0].shape[0], str) else 1
    fp32_session = Session(fp32)
    with step("running fp32 on the evaluation data"):
        reference = run_all(fp32_session.run, evals, batch)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pre = _preprocessed(fp32, work, options)
        job = _Job(fp32, pre, work, mode, calib, evals, reference, batch, options)
        with step(f"quantizing ({mode})"):
            first = _quantize_measured(job)
        with step("checking the accuracy budget"):
            best, reverted = _meet_budget(job, first)
        with step("timing int8 against fp32"):
            speed = _speed(fp32, best.path, evals, first.path if reverted else None)
        result = _write(bundle, job, best, reason, speed, reverted)
        if options.torchscript:
            with step("TorchScript int8 (torch dynamic quantization)"):
                result = _add_torchscript_int8(result, job, model, trust_code)
        return result


def _preprocessed(
    fp32: Path, work: Path, options: QuantizeOptions
) -> tuple[Path, dict[str, Any]] | None:
    """The pre-processed model and its record, or None when off or when every variant failed."""
    if options.preprocess == "off":
        return None
    path = work / "preprocessed.onnx"
    record = preprocess(fp32, path)
    if record["variant"] == "none":
        log.warning(
            "quantization pre-processing failed; quantizing the model as is: %s", record["failures"]
        )
        return None
    return path, record


class NothingToQuantize(EdgeportError):
    """quantize has nothing it could make faster with what it was given (no quantizable ops, or
    a conv-heavy model without calibration data); `build` notes it and ships fp32."""


def _choose_mode(fp32: Path, sizes: dict[str, int], options: QuantizeOptions) -> tuple[str, str]:
    macs = op_macs(fp32, sizes)
    total = sum(macs.values())
    conv = macs.get("Conv", 0) + macs.get("ConvTranspose", 0)
    linear = sum(macs.get(op, 0) for op in ("MatMul", "Gemm"))
    if total == 0:
        raise NothingToQuantize(
            "the model has no quantizable ops (no Conv, MatMul or Gemm carries any MACs)",
            expected="a model whose compute is in Conv/MatMul/Gemm layers",
            fix="int8 would not make this model faster; ship the fp32 artifact",
        )
    share = conv / total
    summary = f"Conv {share:.0%} of {total / 1e6:,.1f} M MACs, MatMul/Gemm {linear / total:.0%}"
    if options.mode != "auto":
        if options.mode == "dynamic" and share >= CONV_HEAVY and not options.force_conv:
            log.warning(
                "dynamic quantization leaves Conv in float (%s); quantizing Conv dynamically "
                "re-quantizes activations on every run and is usually slower than fp32 on CPUs. "
                "Use --mode static with --calib for this model.",
                summary,
            )
        return options.mode, f"requested ({summary})"
    if share >= CONV_HEAVY:
        if options.calib is None:
            raise NothingToQuantize(
                f"--mode auto: this model is conv-heavy ({summary}), which needs static "
                "quantization, and static quantization needs calibration data",
                fix="pass --calib DATA (real samples), or --calib random if you accept unknown "
                "accuracy; --mode dynamic would only touch its MatMul/Gemm layers",
            )
        return "static", f"conv-heavy: {summary}; calibration data given"
    return "dynamic", f"MatMul/attention-heavy: {summary}"


def _samples(spec: str, bundle: Bundle, options: QuantizeOptions, purpose: str) -> SampleSet:
    cap = options.max_samples if purpose == "--calib" else options.max_eval_samples
    return load_samples(
        spec, bundle.inputs, max_samples=cap, purpose=purpose, tokenizer=bundle.tokenizer_dir
    )


def _golden_arrays(bundle: Bundle) -> dict[str, np.ndarray]:
    base = bundle.golden_sets()[0]
    return {k: np.asarray(v) for k, v in base.inputs.items()}


def _quantize_once(
    src: Path,
    dst: Path,
    mode: str,
    calib: SampleSet | None,
    options: QuantizeOptions,
    exclude: tuple[str, ...],
) -> dict[str, Any]:
    nodes = (*options.exclude_nodes, *exclude)
    if mode == "dynamic":
        ops = (*DYNAMIC_OPS, "Conv") if options.force_conv else DYNAMIC_OPS
        return quantize_dynamic_onnx(src, dst, op_types=ops, nodes_to_exclude=nodes)
    if calib is None:
        raise EdgeportError("static quantization needs --calib DATA")
    env = collect_environment()
    types = choose_types(env["isa"], env["machine"])
    return quantize_static_onnx(
        src,
        dst,
        calib,
        types=types,
        method=options.method,
        fmt=options.fmt,
        per_channel=options.per_channel,
        nodes_to_exclude=nodes,
        op_types_to_exclude=options.exclude_ops,
    )


def _evaluate(
    path: Path, evals: SampleSet, reference: dict[str, np.ndarray], batch: int
) -> tuple[Evaluation, dict[str, np.ndarray]]:
    outputs = run_all(Session(path).run, evals, batch)
    return evaluate(reference, outputs, evals.labels), outputs


def _score(candidate: _Candidate) -> float:
    e = candidate.evaluation
    if e.accuracy_int8 is not None:
        return e.accuracy_int8 + e.cosine * 1e-6
    return e.cosine


def _quantize_measured(job: _Job, exclude: tuple[str, ...] = ()) -> _Candidate:
    """Quantize from the pre-processed and/or the raw model (per options); keep the better."""
    tries: list[tuple[str, Path, dict[str, Any]]] = []
    if job.pre is not None:
        tries.append(("preprocessed", job.pre[0], dict(job.pre[1])))
    if job.pre is None or job.options.preprocess == "auto":
        tries.append(("raw", job.fp32, {"variant": "skipped"}))
    candidates = []
    for label, src, record in tries:
        dst = job.work / f"int8-{label}-{len(exclude)}.onnx"
        recipe = _quantize_once(src, dst, job.mode, job.calib, job.options, exclude)
        evaluation, outputs = _evaluate(dst, job.evals, job.reference, job.batch)
        recipe["preprocess"] = {**record, "input": label}
        candidates.append(_Candidate(dst, recipe, evaluation, outputs))
    best = max(candidates, key=_score)
    if len(candidates) > 1:
        best.recipe["preprocess"]["measured"] = {
            c.recipe["preprocess"]["input"]: c.evaluation.to_json() for c in candidates
        }
    return best


def _passes(evaluation: Evaluation, options: QuantizeOptions) -> list[str]:
    """Why an evaluation misses the budget (empty when it passes)."""
    problems = []
    profile = options.tolerance
    if profile.min_cosine is not None and evaluation.cosine < profile.min_cosine:
        problems.append(f"cosine {evaluation.cosine:.4f} < {profile.min_cosine}")
    top1 = evaluation.top1_agreement
    if top1 is not None and profile.min_top1 is not None and top1 < profile.min_top1:
        problems.append(f"top1_agreement {top1:.3f} < {profile.min_top1}")
    drop = evaluation.drop_pp
    if options.max_drop is not None and drop is not None and drop > options.max_drop:
        what = "accuracy drop" if evaluation.accuracy_fp32 is not None else "top-1 disagreement"
        problems.append(f"{what} {drop:.2f} points > --max-drop {options.max_drop}")
    return problems


def _meet_budget(job: _Job, best: _Candidate) -> tuple[_Candidate, list[dict[str, Any]]]:
    """Keep the tensors whose float version helps the output most in float, as few as meet the
    budget: 1, 2, 4, ... of them until it is met, then a bisection down to the fewest that
    pass, within ``max_reverts`` quantization rounds."""
    options = job.options
    problems = _passes(best.evaluation, options)
    if not problems:
        return best, []
    preprocessed = best.recipe["preprocess"]["input"] == "preprocessed"
    source = job.pre[0] if preprocessed and job.pre is not None else job.fp32
    ranked = [
        t
        for t in rank_sensitivity(best.path, source, job.evals, job.reference)
        if t.cosine_gain > 0 and all(t.nodes)
    ]
    log.info("most sensitive: %s", [(t.tensor, round(t.cosine_gain, 4)) for t in ranked[:8]])
    tried: dict[int, tuple[_Candidate, list[str]]] = {}

    def attempt(count: int) -> list[str]:
        nodes = tuple(dict.fromkeys(n for t in ranked[:count] for n in t.nodes))
        candidate = _quantize_measured(job, nodes)
        tried[count] = (candidate, _passes(candidate.evaluation, options))
        log.info("%d tensors kept in float: %s", count, tried[count][1] or "budget met")
        return tried[count][1]

    low, high, rounds = 0, None, 0  # low fails; high (when found) passes
    count = 1
    while rounds < options.max_reverts and high is None and ranked:
        rounds += 1
        if not attempt(count):
            high = count
        elif count == len(ranked):
            break
        else:
            low, count = count, min(count * 2, len(ranked))
    while high is not None and high - low > 1 and rounds < options.max_reverts:
        rounds += 1
        middle = (low + high) // 2
        if attempt(middle):
            low = middle
        else:
            high = middle
    if high is None:
        last = tried[max(tried)][0] if tried else best
        raise CheckFailed(
            f"int8 ({job.mode}) misses the accuracy budget on {last.evaluation.samples} evaluation "
            f"samples: {'; '.join(_passes(last.evaluation, options) or problems)}"
            + (
                f", even with {max(tried)} tensors kept in float ({rounds} rounds)"
                if tried
                else " (no quantized tensor improves the output when kept in float)"
            ),
            fix="give more representative --calib data, try --method percentile or entropy, "
            "raise --max-reverts, or ship the fp32 artifact",
        )
    reverted = [
        {
            "tensor": t.tensor,
            "kind": t.kind,
            "nodes": list(t.nodes),
            "cosine_gain": round(t.cosine_gain, 5),
        }
        for t in ranked[:high]
    ]
    return tried[high][0], reverted


def _speed(fp32: Path, int8: Path, evals: SampleSet, all_quantized: Path | None) -> dict[str, Any]:
    """fp32 and int8 timed in turn by the one timing engine at batch 1, with default sessions:
    the measurement `edgeport bench` makes in its first configuration, so that `quantize` and
    `build` recommend from the same kind of evidence (docs/design.md §6)."""
    feeds = next(evals.feeds(1))
    paths = {"fp32": fp32, "int8": int8}
    if all_quantized is not None:
        paths["int8-all-quantized"] = all_quantized
    sessions = {name: Session(path) for name, path in paths.items()}
    timing = time_interleaved(
        {name: partial(session.run, feeds) for name, session in sessions.items()}, SPEED_CHECK
    )
    speedup = timing.speedup("fp32", "int8")
    result: dict[str, Any] = {
        "provider": "cpu",
        "batch": 1,
        "threads": 0,
        "spinning": True,
        "fp32": _brief(timing.stats["fp32"]),
        "int8": _brief(timing.stats["int8"]),
        "speedup_vs_fp32": speedup["point"],
        "speedup_ci95": speedup.get("ci95"),
        "speedup_rerun95": speedup.get("rerun95"),
        "slower_than_fp32": speedup["point"] < 1.0,
    }
    if all_quantized is not None:
        full = timing.stats["int8-all-quantized"]["p50_ms"]
        result["revert_latency_cost"] = timing.stats["int8"]["p50_ms"] / full
    if speedup["point"] < 1.0:
        log.warning(
            "int8 is slower than fp32 (%.2f×); it will not be recommended", speedup["point"]
        )
    return result


def _brief(stats: dict[str, Any]) -> dict[str, Any]:
    keys = ("p50_ms", "p90_ms", "median_ci95_ms", "median_rerun95_ms", "cv", "calls")
    return {k: stats[k] for k in keys}


def _write(
    bundle: Bundle,
    job: _Job,
    best: _Candidate,
    reason: str,
    speed: dict[str, Any],
    reverted: list[dict[str, Any]],
) -> Bundle:
    mode, evals, reference, calib, options = (
        job.mode,
        job.evals,
        job.reference,
        job.calib,
        job.options,
    )
    name = f"onnx-int8-{mode}"
    rel = f"model.int8-{mode}.onnx"
    count = min(SAMPLE_SET_SIZE, len(evals))
    sample_inputs = {k: v[:count] for k, v in evals.arrays.items()}
    sample_ref = {k: v[:count] for k, v in reference.items()}
    tolerance = options.tolerance
    results = check_outputs({k: v[:count] for k, v in best.outputs.items()}, sample_ref, tolerance)
    with BundleWriter(bundle.root, update=True) as writer:
        writer.copy_from(bundle)
        writer.fresh(rel).write_bytes(best.path.read_bytes())
        manifest = dict(bundle.manifest)
        golden = dict(manifest["golden"])
        golden["sets"] = [s for s in golden["sets"] if s["name"] != SAMPLE_SET] + [
            writer.golden_entry(
                f"golden/{SAMPLE_SET}",
                sample_inputs,
                sample_ref,
                name=SAMPLE_SET,
                sizes={},
                batch=job.batch,
                reference="onnx-fp32 (verified against eager PyTorch) on evaluation samples",
            )
        ]
        manifest["golden"] = golden
        recipe = {**best.recipe, "mode": mode, "mode_reason": reason}
        entry = {
            **file_record(writer.root, rel),
            "format": "onnx",
            "precision": "int8",
            "derived_from": "onnx-fp32",
            "recipe": recipe,
            "calibration": calib.describe() if calib else None,
            "evaluation": {
                **best.evaluation.to_json(),
                "data": evals.describe(),
                "max_drop": options.max_drop,
            },
            "kept_in_float": reverted,
            "structure": structure(writer.root / rel),
            "speed": speed,
            "tolerance": tolerance.to_json(),
            "golden_sets": [SAMPLE_SET],
            "parity": {SAMPLE_SET: {r.name: r.to_json() for r in results}},
            "passed": all(r.passed for r in results),
            "warnings": ["calibrated on random data: accuracy on real inputs is unknown"]
            if calib is not None and calib.random
            else [],
        }
        manifest["artifacts"] = {**manifest["artifacts"], name: entry}
        manifest["recommended"] = recommend(manifest["artifacts"])  # no bench here: own timing
        writer.commit(manifest)
    return load_bundle(bundle.root)


def _add_torchscript_int8(bundle: Bundle, job: _Job, model: Any, trust_code: bool) -> Bundle:
    """Add ``torchscript-int8-dynamic``, checked on the same evaluation data and tolerance."""
    import torch

    from edgeport.quantization.torchscript_int8 import quantize_torchscript_dynamic

    if model is None:
        from edgeport.pruning.flow import rebuild_eager

        model = rebuild_eager(bundle, trust_code=trust_code).module
    names = [s.name for s in bundle.inputs]
    first = next(job.evals.feeds(job.batch))
    rel = "model.int8-dynamic.ts"
    path = job.work / rel
    recipe = quantize_torchscript_dynamic(
        model, tuple(torch.from_numpy(first[n]) for n in names), path
    )
    with BundleWriter(bundle.root, update=True) as writer:
        writer.copy_from(bundle)
        writer.fresh(rel).write_bytes(path.read_bytes())
        manifest = dict(bundle.manifest)
        manifest["artifacts"] = {
            **manifest["artifacts"],
            "torchscript-int8-dynamic": {
                **file_record(writer.root, rel),
                "format": "torchscript",
                "precision": "int8",
                "derived_from": "eager",
                "recipe": recipe,
                "tolerance": job.options.tolerance.to_json(),
                "golden_sets": [SAMPLE_SET],
                "parity": {},
                "passed": False,
                "warnings": [],
            },
        }
        writer.commit(manifest)
    staged = load_bundle(bundle.root)
    session = Session(staged.root, "torchscript-int8-dynamic", trust_code=True)  # made here
    outputs = run_all(session.run, job.evals, job.batch)
    evaluation = evaluate(job.reference, outputs, job.evals.labels)
    problems = _passes(evaluation, job.options)
    sample = next(g for g in staged.golden_sets() if g.name == SAMPLE_SET)
    count = len(next(iter(sample.inputs.values())))
    results = check_outputs(
        {k: v[:count] for k, v in outputs.items()}, sample.outputs, job.options.tolerance
    )
    with BundleWriter(staged.root, update=True) as writer:
        writer.copy_from(staged)
        manifest = dict(staged.manifest)
        entry = dict(manifest["artifacts"]["torchscript-int8-dynamic"])
        entry.update(
            evaluation={**evaluation.to_json(), "data": job.evals.describe()},
            parity={SAMPLE_SET: {r.name: r.to_json() for r in results}},
            passed=not problems and all(r.passed for r in results),
            warnings=problems,
        )
        manifest["artifacts"] = {**manifest["artifacts"], "torchscript-int8-dynamic": entry}
        writer.commit(manifest)
    return load_bundle(staged.root)
