"""Does `edgeport bench --compare` catch a real slowdown? resnet18 fp32 timed with 2 threads as
the baseline, then with 1 thread (about 1.7× slower here: a regression to flag) and with 2
threads again (no regression). This used to be a unit test; it compares speeds, so it lives here
(a unit test must pass while something else keeps the cores busy).

    .venv/bin/python bench/compare_cli.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from _targets import finish
from edgeport.benchmarks.harness import BenchOptions, compare_reports, run_bench
from edgeport.exporter.flow import ExportOptions, export


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "b"
        export(
            "torchvision:resnet18",
            ["input:1x3x224x224"],
            out=out,
            options=ExportOptions(formats=("onnx",)),
        )

        def bench(threads: int) -> dict[str, Any]:
            options = BenchOptions(
                artifacts=("onnx-fp32",),
                baselines=False,
                threads=(threads,),
                duration=2.0,
                blocks=6,
                spread=4.0,
            )
            return run_bench(out, options)

        base, pinned, again = bench(2), bench(1), bench(2)
    flagged = compare_reports(pinned, base, threshold=0.25)
    quiet = compare_reports(again, base, threshold=0.25)
    for line in flagged + quiet:
        print(f"regression: {line}")
    targets = {
        "--compare flags threads 1 against a threads-2 baseline": len(flagged) == 1,
        "--compare is quiet on a threads-2 rerun": not quiet,
    }
    results = {"flagged": flagged, "rerun_flagged": quiet}
    return finish(results, targets, "bench-results/compare_cli.json")


if __name__ == "__main__":
    raise SystemExit(main())
