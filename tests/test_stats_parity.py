"""The C++ latency statistics (cpp/src/stats.cpp, what `edgeport-run bench` reports) against the
Python reference (`edgeport.timing.call_stats` and `block_stats`): the same blocks of
per-call times give the same numbers, to 1e-9 relative, the bootstrap intervals included (the
C++ side reproduces numpy's `default_rng` draws).

Needs the C++ build's `stats_json` (`make cpp`; `make test` sets EDGEPORT_CPP_BUILD).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeport.timing import block_stats, call_stats

BUILD = os.environ.get("EDGEPORT_CPP_BUILD")
STATS = Path(BUILD) / "stats_json" if BUILD else None

pytestmark = [
    pytest.mark.cpp,
    pytest.mark.skipif(BUILD is None, reason="EDGEPORT_CPP_BUILD is unset (run `make cpp`)"),
    pytest.mark.skipif(
        STATS is not None and not STATS.exists(), reason=f"no {STATS} (run `make cpp`)"
    ),
]

Blocks = list[np.ndarray]


def skewed(rng: np.random.Generator, blocks: int, calls: int) -> Blocks:
    """Right-skewed calls (lognormal around 2 ms) with a rare slow outlier per block."""
    out = []
    for _ in range(blocks):
        ms = 2.0 * rng.lognormal(0.0, 0.15, calls)
        ms[rng.integers(0, calls)] *= 4
        out.append(ms)
    return out_ns(out)


def bimodal(rng: np.random.Generator, blocks: int, calls: int) -> Blocks:
    """Two modes (1 ms and 1.6 ms), the share of the slow one varying from block to block."""
    out = []
    for _ in range(blocks):
        slow = rng.random(calls) < rng.uniform(0.1, 0.6)
        out.append(np.where(slow, 1.6, 1.0) * rng.normal(1.0, 0.03, calls))
    return out_ns(out)


def drifting(rng: np.random.Generator, blocks: int, calls: int) -> Blocks:
    """A machine whose speed drifts ±8% over the run: a slow-drift term shows."""
    phase = np.sin(np.linspace(0, 2 * np.pi, blocks))
    return out_ns([3.0 * (1 + 0.08 * p) * rng.lognormal(0, 0.05, calls) for p in phase])


def out_ns(blocks_ms: list[np.ndarray]) -> Blocks:
    """Whole nanoseconds, as perf_counter_ns gives them (the harness takes ns)."""
    return [np.round(b * 1e6).astype(np.float64) for b in blocks_ms]


FIXTURES = {
    "skewed-1": (skewed, 1, 40),
    "skewed-2": (skewed, 2, 25),
    "skewed-8": (skewed, 8, 30),
    "skewed-48": (skewed, 48, 12),
    "bimodal-8": (bimodal, 8, 31),
    "bimodal-48": (bimodal, 48, 9),
    "drifting-48": (drifting, 48, 20),
    "drifting-27": (drifting, 27, 16),
}


def fixture_blocks(name: str) -> Blocks:
    make, blocks, calls = FIXTURES[name]
    return make(np.random.default_rng(sum(map(ord, name))), blocks, calls)


def cpp_stats(tmp_path: Path, given: dict[str, Any]) -> Any:
    path = tmp_path / "blocks.json"
    path.write_text(json.dumps(given))
    done = subprocess.run(
        [str(STATS), str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def as_ms(blocks: Blocks) -> list[list[float]]:
    """The blocks in ms exactly as the harness divides them (float64 round-trips in JSON)."""
    return [(b / 1e6).tolist() for b in blocks]


def assert_same(cpp: Any, python: Any, where: str = "stats") -> None:
    if isinstance(python, dict):
        assert set(cpp) == set(python), f"{where}: keys differ"
        for key in python:
            assert_same(cpp[key], python[key], f"{where}.{key}")
    elif isinstance(python, list | tuple):
        assert len(cpp) == len(python), where
        for i, (c, p) in enumerate(zip(cpp, python, strict=True)):
            assert_same(c, p, f"{where}[{i}]")
    elif isinstance(python, bool) or python is None:
        assert cpp == python, f"{where}: C++ {cpp!r}, Python {python!r}"
    else:
        assert cpp == pytest.approx(python, rel=1e-9, abs=1e-12), (
            f"{where}: C++ {cpp!r}, Python {python!r}"
        )


@pytest.mark.parametrize("name", list(FIXTURES))
@pytest.mark.parametrize("seed", [0, 7])
def test_call_stats_agree(name: str, seed: int, tmp_path: Path) -> None:
    blocks = fixture_blocks(name)
    python = call_stats(np.concatenate(blocks), 4, blocks, seed=seed)
    cpp = cpp_stats(tmp_path, {"batch": 4, "seed": seed, "blocks": as_ms(blocks)})
    assert_same(cpp, python)


def test_block_stats_pool_the_drift(tmp_path: Path) -> None:
    timed = {name: fixture_blocks(name) for name in ("skewed-48", "bimodal-48", "drifting-48")}
    python = block_stats(timed, 2)
    cpp = cpp_stats(tmp_path, {"batch": 2, "variants": [as_ms(b) for b in timed.values()]})
    assert len(cpp) == len(python)
    for got, (name, expected) in zip(cpp, python.items(), strict=True):
        assert_same(got, expected, name)
    # The pooled drift is one number for all, and not zero here: the normal draws that widen
    # the rerun interval were compared too.
    assert {s["slow_drift_pct"] for s in cpp} == {cpp[0]["slow_drift_pct"]}
    assert cpp[0]["slow_drift_pct"] > 0


def test_drifting_fixture_exercises_the_slow_drift() -> None:
    """The fixtures cover a run with a slow-drift term (normal draws) and one without."""
    drifts = {
        name: call_stats(np.concatenate(b), 1, b)["slow_drift_pct"]
        for name, b in ((n, fixture_blocks(n)) for n in FIXTURES)
    }
    assert drifts["drifting-48"] > 1.0
    assert min(drifts.values()) == 0.0
