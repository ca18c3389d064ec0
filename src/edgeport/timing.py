"""The one timing engine: interleaved blocks of timed calls, and the statistics of them
(docs/design.md §6). `edgeport bench` (`benchmarks/harness.py`), quantize's speed check and the
benchmarks in `bench/` all time with :func:`time_interleaved`; libedgeport's `cpp/src/stats.cpp`
computes the same statistics (`tests/test_stats_parity.py` holds them equal to 1e-9).

The variants are warmed up, then timed call by call in blocks, in turn (A B C, C B A, …), with a
pause after each block, so that ONNX Runtime's spinning threads from one variant do not eat the
next one's cores, and a slow spell of the machine hits every variant alike. Statistics come from
the individual calls (``perf_counter_ns``); intervals resample whole blocks. Comparisons are
ratios of medians, with intervals from blocks resampled together (:func:`speedup_intervals`).

numpy only: this module sits at the base of the package, beside `edgeport.parity`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeport.errors import EdgeportError


@dataclass(frozen=True)
class Schedule:
    """How to time. Validated on construction.

    Attributes:
        warmup: Untimed calls per variant before timing.
        duration: Seconds of timed calls per variant (split over the blocks).
        iters: Exact timed calls per variant (overrides ``duration``).
        blocks: Blocks the timed calls are split into (at least 2).
        pause: Seconds of pause after each block.
        spread: Wall-clock seconds the blocks are spread over (0: back to back); block ``i``
            starts at ``i * spread / blocks`` seconds and the machine idles in between.
    """

    warmup: int = 5
    duration: float = 2.0
    iters: int | None = None
    blocks: int = 8
    pause: float = 0.1
    spread: float = 0.0

    def __post_init__(self) -> None:
        if (
            self.blocks < 2
            or self.duration <= 0
            or self.spread < 0
            or self.pause < 0
            or self.warmup < 0
            or (self.iters is not None and self.iters < 1)
        ):
            raise EdgeportError(
                "--blocks must be ≥ 2, --duration > 0, --spread ≥ 0 and --iters ≥ 1"
            )


@dataclass
class Timing:
    """What :func:`time_interleaved` measured.

    Attributes:
        blocks: Per variant, its blocks of call times (ns) in the order they ran.
        stats: Per variant, :func:`block_stats` (p50/p90/p99 in ms, CI95, rerun interval, …).
        batch: The batch the calls ran at (for throughput).
    """

    blocks: dict[str, list[np.ndarray]]
    batch: int
    stats: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.stats = block_stats(self.blocks, self.batch)

    def speedup(self, base: str, candidate: str) -> dict[str, Any]:
        """``median(base) / median(candidate)`` (> 1: the candidate is faster) with its CI95
        and rerun interval (:func:`speedup_intervals`)."""
        point = self.stats[base]["p50_ms"] / self.stats[candidate]["p50_ms"]
        return {"point": point, **speedup_intervals(self.blocks[base], self.blocks[candidate])}


def time_interleaved(
    runs: Mapping[str, Callable[[], Any]], schedule: Schedule | None = None, *, batch: int = 1
) -> Timing:
    """Warm up, size the blocks from one probe call each, and time ``runs`` in turn."""
    schedule = schedule or Schedule()
    for call in runs.values():
        for _ in range(schedule.warmup):
            call()
    per_block = calls_per_block(runs, schedule)
    samples: dict[str, list[np.ndarray]] = {name: [] for name in runs}
    order = list(runs)
    started = time.monotonic()
    for block in range(schedule.blocks):
        wait = started + block * schedule.spread / schedule.blocks - time.monotonic()
        time.sleep(max(0.0, wait))
        for name in order if block % 2 == 0 else order[::-1]:
            call, n = runs[name], per_block[name]
            times = np.empty(n, dtype=np.float64)
            for i in range(n):
                t0 = time.perf_counter_ns()
                call()
                times[i] = time.perf_counter_ns() - t0
            samples[name].append(times)
            time.sleep(schedule.pause)
    return Timing(samples, batch)


def calls_per_block(runs: Mapping[str, Callable[[], Any]], schedule: Schedule) -> dict[str, int]:
    """Calls per block for each variant: ``iters`` split over the blocks, else as many as fill
    ``duration / blocks`` seconds at the speed of one probe call."""
    if schedule.iters is not None:
        return {name: max(1, schedule.iters // schedule.blocks) for name in runs}
    counts = {}
    for name, run in runs.items():
        t0 = time.perf_counter_ns()
        run()
        one = max((time.perf_counter_ns() - t0) / 1e9, 1e-6)
        counts[name] = max(1, int(schedule.duration / schedule.blocks / one))
    return counts


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


def block_stats(timed: dict[str, list[np.ndarray]], batch: int) -> dict[str, dict[str, Any]]:
    """:func:`call_stats` of variants timed in turn (per variant: its blocks of call times in
    ns), with the slow drift pooled over them (:func:`slow_drift`)."""
    boots = {name: _Bootstrap.of(np.concatenate(b), b, seed=0) for name, b in timed.items()}
    slow = slow_drift([boot.evidence for boot in boots.values()])
    return {name: boot.stats(batch, slow) for name, boot in boots.items()}
