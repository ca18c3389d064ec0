"""How far does this machine's speed drift, over what time, and do the harness's rerun intervals
hold against it? A trace to read before trusting any latency interval here.

resnet18 (random weights) eager, and fp32 and static int8 through `edgeport.Session`, are timed
in turn in blocks of about ``--block`` seconds for ``--seconds``. The script prints:

- the median of every minute, and its 10th percentile (contention slows some calls, not all);
- the Allan deviation over windows of 5 to 320 seconds: the typical change between the medians
  of two adjacent windows of that length (in %). Sampling noise alone falls as 1/√window;
  where it stops falling, the machine itself moves, and no run shorter than that window can
  see it;
- a replay: pairs of back-to-back `edgeport bench` runs (``--blocks`` blocks spread over
  ``--spread`` seconds each) cut out of the trace every ``--step`` seconds, with the
  harness's own statistics (`block_stats`), and how often each run's median fell inside the
  other run's CI95 and rerun interval, with and without the slow-drift term; and how often
  `--compare`'s rule (:func:`regressed`, threshold 0.10) flags the second run of a pair as a
  regression of the first (either order: a false alarm) and catches it when the second run is
  made 10, 20 or 30% slower (every call time scaled, so every statistic scales with it).

``--save trace.npz`` keeps the trace; ``--load trace.npz`` replays a saved one without timing.
``bench/traces/vm-2core-2026-11-27.npz`` is the 35-minute trace the harness's docstrings and
docs/benchmarking.md quote (2-core VM, 2100 s, 4131 rounds; recorded with ONNX Runtime's
spinning off, as the bench timed then: ``--no-spinning`` records another like it).
Not part of `make bench` (it takes ``--seconds``; 2400 s gives about 170 pairs at 300 s).

    .venv/bin/python bench/drift_trace.py [--seconds 2400] [--spread 120,300] [--save t.npz]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from _targets import resnet18_bundle
from edgeport.benchmarks.harness import regressed
from edgeport.timing import block_stats, call_stats
from stability import mutual

WINDOWS = (5, 10, 20, 40, 80, 160, 320)  # seconds
SLOWDOWNS = (1.1, 1.2, 1.3)  # made on purpose, to see which --compare catches
Trace = dict[str, tuple[np.ndarray, list[np.ndarray]]]  # variant: (block start s, call ns)


def record(seconds: float, block: float, spinning: bool = True) -> Trace:
    """Time eager, onnx-fp32 and onnx-int8-static in turn (order reversed each round), ONNX
    Runtime's threads spinning as the bench times them by default."""
    import torch

    from edgeport.runtime import Session, SessionOptions
    from edgeport.sources import load_model

    feeds = {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224), np.float32)}
    model = load_model("torchvision:resnet18").module.eval()

    def eager() -> Any:
        with torch.inference_mode():
            return model(torch.from_numpy(feeds["input"]))

    with tempfile.TemporaryDirectory() as tmp:
        out = resnet18_bundle(Path(tmp) / "b")
        runs: dict[str, Callable[[], Any]] = {"eager-fp32": eager}
        for name in ("onnx-fp32", "onnx-int8-static"):
            session = Session(out, name, "cpu", options=SessionOptions(spinning=spinning))
            runs[name] = partial(session.run, feeds)
        calls = {}
        for name, run in runs.items():
            for _ in range(5):
                run()
            t0 = time.perf_counter()
            run()
            calls[name] = max(1, int(block / (time.perf_counter() - t0)))
        starts: dict[str, list[float]] = {name: [] for name in runs}
        blocks: dict[str, list[np.ndarray]] = {name: [] for name in runs}
        order = list(runs)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for name in order:
                starts[name].append(time.perf_counter() - start)
                times = []
                for _ in range(calls[name]):
                    t0 = time.perf_counter_ns()
                    runs[name]()
                    times.append(time.perf_counter_ns() - t0)
                blocks[name].append(np.asarray(times, dtype=np.float64))
                time.sleep(0.05)
            order.reverse()
    return {name: (np.asarray(starts[name]), blocks[name]) for name in runs}


def save(trace: Trace, path: str) -> None:
    arrays: dict[str, Any] = {}
    for i, (name, (starts, blocks)) in enumerate(trace.items()):
        arrays[f"name{i}"] = np.array(name)
        arrays[f"starts{i}"] = starts
        arrays[f"lengths{i}"] = np.array([b.size for b in blocks])
        arrays[f"calls{i}"] = np.concatenate(blocks)
    np.savez_compressed(path, **arrays)


def load(path: str) -> Trace:
    data = np.load(path)
    trace = {}
    for i in range(sum(k.startswith("name") for k in data.files)):
        cuts = np.cumsum(data[f"lengths{i}"])[:-1]
        blocks = np.split(data[f"calls{i}"], cuts)
        trace[str(data[f"name{i}"])] = (data[f"starts{i}"], blocks)
    return trace


def allan_pct(starts: np.ndarray, blocks: list[np.ndarray]) -> dict[int, float]:
    """Allan deviation (%) of the medians of adjacent whole windows of ``w`` seconds, per ``w``."""
    level = float(np.median(np.concatenate(blocks)))
    out = {}
    for w in WINDOWS:
        window = (starts // w).astype(int)
        medians = [
            np.median(np.concatenate([blocks[j] for j in np.flatnonzero(window == i)]))
            for i in range(window[-1])
        ]
        if len(medians) > 2:
            out[w] = 100 * float(np.sqrt(np.mean(np.diff(medians) ** 2) / 2)) / level
    return out


def minutes(starts: np.ndarray, blocks: list[np.ndarray], q: float) -> list[float]:
    """The ``q``-th percentile (ms) of the calls of every whole minute."""
    minute = (starts // 60).astype(int)
    return [
        round(
            float(
                np.percentile(np.concatenate([blocks[j] for j in np.flatnonzero(minute == i)]), q)
            )
            / 1e6,
            2,
        )
        for i in range(minute[-1])
    ]


def cut(trace: Trace, start: float, spread: float, n: int) -> dict[str, list[np.ndarray]] | None:
    """The blocks a run of ``n`` blocks spread over ``spread`` s from ``start`` would time."""
    out = {}
    for name, (starts, blocks) in trace.items():
        index = np.searchsorted(starts, start + np.arange(n) * spread / n)
        if index[-1] >= len(blocks):
            return None
        out[name] = [blocks[i] for i in index]
    return out


def replay(trace: Trace, spread: float, n: int, step: float) -> dict[str, Any]:
    """Back-to-back run pairs cut from the trace: how often the intervals held, both ways."""
    names = list(trace)
    kinds = ("ci95", "rerun95_plain", "rerun95")
    held: dict[str, dict[str, list[bool]]] = {k: {name: [] for name in names} for k in kinds}
    moved: dict[str, list[float]] = {name: [] for name in names}
    width: dict[str, list[float]] = {name: [] for name in names}
    flagged: dict[str, list[bool]] = {name: [] for name in names}
    caught: dict[float, dict[str, list[bool]]] = {
        f: {name: [] for name in names} for f in SLOWDOWNS
    }
    start = 0.0
    while (a := cut(trace, start, spread, n)) and (b := cut(trace, start + spread, spread, n)):
        runs = []
        for timed in (a, b):
            stats = block_stats(timed, batch=1)
            for name, blocks in timed.items():
                plain = call_stats(np.concatenate(blocks), 1, blocks, slow=0.0)
                stats[name]["plain_rerun95_ms"] = plain["median_rerun95_ms"]
            runs.append(stats)
        for name in names:
            sa, sb = runs[0][name], runs[1][name]
            for kind, key in zip(
                kinds, ("median_ci95_ms", "plain_rerun95_ms", "median_rerun95_ms"), strict=True
            ):
                held[kind][name].append(mutual(sa["p50_ms"], sa[key], sb["p50_ms"], sb[key]))
            moved[name].append(100 * abs(sb["p50_ms"] / sa["p50_ms"] - 1))
            low, high = sa["median_rerun95_ms"]
            width[name].append(50 * (high - low) / sa["p50_ms"])
            flagged[name] += [regressed(sb, sa), regressed(sa, sb)]
            for f in SLOWDOWNS:
                slower = {
                    "p50_ms": f * sb["p50_ms"],
                    "median_ci95_ms": [f * v for v in sb["median_ci95_ms"]],
                }
                caught[f][name].append(regressed(slower, sa))
        start += step
    pairs = len(moved[names[0]])
    return {
        "spread_s": spread,
        "blocks": n,
        "pairs": pairs,
        "per_variant": {
            name: {
                "moved_pct_median": float(np.median(moved[name])),
                "moved_pct_p90": float(np.percentile(moved[name], 90)),
                "rerun95_half_width_pct_median": float(np.median(width[name])),
                **{f"held_{k}": float(np.mean(held[k][name])) for k in kinds},
                "compare_false_alarms": float(np.mean(flagged[name])),
                "compare_caught": {f"{f:g}x": float(np.mean(caught[f][name])) for f in SLOWDOWNS},
            }
            for name in names
        },
        "all_variants": {
            f"held_{k}": float(np.mean(np.all([held[k][name] for name in names], axis=0)))
            for k in kinds
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2400.0)
    parser.add_argument("--block", type=float, default=0.15, help="seconds per variant block")
    parser.add_argument("--spread", default="120,300", help="replayed run spans (s)")
    parser.add_argument("--blocks", type=int, default=48, help="blocks per replayed run")
    parser.add_argument("--step", type=float, default=10.0, help="s between replayed pairs")
    parser.add_argument("--save", help="write the trace here (.npz)")
    parser.add_argument("--spinning", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--load", help="replay this saved trace instead of timing")
    args = parser.parse_args()
    trace = load(args.load) if args.load else record(args.seconds, args.block, args.spinning)
    if args.save:
        save(trace, args.save)
    result: dict[str, Any] = {"variants": {}, "replays": []}
    for name, (starts, blocks) in trace.items():
        allan = allan_pct(starts, blocks)
        medians, p10 = minutes(starts, blocks, 50), minutes(starts, blocks, 10)
        result["variants"][name] = {
            "minute_p50_ms": medians,
            "minute_p10_ms": p10,
            "allan_pct": allan,
        }
        print(
            f"{name}: {len(blocks)} blocks, median {np.median(np.concatenate(blocks)) / 1e6:.3f} ms"
        )
        print("  minute medians (ms): " + " ".join(f"{v:.1f}" for v in medians))
        print("  minute p10 (ms):     " + " ".join(f"{v:.1f}" for v in p10))
        print("  Allan deviation: " + "  ".join(f"{w} s {v:.2f}%" for w, v in allan.items()))
    for spread in (float(s) for s in args.spread.split(",")):
        out = replay(trace, spread, args.blocks, args.step)
        result["replays"].append(out)
        print(
            f"replay: {out['pairs']} pairs of back-to-back runs, {args.blocks} blocks spread over "
            f"{spread:g} s, each run's median inside the other run's interval"
        )
        for name, v in out["per_variant"].items():
            print(
                f"  {name:17s} moved median {v['moved_pct_median']:.1f}% p90 "
                f"{v['moved_pct_p90']:.1f}%   CI95 {v['held_ci95']:.0%}   rerun95 without drift "
                f"term {v['held_rerun95_plain']:.0%}   rerun95 {v['held_rerun95']:.0%}"
                f" (±{v['rerun95_half_width_pct_median']:.1f}%)"
            )
            print(
                f"  {'':17s} --compare flags a plain rerun {v['compare_false_alarms']:.0%}, "
                "catches it made slower by "
                + " / ".join(f"{k[:-1]}× {c:.0%}" for k, c in v["compare_caught"].items())
            )
        held = out["all_variants"]
        print(
            f"  all {len(trace)} at once: CI95 {held['held_ci95']:.0%}   rerun95 without drift "
            f"term {held['held_rerun95_plain']:.0%}   rerun95 {held['held_rerun95']:.0%}"
        )
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/drift_trace.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
