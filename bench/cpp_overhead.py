"""Benchmark: `edgeport-run bench` against a minimal ONNX Runtime C++ API program (ort-baseline).

Target (issue 6): resnet18 static int8 at batch 1 through libedgeport within 2% of calling ONNX
Runtime's C++ API directly. Both programs use the same session settings (ONNX Runtime's
defaults: spinning on, default threads), time each call in blocks and report the median per-call
latency; they run as separate processes, alternating (A B B A A B ...) so that drift of the
machine hits both alike, and the ratio is the median over rounds of edgeport's p50 / the
baseline's p50.
Writes bench-results/cpp_overhead.json; exits 1 if the target is missed.

    .venv/bin/python bench/cpp_overhead.py [--rounds N] [--build build/cpp]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import edgeport
from _targets import finish
from edgeport.quantization import QuantizeOptions, quantize


def edgeport_p50(run: Path, bundle: Path, artifact: str, seconds: float, tmp: Path) -> float:
    report = tmp / "cpp.json"
    subprocess.run(
        [
            str(run),
            "bench",
            str(bundle),
            "--artifact",
            artifact,
            "--duration",
            str(seconds),
            "--json",
            str(report),
        ],
        check=True,
        capture_output=True,
    )
    return float(json.loads(report.read_text())["results"][0]["stats"]["p50_ms"])


def baseline_p50(baseline: Path, model: Path, inputs: list[str], seconds: float) -> float:
    out = subprocess.run(
        [str(baseline), str(model), *inputs, "--duration", str(seconds)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out)["p50_ms"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--build", default="build/cpp")
    parser.add_argument("--out", default="bench-results/cpp_overhead.json")
    args = parser.parse_args()
    build = Path(args.build)
    run, baseline = build / "edgeport-run", build / "ort-baseline"
    if not run.exists() or not baseline.exists():
        raise SystemExit(f"no C++ build at {build}: run `make cpp` first")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        bundle = tmp / "resnet18"
        edgeport.export(
            "torchvision:resnet18",
            ["input:1x3x224x224"],
            out=bundle,
            options=edgeport.ExportOptions(formats=("onnx",)),
        )
        quantize(bundle, QuantizeOptions(mode="static", calib="random"))
        artifact = "onnx-int8-static"
        manifest = json.loads((bundle / "manifest.json").read_text())
        model = bundle / manifest["artifacts"][artifact]["path"]
        np.save(
            tmp / "x.npy", np.random.default_rng(0).standard_normal((1, 3, 224, 224), np.float32)
        )
        inputs = [f"input={tmp / 'x.npy'}"]
        rounds: list[dict[str, Any]] = []
        for i in range(args.rounds):
            order = ["edgeport", "baseline"] if i % 2 == 0 else ["baseline", "edgeport"]
            row: dict[str, Any] = {"order": order}
            for who in order:
                row[who] = (
                    edgeport_p50(run, bundle, artifact, args.seconds, tmp)
                    if who == "edgeport"
                    else baseline_p50(baseline, model, inputs, args.seconds)
                )
            row["ratio"] = row["edgeport"] / row["baseline"]
            print(
                f"round {i + 1}: edgeport-run {row['edgeport']:.3f} ms, ort-baseline "
                f"{row['baseline']:.3f} ms, ratio {row['ratio']:.4f}",
                flush=True,
            )
            rounds.append(row)
    ratio = statistics.median(r["ratio"] for r in rounds)
    results = {
        "model": "torchvision resnet18, static int8 (QDQ), batch 1",
        "rounds": rounds,
        "median_ratio": ratio,
        "edgeport_p50_ms": statistics.median(r["edgeport"] for r in rounds),
        "baseline_p50_ms": statistics.median(r["baseline"] for r in rounds),
    }
    print(f"median ratio edgeport-run / ort-baseline: {ratio:.4f}")
    return finish(
        results, {"libedgeport within 2% of raw ONNX Runtime C++": ratio <= 1.02}, args.out
    )


if __name__ == "__main__":
    raise SystemExit(main())
