"""Shared parts of the benchmark scripts: the resnet18 test bundle, and the ending (save the
results, print PASS/FAIL per target)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def resnet18_bundle(out: Path) -> Path:
    """resnet18 (random weights) exported to ``out`` with fp32 and static int8 (random
    calibration): the bundle the stability and drift benches time."""
    from edgeport.exporter.flow import export
    from edgeport.quantization import QuantizeOptions, quantize

    export("torchvision:resnet18", ["input:1x3x224x224"], out=out)
    quantize(out, QuantizeOptions(calib="random"))
    return out


def finish(results: dict[str, Any], targets: dict[str, bool], out: str) -> int:
    """Write ``results`` (with ``targets``) to ``out`` as JSON; exit code 1 if a target missed."""
    results["targets"] = targets
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=2) + "\n")
    for label, ok in targets.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    print(f"written: {out}")
    return 0 if all(targets.values()) else 1
