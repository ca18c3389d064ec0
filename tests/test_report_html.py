"""report.html in a real browser: headless Chromium renders the plots and shows report.json's
numbers. Skips only where Chromium is missing (`make test` installs Debian's package)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import edgeport
from edgeport.benchmarks.harness import BenchOptions, run_bench
from edgeport.benchmarks.report import write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1800",
]


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_report_renders_in_chromium(
    exported: Callable[[str], edgeport.Bundle], tmp_path: Path
) -> None:
    from PIL import Image

    report = run_bench(exported("small_cnn").root, BenchOptions(duration=0.2, blocks=2))
    paths = write_reports(report, tmp_path)
    url = paths["html"].resolve().as_uri()
    dom = _chromium("--virtual-time-budget=3000", "--dump-dom", url).stdout
    rendered = [int(w) for w in re.findall(r'data-rendered="(\d+)"', dom)]
    assert len(rendered) == 3, dom[:500]
    assert min(rendered) > 300  # every plot decoded to a real image
    saved = json.loads(paths["json"].read_text())
    for row in saved["results"]:
        assert f"<td>{row['variant']}</td>" in dom
        assert f"<td>{row['stats']['p50_ms']:.3f}</td>" in dom
        assert f"<td>{row['stats']['p99_ms']:.3f}</td>" in dom
    assert f"<b>{saved['recommended']['artifact']}</b>" in dom
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", url)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (1800, 1400)
    assert (pixels < 128).mean() > 0.01  # text, axes and bars, not a blank page
