"""Are `edgeport bench` figures stable? Two back-to-back runs of the same bench; each run's
medians should fall inside the other run's reported intervals.

Issue 5 outcome 5. Uses resnet18 (random weights) fp32 and static int8 (random calibration), plus
the eager and TorchScript baselines, timed with the blocks spread over ``--spread`` seconds so
that they sample the machine's slow drift (see the harness's docstring). Both intervals are
checked: the CI95 of the median (a correct one holds a rerun's median only ~83% of the time,
since the rerun has its own error) and the rerun interval, the 95% prediction interval for a
rerun's median, widened by the slow drift each run's parts show (printed as "slow"). Writes
bench-results/stability.json; exits 1 if a median falls outside the other run's rerun interval.
Each row also shows how far the latency moved between the halves of each run, and whether the
harness flagged that drift (report "warnings"), and the speed-ups vs onnx-fp32 are checked the
same way against their own rerun intervals (paired blocks).

    .venv/bin/python bench/stability.py [--spread 300] [--blocks 48] [--duration 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _targets import resnet18_bundle
from edgeport.benchmarks.harness import BenchOptions, run_bench


def inside(median: float, bounds: list[float]) -> bool:
    return bounds[0] <= median <= bounds[1]


def mutual(a: float, a_bounds: list[float], b: float, b_bounds: list[float]) -> bool:
    """Each run's figure inside the other run's interval."""
    return inside(b, a_bounds) and inside(a, b_bounds)


def span(bounds: list[float]) -> str:
    return f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


def cross_check(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for ra, rb in zip(a["results"], b["results"], strict=True):
        sa, sb = ra["stats"], rb["stats"]
        rows.append(
            {
                "variant": ra["variant"],
                "run1_p50_ms": sa["p50_ms"],
                "run1_ci95_ms": sa["median_ci95_ms"],
                "run1_rerun95_ms": sa["median_rerun95_ms"],
                "run2_p50_ms": sb["p50_ms"],
                "run2_ci95_ms": sb["median_ci95_ms"],
                "run2_rerun95_ms": sb["median_rerun95_ms"],
                "ci95_both_ways": mutual(
                    sa["p50_ms"], sa["median_ci95_ms"], sb["p50_ms"], sb["median_ci95_ms"]
                ),
                "rerun95_both_ways": mutual(
                    sa["p50_ms"], sa["median_rerun95_ms"], sb["p50_ms"], sb["median_rerun95_ms"]
                ),
                "run1_drift_pct": sa["drift_pct"],
                "run2_drift_pct": sb["drift_pct"],
                "run1_slow_drift_pct": sa["slow_drift_pct"],
                "run2_slow_drift_pct": sb["slow_drift_pct"],
                "drift_flagged": sa["drift_outside_ci"] or sb["drift_outside_ci"],
            }
        )
    return rows


def speedup_check(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for ra, rb in zip(a["results"], b["results"], strict=True):
        ia = ra["speedup_intervals"].get("vs_onnx-fp32")
        ib = rb["speedup_intervals"].get("vs_onnx-fp32")
        if not ia or not ib:
            continue
        sa, sb = ra["speedup_vs_onnx_fp32"], rb["speedup_vs_onnx_fp32"]
        rows.append(
            {
                "variant": ra["variant"],
                "run1": sa,
                "run1_rerun95": ia["rerun95"],
                "run2": sb,
                "run2_rerun95": ib["rerun95"],
                "both_ways": mutual(sa, ia["rerun95"], sb, ib["rerun95"]),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--blocks", type=int, default=48)
    parser.add_argument("--spread", type=float, default=300.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = resnet18_bundle(Path(tmp) / "b")
        options = BenchOptions(duration=args.duration, blocks=args.blocks, spread=args.spread)
        # The bundle was made here, so its TorchScript artifact is timed too.
        runs = [run_bench(out, options, trust_code=True) for _ in range(2)]
    rows = cross_check(*runs)
    speedups = speedup_check(*runs)
    ok = all(r["rerun95_both_ways"] for r in rows)
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/stability.json").write_text(
        json.dumps({"medians": rows, "speedups": speedups}, indent=2) + "\n"
    )
    print(f"blocks spread over {args.spread:g} s per run, {args.blocks} blocks")
    for r in rows:
        for run, label in ((1, r["variant"]), (2, "")):
            print(
                f"{label:18s} run{run} p50 {r[f'run{run}_p50_ms']:7.3f} ms CI95 "
                f"{span(r[f'run{run}_ci95_ms'])} rerun95 {span(r[f'run{run}_rerun95_ms'])}",
                end="\n" if run == 1 else "   ",
            )
        print(
            f"CI95 {'ok' if r['ci95_both_ways'] else 'OUTSIDE'}, "
            f"rerun95 {'ok' if r['rerun95_both_ways'] else 'OUTSIDE'}"
            f"   drift within runs {r['run1_drift_pct']:+.1f}% / {r['run2_drift_pct']:+.1f}%"
            f", slow {r['run1_slow_drift_pct']:.1f}% / {r['run2_slow_drift_pct']:.1f}%"
            + ("  (flagged unstable)" if r["drift_flagged"] else "")
        )
    ci_ok = sum(r["ci95_both_ways"] for r in rows)
    print(f"      each run's median inside the other run's CI95: {ci_ok} of {len(rows)}")
    print(f"{'PASS' if ok else 'FAIL'}  each run's medians inside the other run's rerun interval")
    missed = [r for r in rows if not r["rerun95_both_ways"]]
    if missed:
        flagged = sum(r["drift_flagged"] for r in missed)
        print(
            f"      {flagged} of the {len(missed)} misses were flagged by the harness itself "
            "(latency drifted within a run by more than its CI95)"
        )
    for r in speedups:
        print(
            f"speed-up of {r['variant']:18s} vs onnx-fp32: run1 {r['run1']:.3f}× rerun95 "
            f"{span(r['run1_rerun95'])}   run2 {r['run2']:.3f}× rerun95 "
            f"{span(r['run2_rerun95'])}   " + ("ok" if r["both_ways"] else "OUTSIDE")
        )
    held = sum(r["both_ways"] for r in speedups)
    print(f"      speed-ups inside the other run's rerun interval: {held} of {len(speedups)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
