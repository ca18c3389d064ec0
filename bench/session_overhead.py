"""Benchmark: what `edgeport.Session.run` costs over a raw `onnxruntime.InferenceSession.run`.

Targets (issue 3): resnet18 fp32 within 3% of raw; a tiny MLP (64→64→10, batch 1) under 20 µs of
extra cost per call. Both sessions use the same ONNX Runtime options with thread spinning off, so
that interleaved blocks (raw, edgeport, raw, ...) do not steal each other's cores
(docs/design.md §6).
Writes bench-results/session_overhead.json; exits 1 if a target is missed.

    .venv/bin/python bench/session_overhead.py [--blocks N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

import edgeport
from _targets import finish
from edgeport.runtime import Session, SessionOptions


def export(model: torch.nn.Module, spec: str, out: Path) -> Path:
    options = edgeport.ExportOptions(formats=("onnx",))
    return edgeport.export(model, [spec], out=out, options=options).path_of("onnx-fp32")


def interleaved(
    variants: dict[str, Callable[[], Any]], *, blocks: int, calls: int, pause: float
) -> dict[str, list[float]]:
    """Mean seconds per call of each block, variants alternating block by block."""
    for fn in variants.values():  # warm-up
        for _ in range(max(3, calls // 10)):
            fn()
    per_block: dict[str, list[float]] = {name: [] for name in variants}
    for block in range(blocks):
        order = list(variants) if block % 2 == 0 else list(reversed(variants))
        for name in order:
            fn = variants[name]
            start = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            per_block[name].append((time.perf_counter_ns() - start) / calls / 1e9)
            time.sleep(pause)
    return per_block


def summarize(per_block: dict[str, list[float]]) -> dict[str, Any]:
    raw, edge = per_block["raw"], per_block["edgeport"]
    ratios = [e / r for r, e in zip(raw, edge, strict=True)]
    diffs = [e - r for r, e in zip(raw, edge, strict=True)]
    return {
        "raw_median_s": statistics.median(raw),
        "edgeport_median_s": statistics.median(edge),
        "ratio_median": statistics.median(ratios),
        "extra_per_call_median_s": statistics.median(diffs),
        "blocks": len(raw),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--out", default="bench-results/session_overhead.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    options = SessionOptions(spinning=False)
    results: dict[str, Any] = {"spinning": False, "onnxruntime": ort.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        import torchvision

        cases = {
            "resnet18": (torchvision.models.resnet18(), "input:1x3x224x224", 5, 0.5, 0.03),
            "mlp_64_64_10": (
                torch.nn.Sequential(
                    torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
                ),
                "input:1x64",
                2000,
                0.05,
                None,
            ),
        }
        for name, (model, spec, calls, pause, _) in cases.items():
            path = export(model, spec, Path(tmp) / name)
            raw = ort.InferenceSession(
                str(path), options.to_ort(), providers=["CPUExecutionProvider"]
            )
            edge = Session(path, options=options)
            shape = edge.inputs[0].concrete_shape()
            x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
            feeds = {"input": x}
            per_block = interleaved(
                {"raw": partial(raw.run, None, feeds), "edgeport": partial(edge.run, feeds)},
                blocks=args.blocks,
                calls=calls,
                pause=pause,
            )
            results[name] = summarize(per_block)
    r18, mlp = results["resnet18"], results["mlp_64_64_10"]
    checks = {
        "resnet18 Session.run within 3% of raw": r18["ratio_median"] <= 1.03,
        "MLP extra cost per call under 20 µs": mlp["extra_per_call_median_s"] < 20e-6,
    }
    print(
        f"resnet18 fp32: raw {r18['raw_median_s'] * 1e3:.2f} ms, edgeport "
        f"{r18['edgeport_median_s'] * 1e3:.2f} ms, ratio {r18['ratio_median']:.4f} "
        f"(median of {r18['blocks']} interleaved blocks)"
    )
    print(
        f"MLP 64-64-10 batch 1: raw {mlp['raw_median_s'] * 1e6:.2f} µs, edgeport "
        f"{mlp['edgeport_median_s'] * 1e6:.2f} µs, extra {mlp['extra_per_call_median_s'] * 1e6:.2f}"
        f" µs/call"
    )
    return finish(results, checks, args.out)


if __name__ == "__main__":
    sys.exit(main())
