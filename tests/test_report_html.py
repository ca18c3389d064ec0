"""report.html in a real browser. Headless Chromium lays out the inline SVG plots, the page's own
check (`PLOT_CHECK_SCRIPT`) measures them as laid out, and the tests read its findings from the
dumped DOM: no two texts of a figure overlap, none is cut off, every accuracy panel shows the
recommended artifact and the Pareto front, the legend names every variant. Skips only where
Chromium is missing (`make test` installs Debian's package).

Each page checked is also screenshotted whole, into ``$EDGEPORT_SCREENSHOTS`` (default: the
test's ``tmp_path``), to look at::

    EDGEPORT_SCREENSHOTS=shots .venv/bin/pytest tests/test_report_html.py   # → shots/*.png
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgeport
from edgeport.benchmarks.harness import BenchOptions, run_bench
from edgeport.benchmarks.report import (
    PLOT_CHECK_SCRIPT,
    accuracy_axis,
    figure_html,
    html_report,
    pareto_front,
    render_svg,
    write_reports,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH = 1400
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (make test installs it)"
)


def _chromium(*args: str, height: int = 1800) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    window = f"--window-size={WIDTH},{height}"
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, window, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )


def check_page(page: Path, shots: Path | None = None) -> tuple[dict[str, Any], str]:
    """Render ``page`` in Chromium; returns the plot check's findings and the dumped DOM.

    With ``shots``, also screenshots the whole page (window as tall as the page) to
    ``shots/<page stem>.png`` and checks the picture is not blank.
    """
    dom = _chromium("--virtual-time-budget=3000", "--dump-dom", page.resolve().as_uri()).stdout
    found = re.search(r'<div id="plot-check"[^>]*data-result="([^"]*)"', dom)
    assert found, dom[-2000:]
    result = json.loads(html.unescape(found.group(1)))
    if shots is not None:
        from PIL import Image

        shot = shots / f"{page.stem}.png"
        height = min(result["page"]["height"], 8000)
        _chromium(f"--screenshot={shot}", page.resolve().as_uri(), height=height)
        pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
        assert pixels.shape == (height, WIDTH)
        assert (pixels < 128).mean() > 0.01  # text, axes and marks, not a blank page
    return result, dom


def assert_readable(result: dict[str, Any], report: dict[str, Any]) -> None:
    """No overlap, nothing cut off, every mark in place, one panel per configuration, and the
    accuracy legend naming every variant with an accuracy and the recommended artifact."""
    assert result["overlaps"] == []
    assert result["clipped"] == []
    assert result["missing"] == []
    rows = report["results"]
    configurations = {(r["provider"], r["batch"], r["threads"]) for r in rows}
    figures = result["figures"]
    assert figures["accuracy"]["panels"] == figures["latency"]["panels"] == len(configurations)
    assert set(figures["accuracy"]["legend"]) == {
        *accuracy_axis(report).values,
        f"recommended: {report['recommended']['artifact']}",
        "Pareto front",
    }
    assert result["texts"] > 20 * len(configurations)  # ticks, titles, labels were measured


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: ``$EDGEPORT_SCREENSHOTS`` if set, else the test's tmp_path."""
    where = Path(os.environ.get("EDGEPORT_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`edgeport demo` with a short bench: the digits CNN, static int8 with labelled evaluation,
    benched at batch 1 and 8."""
    from edgeport.demo import DEMO_INPUT, digits_16, train_digits_cnn
    from edgeport.pipeline import BuildOptions, build

    root = tmp_path_factory.mktemp("demo")
    model, _ = train_digits_cnn()
    x_train, _, x_test, y_test = digits_16()
    np.savez(root / "calib.npz", image=x_train[:256])
    np.savez(root / "eval.npz", image=x_test, labels=y_test)
    options = BuildOptions(
        inputs=(DEMO_INPUT,),
        calib=str(root / "calib.npz"),
        eval=str(root / "eval.npz"),
        max_drop=1.0,
        bench=BenchOptions(duration=0.2, blocks=2, warmup=2, batches=(1, 8)),
    )
    return build(model, root / "bundle", options, eager_model=model).report


@needs_chromium
def test_report_renders_in_chromium(
    exported: Callable[[str], edgeport.Bundle], tmp_path: Path, shots: Path
) -> None:
    report = run_bench(exported("small_cnn").root, BenchOptions(duration=0.2, blocks=2))
    paths = write_reports(report, tmp_path)
    page = paths["html"].rename(tmp_path / "small_cnn.html")
    result, dom = check_page(page, shots)
    saved = json.loads(paths["json"].read_text())
    for row in saved["results"]:
        assert f"<td>{row['variant']}</td>" in dom
        assert f"<td>{row['stats']['p50_ms']:.3f}</td>" in dom
        assert f"<td>{row['stats']['p99_ms']:.3f}</td>" in dom
    assert f"<b>{saved['recommended']['artifact']}</b>" in dom
    assert set(result["figures"]) == {"accuracy", "latency", "size"}
    assert min(f["width"] for f in result["figures"].values()) > 300  # drawn, not collapsed
    assert_readable(result, saved)
    assert "cosine vs fp32 (nothing quantized)" in dom  # no evaluation: y says what it is


@pytest.mark.slow
@needs_chromium
def test_demo_report_plots_are_readable(
    demo_report: dict[str, Any], tmp_path: Path, shots: Path
) -> None:
    page = tmp_path / "demo.html"
    page.write_text(html_report(demo_report))
    result, dom = check_page(page, shots)
    assert sorted({r["batch"] for r in demo_report["results"]}) == [1, 8]
    assert_readable(result, demo_report)
    assert result["figures"]["accuracy"]["panels"] == 2
    assert "onnx-int8-static" in result["figures"]["accuracy"]["legend"]
    samples = demo_report["accuracy"]["onnx-int8-static"]["samples"]
    assert f"accuracy ({samples} labelled samples)" in dom


def resnet18_shaped_report(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a real report) with resnet18's variants under `edgeport build --format
    onnx,torchscript` and both int8 modes, benched at batch 1 and 8 with 1 and 2 threads (four
    panels): latencies drawn around resnet18's on 2 cores, accuracy on labelled data for the
    ONNX variants and none for TorchScript int8."""
    rng = np.random.default_rng(0)
    p50 = {  # ms at batch 1, 1 thread
        "eager-fp32": 60.0,
        "onnx-fp32": 32.0,
        "torchscript-fp32": 58.0,
        "onnx-int8-static": 10.5,
        "onnx-int8-dynamic": 27.0,
        "torchscript-int8-dynamic": 55.0,
    }
    sizes = {"int8": 11_743_000, "fp32": 46_730_000}
    rows = []
    for batch, threads in ((1, 1), (1, 2), (8, 1), (8, 2)):
        for variant, ms in p50.items():
            scale = ms * batch**0.9 / threads**0.8
            samples = scale * rng.lognormal(0.0, 0.08, 200)
            q = np.percentile(samples, [50, 90, 99])
            rows.append(
                {
                    "variant": variant,
                    "kind": variant.split("-")[0],
                    "precision": "int8" if "int8" in variant else "fp32",
                    "provider": "cpu",
                    "batch": batch,
                    "threads": threads,
                    "size_bytes": sizes["int8" if "int8" in variant else "fp32"],
                    "stats": {
                        "p50_ms": q[0],
                        "p90_ms": q[1],
                        "p99_ms": q[2],
                        "cv": float(samples.std() / samples.mean()),
                        "throughput_per_s": 1000 * batch / q[0],
                        "median_ci95_ms": [q[0] * 0.98, q[0] * 1.02],
                        "median_rerun95_ms": [q[0] * 0.95, q[0] * 1.05],
                    },
                    "samples_ms": samples.tolist(),
                    "speedup_vs_eager": p50["eager-fp32"] / ms,
                    "speedup_vs_onnx_fp32": p50["onnx-fp32"] / ms,
                }
            )
    evaluation = {"samples": 500, "accuracy_fp32": 0.698, "cosine": 0.998, "drop_pp": 0.6}
    return {
        **base,
        "model": {
            "class": "ResNet",
            "source": "torchvision:resnet18",
            "parameters": 11_689_512,
            "macs": 1_814_083_944,
        },
        "results": rows,
        "warnings": [],
        "accuracy": {
            "onnx-int8-static": {**evaluation, "accuracy_int8": 0.692},
            "onnx-int8-dynamic": {**evaluation, "accuracy_int8": 0.697, "drop_pp": 0.1},
        },
        "recommended": {"artifact": "onnx-int8-static", "reason": "fastest within budget"},
    }


@needs_chromium
def test_resnet18_shaped_report_plots_are_readable(
    demo_report: dict[str, Any], tmp_path: Path, shots: Path
) -> None:
    report = resnet18_shaped_report(demo_report)
    page = tmp_path / "resnet18-shaped.html"
    page.write_text(html_report(report))
    result, dom = check_page(page, shots)
    assert_readable(result, report)
    assert result["figures"]["accuracy"]["panels"] == 4
    assert "Not plotted (no accuracy measured): torchscript-int8-dynamic." in dom
    assert "accuracy (500 labelled samples)" in dom


@pytest.mark.slow
@needs_chromium
def test_resnet18_report_plots_are_readable(
    exported: Callable[[str], edgeport.Bundle],
    tmp_path: Path,
    shots: Path,
) -> None:
    """A real resnet18 bundle (random weights), static int8 on random calibration data,
    benched at batch 1 and 2."""
    from edgeport.quantization import QuantizeOptions, quantize

    root = tmp_path / "resnet18"
    shutil.copytree(exported("resnet18").root, root)
    quantize(root, QuantizeOptions(mode="static", calib="random"))
    options = BenchOptions(duration=0.1, blocks=2, warmup=1, batches=(1, 2))
    report = run_bench(root, options)
    page = write_reports(report, root)["html"].rename(tmp_path / "resnet18.html")
    result, _ = check_page(page, shots)
    assert {r["variant"] for r in report["results"]} >= {"onnx-fp32", "onnx-int8-static"}
    assert_readable(result, report)


@needs_chromium
def test_plot_check_reports_a_missing_recommended_mark(
    demo_report: dict[str, Any], tmp_path: Path
) -> None:
    report = copy.deepcopy(demo_report)
    report["recommended"] = {"artifact": "onnx-int8-dynamic", "reason": "not benched"}
    page = tmp_path / "missing.html"
    page.write_text(html_report(report))
    result, _ = check_page(page)
    assert result["missing"] == ["accuracy-panel-0: recommended", "accuracy-panel-1: recommended"]
    assert result["overlaps"] == []


@needs_chromium
def test_plot_check_catches_overlapping_labels(tmp_path: Path) -> None:
    """The old accuracy plot (every point annotated, batch sizes mixed in one axes) fails."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.set_gid("panel-0")
    points = {"onnx-fp32": 0.063, "onnx-int8-static": 0.056, "eager-fp32": 0.216}
    for name, x in points.items():
        ax.scatter(x, 0.9933)
        ax.annotate(name, (x, 0.9933), xytext=(4, 4), textcoords="offset points", fontsize=8)
    page = tmp_path / "old.html"
    svg = render_svg(fig, "accuracy")
    page.write_text(
        f"<!doctype html><html><body>{figure_html('accuracy', svg)}"
        f"<script>{PLOT_CHECK_SCRIPT}</script></body></html>"
    )
    plt.close(fig)
    result, _ = check_page(page)
    assert result["overlaps"] == ['accuracy: "onnx-fp32" / "onnx-int8-static"']
    assert result["missing"] == ["accuracy-panel-0: recommended", "accuracy-panel-0: pareto"]


def test_pareto_front_keeps_the_points_no_other_beats() -> None:
    points = [(1.0, 0.90), (2.0, 0.95), (1.5, 0.85), (3.0, 0.95), (0.5, 0.70), (1.0, 0.80)]
    assert pareto_front(points) == [(0.5, 0.70), (1.0, 0.90), (2.0, 0.95)]
    assert pareto_front([(1.0, 0.9), (1.0, 0.9)]) == [(1.0, 0.9)]
