"""Per-session monitoring: run and error counters, a latency histogram, input shape counts.

Recording costs a lock and a few integer updates per run. Percentiles come from a ring buffer
of the most recent latencies (default 8192); the Prometheus histogram uses fixed buckets over
the whole life of the session.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from typing import Any

import numpy as np

# Prometheus buckets, seconds: 50 µs … 10 s.
BUCKETS = (
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    5e-2,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_BUCKETS_NS = tuple(int(b * 1e9) for b in BUCKETS)


class SessionMetrics:
    """Thread-safe counters for one session.

    Args:
        labels: Labels attached to every Prometheus sample (artifact, provider).
        window: How many recent latencies the percentiles are computed from.
    """

    def __init__(self, labels: dict[str, str], input_names: list[str], window: int = 8192) -> None:
        self.labels = dict(labels)
        self.input_names = list(input_names)
        self._lock = threading.Lock()
        self._window = np.zeros(window, dtype=np.int64)
        self._runs = 0
        self._errors = 0
        self._sum_ns = 0
        self._buckets = [0] * (len(BUCKETS) + 1)
        self._shapes: Counter[tuple[tuple[int, ...], ...]] = Counter()

    def record(self, elapsed_ns: int, shapes: tuple[tuple[int, ...], ...]) -> None:
        """Count one successful run of ``elapsed_ns`` nanoseconds; ``shapes`` in input order."""
        bucket = bisect.bisect_left(_BUCKETS_NS, elapsed_ns)
        with self._lock:
            self._window[self._runs % len(self._window)] = elapsed_ns
            self._runs += 1
            self._sum_ns += elapsed_ns
            self._buckets[bucket] += 1
            self._shapes[shapes] += 1

    def record_error(self) -> None:
        """Count one failed run (bad input or a runtime failure)."""
        with self._lock:
            self._errors += 1

    def snapshot(self) -> dict[str, Any]:
        """Counters, latency percentiles (seconds) and input shape counts, as a dict."""
        with self._lock:
            runs, errors, total = self._runs, self._errors, self._sum_ns
            recent = self._window[: min(runs, len(self._window))].copy()
            combos = dict(self._shapes)
            buckets = list(self._buckets)
        latency: dict[str, float | None] = dict.fromkeys(("p50", "p90", "p99", "mean", "max"))
        if recent.size:
            p50, p90, p99 = np.percentile(recent, [50, 90, 99]) / 1e9
            latency.update(
                p50=float(p50),
                p90=float(p90),
                p99=float(p99),
                mean=total / runs / 1e9,
                max=float(recent.max()) / 1e9,
            )
        return {
            "labels": self.labels,
            "runs": runs,
            "errors": errors,
            "latency_seconds": latency,
            "latency_window": int(recent.size),
            "latency_buckets": dict(zip([*map(str, BUCKETS), "+Inf"], buckets, strict=True)),
            "input_shapes": self._per_input(combos),
        }

    def _per_input(self, combos: dict[tuple[tuple[int, ...], ...], int]) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for shapes, count in combos.items():
            for name, shape in zip(self.input_names, shapes, strict=False):
                counts[f"{name}:{'x'.join(map(str, shape))}"] += count
        return dict(sorted(counts.items()))

    def prometheus(self, prefix: str = "edgeport_session") -> str:
        """The snapshot in Prometheus text exposition format."""
        snap = self.snapshot()
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in self.labels.items())
        lines = [
            f"# HELP {prefix}_runs_total Runs completed.",
            f"# TYPE {prefix}_runs_total counter",
            f"{prefix}_runs_total{{{labels}}} {snap['runs']}",
            f"# HELP {prefix}_errors_total Runs that failed (bad input or runtime error).",
            f"# TYPE {prefix}_errors_total counter",
            f"{prefix}_errors_total{{{labels}}} {snap['errors']}",
            f"# HELP {prefix}_latency_seconds Run latency.",
            f"# TYPE {prefix}_latency_seconds histogram",
        ]
        cumulative = 0
        for le, count in snap["latency_buckets"].items():
            cumulative += count
            lines.append(f'{prefix}_latency_seconds_bucket{{{labels},le="{le}"}} {cumulative}')
        lines += [
            f"{prefix}_latency_seconds_sum{{{labels}}} {self._sum_ns / 1e9:.9f}",
            f"{prefix}_latency_seconds_count{{{labels}}} {snap['runs']}",
            f"# HELP {prefix}_input_shape_total Runs per input shape.",
            f"# TYPE {prefix}_input_shape_total counter",
        ]
        for key, count in snap["input_shapes"].items():
            name, _, shape = key.rpartition(":")
            lines.append(
                f'{prefix}_input_shape_total{{{labels},input="{_escape(name)}",shape="{shape}"}} '
                f"{count}"
            )
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
