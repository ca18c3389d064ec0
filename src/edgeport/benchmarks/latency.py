"""Latency measurement that holds on a noisy 2-core machine (docs/design.md §6).

Variants are timed in interleaved blocks (A B A B …, order alternating) in one process with a
short pause between blocks, so that ONNX Runtime's spinning threads from one session do not eat
the next one's cores; comparisons are ratios of medians. Timings use ``perf_counter_ns``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Per-call latency of one variant, in seconds.

    Attributes:
        median: Median of the per-block mean call times.
        p90: 90th percentile of the per-block means.
        mean: Mean of the per-block means.
        minimum: Fastest block.
        cv: Coefficient of variation of the block means.
        ci95: Bootstrap 95% interval of the median (low, high).
        blocks: Blocks timed; calls: calls per block.
    """

    median: float
    p90: float
    mean: float
    minimum: float
    cv: float
    ci95: tuple[float, float]
    blocks: int
    calls: int

    def to_json(self) -> dict[str, Any]:
        """JSON form (seconds)."""
        return asdict(self)


def time_interleaved(
    variants: Mapping[str, Callable[[], Any]],
    *,
    blocks: int = 8,
    min_block_seconds: float = 0.15,
    pause: float = 0.1,
    warmup: int = 3,
) -> dict[str, LatencyStats]:
    """Time each variant in interleaved blocks; calls per block sized from a first probe."""
    calls = {}
    for name, fn in variants.items():
        for _ in range(warmup):
            fn()
        start = time.perf_counter_ns()
        fn()
        one = max((time.perf_counter_ns() - start) / 1e9, 1e-6)
        calls[name] = max(1, int(min_block_seconds / one))
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for block in range(blocks):
        order = list(variants) if block % 2 == 0 else list(reversed(list(variants)))
        for name in order:
            fn, n = variants[name], calls[name]
            start = time.perf_counter_ns()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter_ns() - start) / n / 1e9)
            time.sleep(pause)
    return {name: summarize(values, calls[name]) for name, values in samples.items()}


def summarize(values: list[float], calls: int, *, seed: int = 0) -> LatencyStats:
    """Statistics of per-block means, with a bootstrap 95% interval of the median."""
    array = np.asarray(values)
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(array, size=(1000, array.size), replace=True), axis=1)
    mean = float(array.mean())
    return LatencyStats(
        median=float(np.median(array)),
        p90=float(np.percentile(array, 90)),
        mean=mean,
        minimum=float(array.min()),
        cv=float(array.std() / mean) if mean else 0.0,
        ci95=(float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))),
        blocks=int(array.size),
        calls=calls,
    )


def ratio(baseline: LatencyStats, candidate: LatencyStats) -> float:
    """Speed-up of ``candidate`` over ``baseline`` (> 1 is faster)."""
    return baseline.median / candidate.median if candidate.median else float("inf")
