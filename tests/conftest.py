"""Shared fixtures: bundles exported once per session from the model catalog."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import edgeport
from catalog import CATALOG

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], edgeport.Bundle]:
    """Export a catalog model once per session; returns its bundle."""
    cache: dict[str, edgeport.Bundle] = {}

    def get(name: str) -> edgeport.Bundle:
        if name not in cache:
            entry = CATALOG[name]
            out = tmp_path_factory.mktemp("bundles") / name
            cache[name] = edgeport.export(
                entry.source, list(entry.inputs), dynamic=list(entry.dynamic), out=out
            )
        return cache[name]

    return get


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `edgeport` CLI in a subprocess, as a user would."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "edgeport", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
        timeout=600,
    )
