"""`edgeport bench`: latency of every artifact (and eager / TorchScript baselines), as a
performance engineer would measure it (docs/design.md §6).

Per configuration (provider × batch × threads), each variant is created (timed), run once cold
(timed), warmed up, then timed call by call in interleaved blocks (A B C, C B A, …) with a pause
between blocks, so that variants do not steal each other's cores. Statistics come from the
individual calls; comparisons are ratios of medians.

ONNX Runtime's intra-op threads spin by default (as in a default `edgeport.Session`): between
the ops of one call they wait busy instead of sleeping, which saves a wake-up per parallel op.
The bench measures that default (``spinning``; ``--no-spinning`` for a deployment that turns it
off). Measured on the 2-core VM this was written on, `edgeport bench` with spinning off reported
resnet18's fp32 and static int8 3% and 6–8% slower than with it, and the demo's digits CNN
(0.05 ms) 1.77× slower: a benchmark with spinning off understated what the runtime ships. The
spin outlasts the call (about a core busy for 20–70 ms after a block there, none after 100 ms),
so the pause between blocks keeps it out of the next variant's block: TorchScript's and eager's
medians were the same whether the ONNX blocks before them spun or not.

A shared machine's speed also drifts over minutes (on the 2-core VM this was written on: ±5–7% in
a cycle of about two minutes, all variants together). A run of a few seconds sees one phase of
that drift, and no statistic computed from it can know about the others. ``spread`` spaces the
blocks out over a longer wall-clock span (the machine idles in between), so that the blocks
sample the drift, the median averages over it, and the intervals include it. Drift slower than
that still moves a rerun's median: the rerun interval is widened by the drift the run's own parts
show beyond sampling noise (:func:`slow_drift`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.bundle import Bundle, load_bundle
from edgeport.errors import CodeNotTrusted, EdgeportError
from edgeport.trust import require_trust

log = logging.getLogger(__name__)

REPORT_SCHEMA = "edgeport.report/1"
Runner = Callable[[dict[str, np.ndarray]], Any]
MAX_SAMPLES_KEPT = 400  # call times kept per variant in report.json (for the plots)


@dataclass(frozen=True)
class BenchOptions:
    """What to measure. Validated on construction.

    Attributes:
        artifacts: Artifact names (default: every ONNX artifact; TorchScript with baselines).
        providers: Providers to run on (``cpu``, ``cuda``, ``tensorrt``).
        batches: Batch sizes (needs a symbolic batch dim for sizes other than the fixed one).
        threads: Intra-op thread counts; 0 means the runtime's default.
        warmup: Untimed runs per variant before timing.
        duration: Seconds of timed calls per variant per configuration (default 2).
        iters: Exact timed calls per variant (overrides ``duration``).
        blocks: Interleaved blocks the timed calls are split into.
        pause: Seconds of pause between blocks.
        spinning: Let ONNX Runtime's intra-op threads spin (its default, and
            `edgeport.Session`'s).
        spread: Wall-clock seconds the blocks are spread over (0: back to back). Each block
            starts at ``i * spread / blocks`` seconds; the time between is idle.
        baselines: Also time eager PyTorch and TorchScript (needs torch).
        allow_fallback: Run on the CPU when a provider is unusable (results labeled).
    """

    artifacts: tuple[str, ...] | None = None
    providers: tuple[str, ...] = ("cpu",)
    batches: tuple[int, ...] = (1,)
    threads: tuple[int, ...] = (0,)
    warmup: int = 5
    duration: float = 2.0
    iters: int | None = None
    blocks: int = 8
    pause: float = 0.1
    spinning: bool = True
    spread: float = 0.0
    baselines: bool = True
    allow_fallback: bool = False

    def __post_init__(self) -> None:
        if any(b < 1 for b in self.batches) or any(t < 0 for t in self.threads):
            raise EdgeportError(
                f"batch sizes {self.batches} and thread counts {self.threads} must be positive",
                expected="--batch 1,8 --threads 1,2 (0 = the runtime's default)",
            )
        if (
            self.blocks < 2
            or self.duration <= 0
            or self.spread < 0
            or (self.iters is not None and self.iters < 1)
        ):
            raise EdgeportError(
                "--blocks must be ≥ 2, --duration > 0, --spread ≥ 0 and --iters ≥ 1"
            )


@dataclass
class _Variant:
    name: str
    kind: str  # onnx | torchscript | eager
    precision: str
    size_bytes: int
    make: Callable[[int, str], tuple[Runner, str]]  # (threads, provider) → run, provider ran


@dataclass
class Row:
    """One variant in one configuration."""

    variant: str
    kind: str
    precision: str
    provider: str
    batch: int
    threads: int
    size_bytes: int
    creation_ms: float
    cold_ms: float
    rss_delta_mb: float
    stats: dict[str, Any]
    samples_ms: list[float] = field(default_factory=list)
    speedup_vs_eager: float | None = None
    speedup_vs_onnx_fp32: float | None = None
    speedup_intervals: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = float(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def moving_block_picks(n: int, rng: np.random.Generator, draws: int = 1000) -> np.ndarray:
    """Indices of ``draws`` circular moving-block resamples of ``n`` time-ordered blocks.

    Runs are about ∛n blocks long, the rate Hall, Horowitz and Jing (1995) found best for
    bootstrap variance estimates; √n runs leave too few independent pieces and, simulated on
    36 stationary blocks, understate the median's spread by 13% (∛n runs: 8%).
    """
    run = max(1, round(n ** (1 / 3)))
    starts = rng.integers(0, n, size=(draws, -(-n // run)))
    picks = (starts[:, :, None] + np.arange(run)) % n
    return picks.reshape(draws, -1)[:, :n]


def resampled_medians(blocks: list[np.ndarray], picks: np.ndarray) -> np.ndarray:
    """The median of the calls in each resample (one row of ``picks``: block indices)."""
    return np.array([np.median(np.concatenate([blocks[i] for i in row])) for row in picks])


CUTS = {2: "halves", 4: "quarters", 8: "eighths"}


def drift_evidence(
    part_value: Callable[[np.ndarray], float], n: int, point: float, boots: np.ndarray
) -> dict[str, tuple[float, float]]:
    """How much the run's parts differ, against how much sampling noise would make them differ.

    The run's ``n`` time-ordered blocks are cut into halves, quarters and eighths (parts of at
    least four blocks, so that one odd block does not pass for drift); ``part_value`` gives the
    statistic of the blocks at the indices it is handed. Per cut: the Allan variance (half the
    mean squared change between adjacent parts) and the sampling noise a part carries (the
    number of parts times the bootstrap variance of the whole run's statistic), both over
    ``point``².
    """
    evidence = {}
    for parts, cut in CUTS.items():
        if n < 4 * parts or not point:
            break
        values = [part_value(g) for g in np.array_split(np.arange(n), parts)]
        allan = float(np.mean(np.diff(values) ** 2) / 2)
        evidence[cut] = (allan / point**2, parts * float(np.var(boots)) / point**2)
    return evidence


def slow_drift(evidence: list[dict[str, tuple[float, float]]]) -> float:
    """Relative variance (a fraction², 0 if none shows) of the machine's slow drift, from the
    :func:`drift_evidence` of one statistic or of several timed together (pooled).

    The drift is the largest excess of a cut's Allan variance over its sampling noise, each
    averaged over the statistics given: the machine's drift is common to the variants timed in
    turn (same phase in every trace), so pooling gives the estimate more pieces.

    On the 2-core VM this was written on (`bench/drift_trace.py`, 35 minutes of resnet18), the
    Allan deviation of fp32's latency falls from 9% over 5-second windows to 3% over 80 seconds
    and then stays there up to 5 minutes, where sampling noise would keep falling as
    1/√window: a rerun's level differs from this run's about as much as the parts of this run
    differ, and the bootstrap, which sees only how much the blocks scatter, cannot know that.
    Eighths give the estimate the most pieces; halves see a drift that is still one-way over
    the whole run. The excess is taken as it comes, with no significance test: one at 95% kept
    a steady machine's rerun interval at the bootstrap's width, but on that VM it let a drift
    slower than the run pass unseen and held only 81–83% of reruns (replayed back-to-back runs
    spread over 300 s), against 91–93% without it (66–72% with no drift term at all). The
    price, on a steady machine, is a rerun interval about 2.5 times as wide as the CI95
    instead of √2 times (simulated, `tests/test_bench.py`).
    """
    best = 0.0
    for cut in CUTS.values():
        pieces = [e[cut] for e in evidence if cut in e]
        if pieces:
            allan, noise = np.mean(pieces, axis=0)
            best = max(best, float(allan - noise))
    return best


def median_of(blocks: list[np.ndarray]) -> Callable[[np.ndarray], float]:
    """The median of the calls in the blocks at the given indices."""
    return lambda index: float(np.median(np.concatenate([blocks[i] for i in index])))


def call_stats(
    samples_ns: np.ndarray,
    batch: int,
    blocks: list[np.ndarray] | None = None,
    seed: int = 0,
    slow: float | None = None,
) -> dict[str, Any]:
    """p50/p90/p99, mean, std, min, max (ms), throughput (samples/s), CV, bootstrap CI95, and
    the interval a rerun's median should land in.

    The interval of the median resamples whole blocks when ``blocks`` is given: calls in one
    block share the machine's state of that moment, so resampling single calls would pretend
    they are independent and give an interval far narrower than run-to-run variation. Blocks
    are resampled as runs of consecutive blocks (a circular moving-block bootstrap, run length
    about ∛blocks): the machine drifts over seconds, so neighbouring blocks are correlated too,
    and resampling them one by one would again understate the spread.

    A CI95 of the median is not where another run's median lands 95% of the time: that median
    carries its own sampling error, so the difference of two runs' medians spreads √2 times
    wider, and even a correct CI95 holds a rerun's median only about 83% of the time. The rerun
    interval (``median_rerun95_ms``) is the median plus the 2.5–97.5% range of the difference
    of two independent bootstrap medians, widened by the machine's slow drift
    (``slow_drift_pct``, see :func:`slow_drift`; the evidence per cut is ``allan_pct`` and
    ``allan_noise_pct``): a 95% prediction interval for a rerun on a machine that drifts as it
    did during this run. ``slow`` (a relative variance) replaces the drift this variant's own
    blocks show, e.g. with one pooled over the variants timed together.
    """
    boot = _Bootstrap.of(samples_ns, blocks, seed)
    return boot.stats(batch, slow_drift([boot.evidence]) if slow is None else slow)


@dataclass
class _Bootstrap:
    """What :func:`call_stats` computes before it knows the slow drift (the calls in ms, their
    blocks, the bootstrap replicates of the median, the drift evidence, the generator), so
    that :func:`block_stats` can pool the drift over variants in between. :meth:`stats` draws
    the rerun interval from the same generator: call it once."""

    ms: np.ndarray
    blocks: list[np.ndarray] | None
    boots: np.ndarray
    evidence: dict[str, tuple[float, float]]
    rng: np.random.Generator

    @classmethod
    def of(cls, samples_ns: np.ndarray, blocks: list[np.ndarray] | None, seed: int) -> _Bootstrap:
        ms = samples_ns / 1e6
        rng = np.random.default_rng(seed)
        if not blocks or len(blocks) < 2:
            boots = np.median(rng.choice(ms, size=(1000, ms.size), replace=True), axis=1)
            return cls(ms, blocks, boots, {}, rng)
        block_ms = [np.asarray(b, dtype=np.float64) / 1e6 for b in blocks]
        boots = resampled_medians(block_ms, moving_block_picks(len(block_ms), rng))
        median = float(np.median(ms))
        evidence = drift_evidence(median_of(block_ms), len(blocks), median, boots)
        return cls(ms, blocks, boots, evidence, rng)

    def stats(self, batch: int, slow: float) -> dict[str, Any]:
        ms, blocks = self.ms, self.blocks
        mean = float(ms.mean())
        median = float(np.median(ms))
        (low, high), rerun = intervals(median, self.boots, self.rng, slow * median**2)
        drift: dict[str, Any] = {"drift_pct": None, "drift_outside_ci": False}
        if blocks and len(blocks) >= 4:
            # The machine's speed can move during a run by more than sampling noise: compare
            # the two halves of the time-ordered blocks against the interval's width.
            half = len(blocks) // 2
            first = float(np.median(np.concatenate(blocks[:half]))) / 1e6
            second = float(np.median(np.concatenate(blocks[half:]))) / 1e6
            drift = {
                "drift_pct": 100 * (second - first) / median if median else 0.0,
                "drift_outside_ci": abs(second - first) > high - low,
            }
        return {
            "p50_ms": median,
            "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": mean,
            "std_ms": float(ms.std()),
            "min_ms": float(ms.min()),
            "max_ms": float(ms.max()),
            "cv": float(ms.std() / mean) if mean else 0.0,
            "throughput_per_s": batch / (mean / 1e3) if mean else 0.0,
            "median_ci95_ms": [low, high],
            "median_rerun95_ms": rerun,
            "slow_drift_pct": 100 * slow**0.5,
            "allan_pct": {cut: 100 * a**0.5 for cut, (a, _) in self.evidence.items()},
            "allan_noise_pct": {cut: 100 * z**0.5 for cut, (_, z) in self.evidence.items()},
            "calls": int(ms.size),
            **drift,
        }


def intervals(
    point: float, boots: np.ndarray, rng: np.random.Generator, slow: float = 0.0
) -> tuple[list[float], list[float]]:
    """(CI95, rerun interval) from bootstrap replicates of a statistic whose value is ``point``.

    The rerun interval adds to ``point`` the 2.5–97.5% range of the difference of two
    independent replicates, each shifted by a normal draw of the slow drift's variance
    ``slow`` (absolute): where the statistic of a second run should land.
    """
    ci = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
    differences = boots - rng.permutation(boots) + rng.normal(0.0, (2 * slow) ** 0.5, boots.size)
    return ci, [point + float(np.percentile(differences, q)) for q in (2.5, 97.5)]


def speedup_intervals(
    base: list[np.ndarray], candidate: list[np.ndarray], seed: int = 0
) -> dict[str, list[float]]:
    """CI95 and rerun interval of median(base) / median(candidate), from blocks timed in turn.

    Block ``i`` of both variants ran back to back, so both are resampled with the same picks:
    a slow spell of the machine slows both and cancels in the ratio, which is why speed-ups
    repeat across runs far better than absolute latencies on a drifting machine. What drift
    does not cancel (the variants slowed unequally) widens the rerun interval, as in
    :func:`call_stats`.
    """
    n = min(len(base), len(candidate))
    if n < 2:
        return {}
    rng = np.random.default_rng(seed)
    picks = moving_block_picks(n, rng)
    point = float(np.median(np.concatenate(base)) / np.median(np.concatenate(candidate)))
    boots = resampled_medians(base, picks) / resampled_medians(candidate, picks)
    base_of, candidate_of = median_of(base), median_of(candidate)
    ratio = drift_evidence(lambda index: base_of(index) / candidate_of(index), n, point, boots)
    slow = slow_drift([ratio])
    ci, rerun = intervals(point, boots, rng, slow * point**2)
    return {"ci95": ci, "rerun95": rerun}


def run_bench(
    bundle_dir: str | Path,
    options: BenchOptions | None = None,
    *,
    model: Any = None,
    trust_code: bool = False,
    public_key: str | Path | None = None,
) -> dict[str, Any]:
    """Measure the bundle's artifacts; returns the report (schema ``edgeport.report/1``).

    Args:
        bundle_dir: The bundle.
        options: What to measure.
        model: The eager model for the baseline (default: rebuilt from the manifest's source,
            which needs ``trust_code`` unless it is a torchvision builder).
        trust_code: Also time TorchScript artifacts and rebuild the eager baseline from a
            source that imports code. Without it those variants are skipped, and listed in the
            report's ``skipped``.
        public_key: Refuse the bundle unless its signature verifies with this PEM key.
    """
    from edgeport._progress import step

    options = options or BenchOptions()
    bundle = load_bundle(bundle_dir, public_key=public_key)
    skipped: list[str] = []
    variants = _variants(bundle, options, model, trust_code, skipped, public_key)
    if not variants:
        raise EdgeportError(
            f"nothing to time in {str(bundle_dir)!r}: " + "; ".join(skipped or ["no artifacts"])
        )
    rows: list[Row] = []
    for provider in options.providers:
        for batch in options.batches:
            feeds = _feeds(bundle, batch)
            if feeds is None:
                continue
            for threads in options.threads:
                with step(
                    f"timing {len(variants)} variants: {provider}, batch {batch}, "
                    f"threads {threads or 'default'}"
                ):
                    rows += _measure(variants, feeds, batch, threads, provider, options)
    _ratios(rows)
    return {**_report(bundle, options, rows), "skipped": skipped}


def _variants(
    bundle: Bundle,
    options: BenchOptions,
    model: Any,
    trust_code: bool,
    skipped: list[str],
    public_key: str | Path | None = None,
) -> list[_Variant]:
    from edgeport.runtime.session import Session, SessionOptions

    names = list(
        options.artifacts
        or [
            n
            for n, e in bundle.artifacts.items()
            if e["format"] == "onnx" or (options.baselines and e["format"] == "torchscript")
        ]
    )
    variants = []
    for name in names:
        entry = bundle.artifact(name)
        if bundle.entry(name).runs_code and not trust_code:
            if options.artifacts:  # asked for by name: refuse, do not skip
                require_trust(False, f"timing {entry['format']} artifact {name!r}")
            skipped.append(f"{name}: loading it runs code from the bundle; pass --trust-code")
            continue

        def make(threads: int, provider: str, name: str = name) -> tuple[Runner, str]:
            session = Session(
                bundle.root,
                name,
                provider,
                allow_fallback=options.allow_fallback,
                trust_code=trust_code,
                public_key=public_key,
                options=SessionOptions(threads=threads or None, spinning=options.spinning),
            )
            return session.run, session.provider

        variants.append(
            _Variant(name, entry["format"], entry["precision"], bundle.size_of(name), make)
        )
    if options.baselines:
        eager = _eager_variant(bundle, model, trust_code, skipped)
        if eager is not None:
            variants.insert(0, eager)
    return variants


def _eager_variant(
    bundle: Bundle, model: Any, trust_code: bool, skipped: list[str]
) -> _Variant | None:
    try:
        import torch
    except ImportError:
        return None
    if model is None:
        from edgeport.pruning.flow import rebuild_eager

        source = bundle.spec.source
        if source is None or source.startswith("python:"):
            log.info("no eager baseline: the bundle came from an in-memory model")
            return None
        try:
            model = rebuild_eager(bundle, trust_code=trust_code).module
        except CodeNotTrusted as exc:
            skipped.append(f"eager-fp32: {exc.what}; pass --trust-code to time it")
            return None
        except EdgeportError as exc:  # the source no longer builds these weights, ...
            skipped.append(f"eager-fp32: {exc}")
            return None
    names = [s.name for s in bundle.inputs]
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())

    def make(threads: int, provider: str) -> tuple[Runner, str]:
        if provider != "cpu":
            raise EdgeportError(f"the eager baseline runs on the CPU, not {provider}")
        if threads:
            torch.set_num_threads(threads)

        def run(feeds: dict[str, np.ndarray]) -> Any:
            with torch.inference_mode():
                return model(*[torch.from_numpy(feeds[n]) for n in names])

        return run, "cpu"

    return _Variant("eager-fp32", "eager", "fp32", size, make)


def _feeds(bundle: Bundle, batch: int) -> dict[str, np.ndarray] | None:
    from edgeport.data import random_inputs

    specs = bundle.inputs
    first = specs[0].shape[0] if specs[0].shape else None
    if isinstance(first, int) and first != batch:
        log.warning("batch %d skipped: the model's batch dim is fixed at %d", batch, first)
        return None
    sizes = {label: size for s in specs for label, size in s.examples.items()}
    if isinstance(first, str):
        sizes[first] = batch
    return random_inputs(specs, sizes, seed=0)


def _measure(
    variants: list[_Variant],
    feeds: dict[str, np.ndarray],
    batch: int,
    threads: int,
    provider: str,
    options: BenchOptions,
) -> list[Row]:
    try:
        import torch

        default_threads: int | None = torch.get_num_threads()
    except ImportError:
        default_threads = None
    runs: dict[str, Callable[[], Any]] = {}
    rows: dict[str, Row] = {}
    for variant in variants:
        if variant.kind == "eager" and provider != "cpu":
            continue
        before, _ = rss_mb()
        start = time.perf_counter_ns()
        run, ran_on = variant.make(threads, provider)
        created = time.perf_counter_ns()
        run(feeds)
        cold = time.perf_counter_ns()
        after, _ = rss_mb()
        runs[variant.name] = partial(run, feeds)
        rows[variant.name] = Row(
            variant.name,
            variant.kind,
            variant.precision,
            ran_on,
            batch,
            threads,
            variant.size_bytes,
            (created - start) / 1e6,
            (cold - created) / 1e6,
            after - before,
            {},
        )
    for call in runs.values():
        for _ in range(options.warmup):
            call()
    per_block = _calls_per_block(runs, options)
    samples: dict[str, list[list[int]]] = {name: [] for name in runs}
    order = list(runs)
    started = time.monotonic()
    for block in range(options.blocks):
        time.sleep(max(0.0, started + block * options.spread / options.blocks - time.monotonic()))
        for name in order if block % 2 == 0 else order[::-1]:
            call, n = runs[name], per_block[name]
            times: list[int] = []
            samples[name].append(times)
            for _ in range(n):
                t0 = time.perf_counter_ns()
                call()
                times.append(time.perf_counter_ns() - t0)
            time.sleep(options.pause)
    if default_threads is not None:
        torch.set_num_threads(default_threads)
    timed = {name: [np.asarray(b, dtype=np.float64) for b in samples[name]] for name in rows}
    stats = block_stats(timed, batch)
    for name, row in rows.items():
        blocks = timed[name]
        array = np.concatenate(blocks)
        row.stats = stats[name]
        row.speedup_intervals = {
            f"vs_{base}": speedup_intervals(timed[base], blocks)
            for base in ("eager-fp32", "onnx-fp32")
            if base in timed and base != name
        }
        step = max(1, array.size // MAX_SAMPLES_KEPT)
        row.samples_ms = [round(float(v) / 1e6, 4) for v in array[::step]]
    return list(rows.values())


def block_stats(timed: dict[str, list[np.ndarray]], batch: int) -> dict[str, dict[str, Any]]:
    """:func:`call_stats` of variants timed in turn (per variant: its blocks of call times in
    ns), with the slow drift pooled over them (:func:`slow_drift`)."""
    boots = {name: _Bootstrap.of(np.concatenate(b), b, seed=0) for name, b in timed.items()}
    slow = slow_drift([boot.evidence for boot in boots.values()])
    return {name: boot.stats(batch, slow) for name, boot in boots.items()}


def _calls_per_block(runs: dict[str, Callable[[], Any]], options: BenchOptions) -> dict[str, int]:
    if options.iters is not None:
        return {name: max(1, options.iters // options.blocks) for name in runs}
    counts = {}
    for name, run in runs.items():
        t0 = time.perf_counter_ns()
        run()
        one = max((time.perf_counter_ns() - t0) / 1e9, 1e-6)
        counts[name] = max(1, int(options.duration / options.blocks / one))
    return counts


def _ratios(rows: list[Row]) -> None:
    for row in rows:
        same = [
            r
            for r in rows
            if (r.provider, r.batch, r.threads) == (row.provider, row.batch, row.threads)
        ]
        eager = next((r for r in same if r.variant == "eager-fp32"), None)
        onnx = next((r for r in same if r.variant == "onnx-fp32"), None)
        p50 = row.stats["p50_ms"]
        if eager is not None:
            row.speedup_vs_eager = eager.stats["p50_ms"] / p50
        if onnx is not None:
            row.speedup_vs_onnx_fp32 = onnx.stats["p50_ms"] / p50


def _report(bundle: Bundle, options: BenchOptions, rows: list[Row]) -> dict[str, Any]:
    from edgeport.environment import collect_environment

    accuracy = {
        name: entry.get("evaluation")
        for name, entry in bundle.artifacts.items()
        if entry.get("evaluation")
    }
    _, peak = rss_mb()
    return {
        "schema": REPORT_SCHEMA,
        "bundle": str(bundle.root),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": bundle.manifest.get("model", {}),
        "inputs": bundle.manifest["inputs"],
        "environment": collect_environment(),
        "method": {
            "interleaved": True,
            "blocks": options.blocks,
            "pause_s": options.pause,
            "onnxruntime_spinning": options.spinning,
            "timer": "perf_counter_ns per call",
            "spread_s": options.spread,
            "statistics": "over individual calls; CI95 of the median = moving-block bootstrap "
            "over time-ordered blocks (1000 draws); rerun95 = median + 95% range of the "
            "difference of two bootstrap medians, widened by the drift between the run's "
            "halves, quarters or eighths beyond sampling noise (where a rerun's median should "
            "land)",
        },
        "options": {k: v for k, v in asdict(options).items()},
        "peak_rss_mb": peak,
        "results": [asdict(r) for r in rows],
        "warnings": drift_warnings(rows, options.spread),
        "accuracy": accuracy,
        "kept_in_float": {
            name: {
                "tensors": entry["kept_in_float"],
                "latency_cost": entry.get("speed", {}).get("revert_latency_cost"),
            }
            for name, entry in bundle.artifacts.items()
            if entry.get("kept_in_float")
        },
        "pruning": bundle.manifest.get("pruning"),
        "recommended": bundle.manifest.get("recommended"),
    }


def drift_warnings(rows: list[Row], spread: float = 0.0) -> list[str]:
    """One line per row whose latency moved between the run's halves by more than its CI95."""
    advice = (
        f"Spread the blocks over a longer span than {spread:g} s"
        if spread
        else "Spread the blocks over the machine's drift (--spread 300)"
    )
    return [
        f"{r.variant} ({r.provider}, batch {r.batch}, threads {r.threads or 'default'}): "
        f"p50 moved {r.stats['drift_pct']:+.1f}% between the first and second half of the run, "
        "more than its CI95 is wide. The machine's speed drifted during the run; the interval "
        f"covers sampling noise, not that drift, so a rerun may land outside it. {advice} "
        "or rerun on a quieter machine."
        for r in rows
        if r.stats.get("drift_outside_ci")
    ]


def compare_reports(
    current: dict[str, Any], baseline: dict[str, Any], *, threshold: float = 0.10
) -> list[str]:
    """Statistically clear regressions (:func:`regressed`) of ``current`` against ``baseline``.

    Rows match on (variant, provider, batch, threads), or on (variant, provider, batch) when each
    report measured a single thread count.
    """

    def key(row: dict[str, Any], with_threads: bool) -> tuple[Any, ...]:
        base = (row["variant"], row["provider"], row["batch"])
        return (*base, row["threads"]) if with_threads else base

    threads_cur = {r["threads"] for r in current["results"]}
    threads_base = {r["threads"] for r in baseline["results"]}
    exact = not (len(threads_cur) == len(threads_base) == 1 and threads_cur != threads_base)
    base_rows = {key(r, exact): r for r in baseline["results"]}
    regressions = []
    for row in current["results"]:
        old = base_rows.get(key(row, exact))
        if old is None:
            continue
        new_p50, old_p50 = row["stats"]["p50_ms"], old["stats"]["p50_ms"]
        new_low = row["stats"]["median_ci95_ms"][0]
        old_high = old["stats"]["median_ci95_ms"][1]
        if regressed(row["stats"], old["stats"], threshold):
            regressions.append(
                f"{row['variant']} ({row['provider']}, batch {row['batch']}, threads "
                f"{row['threads'] or 'default'}): p50 {new_p50:.3f} ms vs baseline "
                f"{old_p50:.3f} ms ({new_p50 / old_p50:.2f}×; CI95 low {new_low:.3f} > "
                f"baseline CI95 high {old_high:.3f})"
            )
    return regressions


def regressed(new: dict[str, Any], old: dict[str, Any], threshold: float = 0.10) -> bool:
    """Whether ``new`` (a row's stats) is clearly slower than ``old``: its median is slower by
    more than ``threshold`` and its CI95 lies wholly above the old one.

    Replayed on a 35-minute trace of the 2-core VM this was written on (`bench/drift_trace.py`,
    back-to-back run pairs of 48 blocks spread over 300 s), this flagged 0–3% of plain reruns
    and caught 35–46% of 10% slowdowns and 79–97% of 20% ones (threshold 0.10). Asking instead
    whether the new median lies above the old run's rerun interval flagged no fewer reruns
    (0–2%) and caught only 55–61% of the 20% slowdowns: on a drifting machine that interval is
    wide (±14% there), and two disjoint CI95s together with the threshold already ask for a
    shift larger than the drift moves a rerun.
    """
    new_p50, old_p50 = new["p50_ms"], old["p50_ms"]
    return bool(
        new_p50 > old_p50 * (1 + threshold) and new["median_ci95_ms"][0] > old["median_ci95_ms"][1]
    )
