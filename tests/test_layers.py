"""The layering (pyproject.toml [tool.importlinter]) holds, and the check catches a violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

LINT = Path(sys.executable).with_name("lint-imports")


def _lint(pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=REPO, capture_output=True, text=True, env=env, timeout=300
    )


def test_the_layers_hold() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "edgeport layers KEPT" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    # A base service (parity) importing the CLI: exactly what the contract forbids.
    shutil.copytree(REPO / "src/edgeport", tmp_path / "edgeport")
    parity = tmp_path / "edgeport/parity.py"
    parity.write_text(parity.read_text() + "\nfrom edgeport import cli  # noqa: E402, F401\n")
    result = _lint(pythonpath=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "edgeport layers BROKEN" in result.stdout
    assert "edgeport.parity is not allowed to import edgeport.cli" in result.stdout
