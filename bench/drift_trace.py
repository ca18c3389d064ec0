"""How far does this machine's speed drift, and over what time? A trace to read before trusting
any latency interval here.

resnet18 (random weights) fp32 and static int8 through `edgeport.Session` are timed in
alternating blocks of about 0.25 s for ``--seconds``. The script prints the median of every
20-second bin and the Allan deviation of the block medians over windows of 1 to 128 blocks: the
typical change between the medians of two adjacent windows of that length (in %). Sampling noise
alone falls as 1/√window; where it stops falling, the machine itself moves, and no run shorter
than that window can see it. Not part of `make bench` (it takes ``--seconds``).

    .venv/bin/python bench/drift_trace.py [--seconds 600]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from _targets import resnet18_bundle
from edgeport.runtime import Session, SessionOptions

WINDOWS = (1, 2, 4, 8, 16, 32, 64, 128)


def allan_pct(blocks: list[np.ndarray]) -> dict[int, float]:
    """Allan deviation (%) of the medians of adjacent windows of ``w`` blocks, per ``w``."""
    level = float(np.median(np.concatenate(blocks)))
    out = {}
    for w in WINDOWS:
        medians = [
            np.median(np.concatenate(blocks[i : i + w])) for i in range(0, len(blocks) - w + 1, w)
        ]
        if len(medians) > 2:
            out[w] = 100 * float(np.sqrt(np.mean(np.diff(medians) ** 2) / 2)) / level
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = resnet18_bundle(Path(tmp) / "b")
        feeds = {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224), np.float32)}
        options = SessionOptions(spinning=False)
        runs = {
            name: Session(out, name, "cpu", options=options)
            for name in ("onnx-fp32", "onnx-int8-static")
        }
        calls = {}
        for name, session in runs.items():
            for _ in range(5):
                session.run(feeds)
            t0 = time.perf_counter()
            session.run(feeds)
            calls[name] = max(1, int(0.25 / (time.perf_counter() - t0)))
        trace: dict[str, list[tuple[float, list[int]]]] = {name: [] for name in runs}
        start = time.perf_counter()
        order = list(runs)
        while time.perf_counter() - start < args.seconds:
            for name in order:
                times = []
                for _ in range(calls[name]):
                    t0 = time.perf_counter_ns()
                    runs[name].run(feeds)
                    times.append(time.perf_counter_ns() - t0)
                trace[name].append((time.perf_counter() - start, times))
                time.sleep(0.1)
            order.reverse()
    result = {}
    for name, rows in trace.items():
        blocks = [np.asarray(t, dtype=np.float64) / 1e6 for _, t in rows]
        bin_of = np.array([int(s // 20) for s, _ in rows])
        bins = [  # whole 20 s bins only: the last one may be cut short
            round(
                float(np.median(np.concatenate([blocks[j] for j in np.flatnonzero(bin_of == i)]))),
                3,
            )
            for i in range(bin_of[-1])
        ]
        allan = allan_pct(blocks)
        result[name] = {"bins_20s_ms": bins, "allan_pct": allan, "blocks": len(blocks)}
        print(f"{name}: {len(blocks)} blocks, median {np.median(np.concatenate(blocks)):.3f} ms")
        print("  20 s bins (ms): " + " ".join(f"{v:.2f}" for v in bins))
        print("  Allan deviation: " + "  ".join(f"{w} blocks {v:.2f}%" for w, v in allan.items()))
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/drift_trace.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
