"""Shared ending of the benchmark scripts: save the results, print PASS/FAIL per target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def finish(results: dict[str, Any], targets: dict[str, bool], out: str) -> int:
    """Write ``results`` (with ``targets``) to ``out`` as JSON; exit code 1 if a target missed."""
    results["targets"] = targets
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=2) + "\n")
    for label, ok in targets.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    print(f"written: {out}")
    return 0 if all(targets.values()) else 1
