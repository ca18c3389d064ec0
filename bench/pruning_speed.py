"""Benchmark: what structured pruning buys on this machine.

Targets (issue 7): resnet18 pruned 50% (l1, classifier kept, channels rounded to 8 — the setup of
Torch-Pruning's own resnet18 figure, 0.27× MACs and 3.8×) has ≤ 0.28× the MACs of the unpruned
model and runs ≥ 3× faster in ONNX Runtime fp32 at batch 1; pruned + static int8 runs ≥ 10×
faster than eager PyTorch fp32 (unpruned). Timing: interleaved blocks in one process, ONNX
Runtime spinning off (docs/design.md §6). Writes bench-results/pruning.json; exits 1 on a miss.

    .venv/bin/python bench/pruning_speed.py [--blocks N]
"""

from __future__ import annotations

import argparse
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

import edgeport
from _targets import finish
from edgeport.pruning import PruneOptions, prune
from edgeport.quantization import QuantizeOptions, quantize
from edgeport.runtime import Session, SessionOptions
from edgeport.timing import Schedule, time_interleaved
from quantization_speed import photo_patches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--out", default="bench-results/pruning.json")
    args = parser.parse_args()
    images = photo_patches(count=64)
    spec = ["input:1x3x224x224"]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        dense = edgeport.export(
            "torchvision:resnet18",
            spec,
            out=tmp / "dense",
            options=edgeport.ExportOptions(formats=("onnx",)),
        )
        pruned = prune(
            "torchvision:resnet18",
            spec,
            out=tmp / "pruned",
            options=PruneOptions(ratio=0.5, ignore=("fc",)),
            formats=("onnx",),
        )
        np.savez(tmp / "calib.npz", input=images[:48])
        np.savez(tmp / "eval.npz", input=images[48:])
        pruned = quantize(
            pruned.root,
            QuantizeOptions(
                mode="static", calib=str(tmp / "calib.npz"), eval=str(tmp / "eval.npz")
            ),
        )
        quiet = SessionOptions(spinning=False)
        x = images[:1]
        torch.manual_seed(0)
        eager = torchvision.models.resnet18().eval()
        tx = torch.from_numpy(x)

        def run_eager() -> Any:
            with torch.inference_mode():
                return eager(tx)

        sessions = {
            "dense-fp32": Session(dense.path_of("onnx-fp32"), options=quiet),
            "pruned-fp32": Session(pruned.path_of("onnx-fp32"), options=quiet),
            "pruned-int8": Session(pruned.path_of("onnx-int8-static"), options=quiet),
        }
        variants = {"eager-fp32": run_eager}
        variants.update({k: partial(s.run, {"input": x}) for k, s in sessions.items()})
        schedule = Schedule(blocks=args.blocks, duration=0.15 * args.blocks, pause=0.3)
        timing = time_interleaved(variants, schedule)
        entry = pruned.manifest["pruning"]
    results: dict[str, Any] = {
        "macs_before": entry["macs_before"],
        "macs_after": entry["macs_after"],
        "macs_ratio": entry["macs_ratio"],
        "params_ratio": entry["params_ratio"],
        "p50_ms": {k: v["p50_ms"] for k, v in timing.stats.items()},
        "ci95_ms": {k: v["median_ci95_ms"] for k, v in timing.stats.items()},
        "pruned_fp32_vs_dense_fp32": timing.speedup("dense-fp32", "pruned-fp32")["point"],
        "pruned_int8_vs_eager_fp32": timing.speedup("eager-fp32", "pruned-int8")["point"],
        "int8_cosine_vs_pruned_fp32": pruned.artifact("onnx-int8-static")["evaluation"]["cosine"],
    }
    for name, ms in results["p50_ms"].items():
        print(f"{name:12s} p50 {ms:8.3f} ms")
    print(
        f"MACs {results['macs_ratio']:.3f}×, pruned fp32 {results['pruned_fp32_vs_dense_fp32']:.2f}"
        f"× dense fp32, pruned int8 {results['pruned_int8_vs_eager_fp32']:.2f}× eager fp32"
    )
    targets = {
        "resnet18 pruned 50% ≤ 0.28× MACs": results["macs_ratio"] <= 0.28,
        "pruned fp32 ≥ 3× faster than unpruned fp32 (ONNX Runtime, batch 1)": results[
            "pruned_fp32_vs_dense_fp32"
        ]
        >= 3.0,
        "pruned + static int8 ≥ 10× faster than eager fp32": results["pruned_int8_vs_eager_fp32"]
        >= 10.0,
    }
    return finish(results, targets, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
