"""Benchmark: `edgeport quantize` and `edgeport build` recommend the same artifact for the same
model and data, pruned or not (issue 16).

Per case, the commands a user runs: `export` (or `prune`) then `quantize --calib random`, and
`build --calib random` (with `--prune` for the pruned case), each into its own bundle. The two
recommendations come from two measurements (quantize's speed check, then build's bench), made
by the one timing engine with the one rule (`edgeport.recommend`): they must name the same
artifact. Cases: resnet18 (random weights) unpruned and pruned 50% — the pruned one is where
quantize used to recommend fp32 against its own 1.81× measurement. Writes
bench-results/recommend_agreement.json; exits 1 on a disagreement.

    .venv/bin/python bench/recommend_agreement.py [--cases resnet18,resnet18-pruned]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _targets import finish

EDGEPORT = str(Path(sys.executable).with_name("edgeport"))
INPUT = ["--input", "input:1x3x224x224"]
CASES: dict[str, dict[str, list[str]]] = {
    "resnet18": {
        "make": ["export", "torchvision:resnet18", *INPUT],
        "build": ["build", "torchvision:resnet18", *INPUT, "--calib", "random"],
    },
    "resnet18-pruned": {
        "make": ["prune", "torchvision:resnet18", *INPUT, "--ratio", "0.5"],
        "build": ["build", "torchvision:resnet18", *INPUT, "--calib", "random", "--prune", "0.5"],
    },
}


def edgeport(*args: str) -> None:
    started = time.monotonic()
    done = subprocess.run([EDGEPORT, *args], capture_output=True, text=True)
    print(f"  edgeport {' '.join(args)}  [{time.monotonic() - started:.0f} s]", flush=True)
    if done.returncode != 0:
        raise SystemExit(f"edgeport {args[0]} failed ({done.returncode}): {done.stderr.strip()}")


def recommended(bundle: Path) -> dict[str, Any]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    speed = {
        name: entry["speed"]["speedup_vs_fp32"]
        for name, entry in manifest["artifacts"].items()
        if entry.get("speed")
    }
    return {**manifest["recommended"], "quantize_speedup": speed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", default="bench-results/recommend_agreement.json")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    targets = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for case in args.cases.split(","):
            print(f"{case}:", flush=True)
            steps = CASES[case]
            alone, built = tmp / f"{case}-quantize", tmp / f"{case}-build"
            edgeport(*steps["make"], "--out", str(alone))
            edgeport("quantize", str(alone), "--calib", "random")
            edgeport(*steps["build"], "--out", str(built))
            quantized, benched = recommended(alone), recommended(built)
            results[case] = {"quantize": quantized, "build": benched}
            print(f"  quantize recommends {quantized['artifact']}: {quantized['reason']}")
            print(f"  build    recommends {benched['artifact']}: {benched['reason']}")
            targets[f"{case}: quantize and build recommend the same artifact"] = (
                quantized["artifact"] == benched["artifact"]
            )
    return finish(results, targets, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
