"""`edgeport bench`: latency of every artifact (and eager / TorchScript baselines), as a
performance engineer would measure it (docs/design.md §6).

Per configuration (provider × batch × threads), each variant is created (timed), run once cold
(timed), then timed by the one timing engine (`edgeport.timing`): warmed up, timed call by call
in interleaved blocks (A B C, C B A, …) with a pause between blocks, so that variants do not
steal each other's cores. Statistics come from the individual calls; comparisons are ratios of
medians.

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
show beyond sampling noise (`edgeport.timing.slow_drift`).
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
from edgeport.timing import Schedule, speedup_intervals, time_interleaved
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
        self.schedule()  # validates warmup, duration, iters, blocks, pause, spread

    def schedule(self) -> Schedule:
        """The timing engine's schedule for these options."""
        return Schedule(
            warmup=self.warmup,
            duration=self.duration,
            iters=self.iters,
            blocks=self.blocks,
            pause=self.pause,
            spread=self.spread,
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
    timing = time_interleaved(runs, options.schedule(), batch=batch)
    if default_threads is not None:
        torch.set_num_threads(default_threads)
    timed = timing.blocks
    for name, row in rows.items():
        array = np.concatenate(timed[name])
        row.stats = timing.stats[name]
        row.speedup_intervals = {
            f"vs_{base}": speedup_intervals(timed[base], timed[name])
            for base in ("eager-fp32", "onnx-fp32")
            if base in timed and base != name
        }
        step = max(1, array.size // MAX_SAMPLES_KEPT)
        row.samples_ms = [round(float(v) / 1e6, 4) for v in array[::step]]
    return list(rows.values())


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
