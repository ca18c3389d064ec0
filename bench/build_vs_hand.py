"""Cross-check: the int8 speed-up over eager that `edgeport build` reports, against a separate
hand-timed measurement (a plain loop over torch and a raw onnxruntime.InferenceSession).

Issue 5 outcome 2: `edgeport build torchvision:resnet18 --input input:1x3x224x224 --calib random`
must report an int8-static speed-up over eager within 10% of the hand-timed one.

    .venv/bin/python bench/build_vs_hand.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from edgeport.benchmarks.harness import BenchOptions
from edgeport.pipeline import BuildOptions, build
from edgeport.sources import load_model


def hand_timed(model: torch.nn.Module, int8: Path, blocks: int = 10, calls: int = 10) -> float:
    """Median eager time / median int8 time, alternating blocks, one input, a plain
    onnxruntime.InferenceSession with its defaults."""
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    tensor = torch.from_numpy(x)

    def eager() -> None:
        with torch.inference_mode():
            model(tensor)

    def int8_run() -> None:
        session.run(None, {"input": x})

    times: dict[str, list[float]] = {"eager": [], "int8": []}
    for fn in (eager, int8_run):
        for _ in range(5):
            fn()
    for block in range(blocks):
        pair = [("eager", eager), ("int8", int8_run)]
        for name, fn in pair if block % 2 == 0 else pair[::-1]:
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls)
            time.sleep(0.1)
    return statistics.median(times["eager"]) / statistics.median(times["int8"])


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "b"
        options = BuildOptions(
            inputs=("input:1x3x224x224",), calib="random", bench=BenchOptions(duration=2.0)
        )
        result = build("torchvision:resnet18", out, options)
        row = next(r for r in result.report["results"] if r["variant"] == "onnx-int8-static")
        reported = row["speedup_vs_eager"]
        model = load_model("torchvision:resnet18").module
        hand = hand_timed(model, result.bundle.path_of("onnx-int8-static"))
    gap = abs(reported - hand) / hand
    ok = gap <= 0.10
    result_json = {
        "reported_speedup_vs_eager": reported,
        "hand_timed": hand,
        "gap": gap,
        "within_10_percent": ok,
    }
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/build_vs_hand.json").write_text(json.dumps(result_json, indent=2) + "\n")
    print(f"report: int8-static {reported:.2f}× eager; hand-timed {hand:.2f}×; gap {gap:.1%}")
    print(f"{'PASS' if ok else 'FAIL'}  report within 10% of the hand-timed speed-up")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
