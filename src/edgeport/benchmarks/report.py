"""Reports written into the bundle: report.json (schema ``edgeport.report/1``), report.md (tables
for a PR) and report.html (one self-contained file: tables, matplotlib plots as inline SVG, and
a script that checks the plots as the browser laid them out: `PLOT_CHECK_SCRIPT`).

report.json holds: ``schema``, ``bundle``, ``created``, ``model``, ``inputs``, ``environment``,
``method`` (how timing was done), ``options``, ``peak_rss_mb``, ``results`` (one row per variant ×
provider × batch × threads: ``stats`` in ms with ``median_ci95_ms`` and ``median_rerun95_ms``
(where a rerun's median should land), ``slow_drift_pct`` (the machine's drift between the run's
halves, quarters or eighths beyond sampling noise, pooled over the variants timed together; part
of the rerun interval; the evidence per cut in ``allan_pct`` and ``allan_noise_pct``),
``drift_pct``, ``creation_ms``, ``cold_ms``, ``rss_delta_mb``, ``size_bytes``,
``speedup_vs_eager``, ``speedup_vs_onnx_fp32``, ``speedup_intervals`` (``vs_eager-fp32`` /
``vs_onnx-fp32``: ``ci95`` and ``rerun95`` of each speed-up, from the paired blocks),
``samples_ms``),
``warnings`` (rows whose latency drifted during the run by more than their CI95: see
``stats.drift_pct``), ``accuracy`` (per artifact, from quantization), ``kept_in_float`` (per int8
artifact: the tensors the accuracy budget kept in float and their latency cost), ``pruning`` and
``recommended``.
"""

from __future__ import annotations

import html
import io
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeport.bundle import dumps_strict, write_file_atomic

COLUMNS = (
    "variant",
    "precision",
    "provider",
    "batch",
    "threads",
    "p50 ms",
    "p50 CI95",
    "rerun 95%",
    "p90 ms",
    "p99 ms",
    "CV",
    "throughput/s",
    "vs eager",
    "vs ONNX fp32",
    "size",
    "accuracy",
)


def write_reports(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.md and report.html into ``out_dir``; returns their paths.

    Each file is written to a temp name and renamed: a symlink planted at ``report.html`` is
    replaced, never written through.
    """
    out = Path(out_dir)
    texts = {
        "json": ("report.json", dumps_strict(report) + "\n"),
        "md": ("report.md", markdown(report)),
        "html": ("report.html", html_report(report)),
    }
    return {kind: write_file_atomic(out / name, text) for kind, (name, text) in texts.items()}


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """The summary table as strings, one row per result (shared by md, html and the CLI)."""
    rows = []
    for r in report["results"]:
        s = r["stats"]
        rows.append(
            [
                r["variant"],
                r["precision"],
                r["provider"],
                str(r["batch"]),
                str(r["threads"] or "default"),
                f"{s['p50_ms']:.3f}",
                _interval(s.get("median_ci95_ms")),
                _interval(s.get("median_rerun95_ms")),
                f"{s['p90_ms']:.3f}",
                f"{s['p99_ms']:.3f}",
                f"{s['cv']:.2f}",
                f"{s['throughput_per_s']:.1f}",
                _ratio(r["speedup_vs_eager"]),
                _ratio(r["speedup_vs_onnx_fp32"]),
                _size(r["size_bytes"]),
                accuracy_text(report, r),
            ]
        )
    return rows


def accuracy_text(report: dict[str, Any], row: dict[str, Any]) -> str:
    """Task accuracy of a variant (fp32 variants share the fp32 figure), else cosine vs fp32."""
    evaluations = [a for a in (report.get("accuracy") or {}).values() if a]
    own = (report.get("accuracy") or {}).get(row["variant"]) or {}
    if own.get("accuracy_int8") is not None:
        return f"{own['accuracy_int8']:.2%}"
    if own.get("cosine") is not None:
        return f"cos {own['cosine']:.4f}"
    if row["precision"] == "fp32" and evaluations and evaluations[0].get("accuracy_fp32"):
        return f"{evaluations[0]['accuracy_fp32']:.2%}"
    return ""


def _ratio(value: float | None) -> str:
    return f"{value:.2f}×" if value else "–"


def _interval(bounds: list[float] | None) -> str:
    return f"{bounds[0]:.3f}–{bounds[1]:.3f}" if bounds else "—"


def _size(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def markdown(report: dict[str, Any]) -> str:
    """report.md: the summary table and how it was measured."""
    model = report["model"]
    lines = [
        f"# edgeport report: {model.get('class')}",
        "",
        f"Source `{model.get('source')}`, {model.get('parameters', 0):,} parameters, "
        f"{model.get('macs', 0) / 1e6:,.1f} M MACs. CPU: {report['environment']['cpu']}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
    rec = report.get("recommended") or {}
    lines += [
        "",
        f"**Recommended: `{rec.get('artifact')}`** — {rec.get('reason')}",
        "",
        *(f"> **Unstable:** {w}\n" for w in report.get("warnings") or []),
        *(
            ["**Kept in float by the accuracy budget:**", ""]
            + [f"- {line}" for line in kept_in_float_lines(report)]
            + [""]
            if report.get("kept_in_float")
            else []
        ),
        method_text(report),
        "",
    ]
    return "\n".join(lines)


def method_text(report: dict[str, Any]) -> str:
    """How the timing was done, one sentence (report.md and report.html)."""
    m = report["method"]
    spread = f"spread over {m['spread_s']:g} s, " if m.get("spread_s") else ""
    return (
        f"Timing: {m['timer']}, {m['blocks']} interleaved blocks, {m['pause_s']} s pause, "
        f"{spread}ONNX Runtime spinning {'on' if m.get('onnxruntime_spinning') else 'off'}; "
        f"{m['statistics']}. "
        f"Peak RSS {report['peak_rss_mb']:.0f} MiB."
    )


# Known variants keep one colour and marker in every plot of every report; others take spares.
_STYLES = {
    "eager-fp32": ("#7f7f7f", "o"),
    "torchscript-fp32": ("#9467bd", "s"),
    "onnx-fp32": ("#1f77b4", "D"),
    "onnx-int8-static": ("#ff7f0e", "^"),
    "onnx-int8-dynamic": ("#2ca02c", "v"),
    "torchscript-int8-dynamic": ("#8c564b", "P"),
}
_SPARE_STYLES = (("#d62728", "X"), ("#e377c2", "h"), ("#17becf", "p"), ("#bcbd22", "<"))
# The recommended artifact's mark: a hollow star around its point.
_STAR: dict[str, Any] = {
    "marker": "*",
    "markerfacecolor": "none",
    "markeredgecolor": "crimson",
    "markeredgewidth": 1.6,
    "linestyle": "none",
}
# What report.html's plot check asks of every panel of a figure (see PLOT_CHECK_SCRIPT).
_NEEDS = {"accuracy": ("recommended", "pareto")}

Config = tuple[str, int, int]  # (provider, batch, threads)


@dataclass(frozen=True)
class AccuracyAxis:
    """The y axis of the accuracy-vs-latency plot: one measure for every variant.

    Attributes:
        label: What y is, for the axis label.
        percent: Whether y is a fraction shown as a percentage (task accuracy), else a cosine.
        values: y per variant; variants with nothing measured are absent.
    """

    label: str
    percent: bool
    values: dict[str, float]


def accuracy_axis(report: dict[str, Any]) -> AccuracyAxis:
    """The y of the accuracy plot for a report: task accuracy on labelled evaluation data when
    the report has any, else output cosine vs fp32 (fp32 variants are 1 by definition). fp32
    variants share the fp32 accuracy, as in the table; an int8 variant without an evaluation of
    its own is left out."""
    evaluations = {k: v for k, v in (report.get("accuracy") or {}).items() if v}
    labelled = next((e for e in evaluations.values() if e.get("accuracy_fp32") is not None), None)
    key, fp32_value = ("accuracy_int8", labelled["accuracy_fp32"]) if labelled else ("cosine", 1.0)
    values = {}
    for row in report["results"]:
        own = (evaluations.get(row["variant"]) or {}).get(key)
        value = own if own is not None else fp32_value if row["precision"] == "fp32" else None
        if value is not None:
            values[row["variant"]] = float(value)
    if labelled:
        return AccuracyAxis(f"accuracy ({labelled['samples']} labelled samples)", True, values)
    first = next(iter(evaluations.values()), None)
    if first is None:
        return AccuracyAxis("cosine vs fp32 (nothing quantized)", False, values)
    inputs = "random inputs" if (first.get("data") or {}).get("random") else "eval inputs"
    return AccuracyAxis(f"cosine vs fp32 ({first['samples']} {inputs})", False, values)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The Pareto front of ``(latency, accuracy)`` points: those no other point beats on both
    counts (lower or equal latency with higher accuracy, or lower latency with equal accuracy),
    sorted by latency; of equal points one is kept."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def render_svg(fig: Any, name: str) -> str:
    """A matplotlib figure as inline SVG markup for one HTML page.

    Text stays ``<text>`` (``svg.fonttype = none``): the browser lays it out, a script can
    measure it, and it can be searched. Its font is DejaVu Sans, matplotlib's; a browser without
    it falls back to a narrower sans-serif, so labels that clear each other here still do.

    Args:
        fig: The figure; saved with a tight bounding box.
        name: The figure's name on the page: every id is prefixed with it, so the ids of several
            figures (and the artists' gids: ``panel-0`` → ``accuracy-panel-0``) stay unique.
    """
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg[svg.index("<svg") :], flags=re.S)
    return re.sub(r'(\bid="|url\(#|href="#)', rf"\g<1>{name}-", svg)


def figure_html(name: str, svg: str, caption: str = "") -> str:
    """One plot as a ``<figure>`` that PLOT_CHECK_SCRIPT checks.

    Args:
        name: The plot's name, as given to `render_svg` (``data-plot``); for ``accuracy``,
            ``data-needs`` asks for a ``recommended`` and a ``pareto`` mark in every panel.
        svg: Markup from `render_svg`.
        caption: Plain text under the plot (default none).
    """
    needs = " ".join(_NEEDS.get(name, ()))
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure class="plot" data-plot="{name}" data-needs="{needs}">{svg}{text}</figure>'


def plots(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The plots as inline SVG with a caption each: ``accuracy`` (vs latency, one panel per
    configuration), ``latency`` (distributions, one panel per configuration), ``size`` and,
    after pruning with recovery, ``recovery``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    with plt.rc_context({"font.size": 10, "axes.titlesize": 10, "figure.titlesize": 12}):
        for name, draw in (
            ("accuracy", _accuracy_figure),
            ("latency", _latency_figure),
            ("size", _size_figure),
            ("recovery", _recovery_figure),
        ):
            drawn = draw(report, plt)
            if drawn is not None:
                fig, caption = drawn
                out[name] = (render_svg(fig, name), caption)
                plt.close(fig)
    return out


def _configurations(results: list[dict[str, Any]]) -> list[Config]:
    return list(dict.fromkeys((r["provider"], r["batch"], r["threads"]) for r in results))


def _config_title(config: Config) -> str:
    provider, batch, threads = config
    return f"batch {batch}, {threads or 'default'} threads, {provider}"


def _styles(variants: list[str]) -> dict[str, tuple[str, str]]:
    spare = itertools.cycle(_SPARE_STYLES)
    return {v: _STYLES.get(v) or next(spare) for v in variants}


def _panels(
    plt: Any, count: int, *, width: float, height: float, sharey: bool
) -> tuple[Any, list[Any]]:
    """A figure with ``count`` panels (``width`` × ``height`` inches each), up to three a row
    (a 2×2 grid for four); panel k has the gid ``panel-k`` and its axes background ``frame-k``."""
    ncols = 2 if count == 4 else min(count, 3)
    nrows = -(-count // ncols)
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(width * ncols, height * nrows + 0.9),
        sharey=sharey,
        squeeze=False,
        layout="constrained",
    )
    axes = list(grid.flat)
    for ax in axes[count:]:
        ax.remove()
    for k, ax in enumerate(axes[:count]):
        ax.set_gid(f"panel-{k}")
        ax.patch.set_gid(f"frame-{k}")
    return fig, axes[:count]


def _accuracy_figure(report: dict[str, Any], plt: Any) -> tuple[Any, str] | None:
    from matplotlib.ticker import PercentFormatter

    results = report["results"]
    axis = accuracy_axis(report)
    if not axis.values:
        return None
    configs = _configurations(results)
    recommended = (report.get("recommended") or {}).get("artifact")
    fig, axes = _panels(plt, len(configs), width=5.2, height=3.4, sharey=True)
    _accuracy_limits(axes[0], list(axis.values.values()), axis.percent)
    every = list(dict.fromkeys(r["variant"] for r in results))
    styles = _styles(every)
    panels = [
        [r for r in results if _config_of(r) == config and r["variant"] in axis.values]
        for config in configs
    ]
    for k, (rows, ax) in enumerate(zip(panels, axes, strict=True)):
        for r in rows:
            _accuracy_point(ax, r, axis.values[r["variant"]], styles[r["variant"]])
            if r["variant"] == recommended:
                (star,) = ax.plot(r["stats"]["p50_ms"], axis.values[recommended], **_STAR)
                star.set(markersize=24, zorder=4, clip_on=False, gid=f"recommended-{k}")
    p50s = [[r["stats"]["p50_ms"] for r in rows] for rows in panels]
    _latency_scale(axes, p50s, "p50 latency per call")
    for k, (rows, config, ax) in enumerate(zip(panels, configs, axes, strict=True)):
        _pareto_step(ax, rows, axis.values, k)
        ax.set_title(_config_title(config))
        ax.grid(alpha=0.3)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(axis.label)
    if axis.percent:
        axes[0].yaxis.set_major_formatter(PercentFormatter(xmax=1))
    else:
        axes[0].yaxis.get_major_formatter().set_useOffset(False)
    plotted = [v for v in every if v in axis.values]
    _accuracy_legend(
        fig, {v: styles[v] for v in plotted}, recommended if recommended in plotted else None
    )
    fig.suptitle("Accuracy vs latency")
    caption = (
        "One panel per configuration (provider, batch, threads), y shared; horizontal bars: "
        "CI95 of the median latency. Red star: the recommended artifact. Dashed steps: the "
        "Pareto front, the variants no other variant beats on both latency and accuracy; the "
        "shaded region below and right of it is beaten on both."
    )
    if len(plotted) < len(every):
        left_out = ", ".join(v for v in every if v not in axis.values)
        caption += f" Not plotted (no accuracy measured): {left_out}."
    return fig, caption


def _accuracy_legend(fig: Any, styles: dict[str, tuple[str, str]], recommended: str | None) -> None:
    """One legend below the panels: each variant's marker, the star, the Pareto front."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=color, marker=marker, linestyle="none", label=v)
        for v, (color, marker) in styles.items()
    ]
    if recommended is not None:
        handles.append(Line2D([], [], markersize=16, label=f"recommended: {recommended}", **_STAR))
    handles.append(Line2D([], [], color="0.25", linestyle="--", label="Pareto front"))
    legend = fig.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False
    )
    legend.set_gid("legend")


def _config_of(row: dict[str, Any]) -> Config:
    return (row["provider"], row["batch"], row["threads"])


def _accuracy_point(ax: Any, row: dict[str, Any], y: float, style: tuple[str, str]) -> None:
    x = row["stats"]["p50_ms"]
    ci = row["stats"].get("median_ci95_ms")
    # A bootstrap interval from very few blocks can reach below 0: then no lower bar.
    xerr = [[x - ci[0] if 0 < ci[0] < x else 0.0], [max(ci[1] - x, 0.0)]] if ci else None
    ax.errorbar(
        x,
        y,
        xerr=xerr,
        color=style[0],
        marker=style[1],
        markersize=7,
        capsize=3,
        linestyle="none",
        zorder=3,
    )


def _pareto_step(ax: Any, rows: list[dict[str, Any]], values: dict[str, float], k: int) -> None:
    """The Pareto front as a dashed step line over a shaded region (what it dominates: slower
    and no more accurate), carried on to the panel's right edge."""
    front = pareto_front([(r["stats"]["p50_ms"], values[r["variant"]]) for r in rows])
    if not front:
        return
    left, right = ax.get_xlim()
    right = max(right, front[-1][0] * 1.1)
    xs, ys = [p[0] for p in front] + [right], [p[1] for p in front] + [front[-1][1]]
    bottom = ax.get_ylim()[0]
    ax.fill_between(xs, ys, bottom, step="post", color="0.5", alpha=0.15, linewidth=0)
    (line,) = ax.step(xs, ys, where="post", color="0.25", linestyle="--", linewidth=1, zorder=2)
    line.set_gid(f"pareto-{k}")
    ax.set_xlim(left, right)
    ax.set_ylim(bottom=bottom)


def _accuracy_limits(ax: Any, values: list[float], percent: bool) -> None:
    """y limits around the measured values, at least 0.4 points (or 2e-4 of cosine) tall, so
    that equal accuracies sit mid-panel instead of on a range matplotlib invents; the top
    stays near 1, the most either measure can be."""
    low, high = min(values), max(values)
    span = max(high - low, 0.004 if percent else 2e-4)
    top = min((low + high) / 2 + 0.65 * span, 1 + 0.15 * span)
    ax.set_ylim(top - 1.3 * span, top)


def _latency_figure(report: dict[str, Any], plt: Any) -> tuple[Any, str]:
    results = report["results"]
    configs = _configurations(results)
    variants = list(dict.fromkeys(r["variant"] for r in results))
    styles = _styles(variants)
    recommended = (report.get("recommended") or {}).get("artifact")
    height = 0.8 + 0.36 * len(variants)
    fig, axes = _panels(plt, len(configs), width=5.2, height=height, sharey=True)
    panels = []
    for config, ax in zip(configs, axes, strict=True):
        rows = [r for r in results if _config_of(r) == config]
        panels.append(
            [
                end
                for r in rows
                for end in _latency_box(
                    ax, variants.index(r["variant"]), r["samples_ms"], styles[r["variant"]][0]
                )
            ]
        )
        ax.set_title(_config_title(config))
        ax.grid(axis="x", which="both", alpha=0.3)
    _latency_scale(axes, panels, "latency per call")
    axes[0].set_ylim(len(variants) - 0.4, -0.6)
    axes[0].set_yticks(range(len(variants)))
    axes[0].set_yticklabels([f"{v} (recommended)" if v == recommended else v for v in variants])
    for ax in (ax for ax in axes if ax.get_subplotspec().is_first_col()):
        for label, variant in zip(ax.get_yticklabels(), variants, strict=True):
            label.set_fontweight("bold" if variant == recommended else "normal")
    fig.suptitle("Latency distribution")
    caption = (
        "One panel per configuration, each with its own latency range; the scale is linear "
        "from 0, or logarithmic where some panel's slowest calls are more than 10× its fastest. "
        "Box: quartiles; black bar: median; whiskers: p1–p99 of the timed calls."
    )
    return fig, caption


def _latency_scale(axes: list[Any], panels: list[list[float]], what: str) -> None:
    """One x scale for every panel, labelled ``what`` (ms): linear from 0, unless some panel's
    latencies (``panels``, ms) span more than 10×; then logarithmic, so that one slow variant or
    tail does not squeeze the fast ones against 0."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    spans = [max(ms) / min(ms) for ms in panels if ms and min(ms) > 0]
    log = bool(spans) and max(spans) > 10
    # Ticks at 1, 2 and 5 × 10^n; only 10^n beyond 300× (they would crowd a narrow panel).
    subs = (1.0, 2.0, 5.0) if log and max(spans) <= 300 else (1.0,)
    for ax in axes:
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=subs))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_xlim(left=0)
        ax.set_xlabel(f"{what} (ms, log scale)" if log else f"{what} (ms)")


def _latency_box(ax: Any, y: int, samples: list[float], color: str) -> tuple[float, float]:
    """One variant's distribution at row ``y``; returns its whisker ends (p1, p99) in ms."""
    import numpy as np

    p1, q1, median, q3, p99 = np.percentile(samples, [1, 25, 50, 75, 99])
    ax.barh(y, q3 - q1, left=q1, height=0.55, color=color, alpha=0.35, edgecolor=color)
    ax.hlines([y, y], [p1, q3], [q1, p99], color=color, linewidth=1.2)
    ax.vlines([p1, p99], y - 0.15, y + 0.15, color=color, linewidth=1.2)
    ax.vlines(median, y - 0.3, y + 0.3, color="black", linewidth=2)
    return float(p1), float(p99)


def _size_figure(report: dict[str, Any], plt: Any) -> tuple[Any, str]:
    sizes = {r["variant"]: r["size_bytes"] for r in report["results"]}
    styles = _styles(list(sizes))
    fig, axes = _panels(plt, 1, width=5.5, height=0.3 * len(sizes), sharey=False)
    ax = axes[0]
    names = list(sizes)
    ax.barh(names, [s / 2**20 for s in sizes.values()], color=[styles[n][0] for n in names])
    for y, n in enumerate(names):
        ax.text(sizes[n] / 2**20, y, f" {_size(sizes[n])}", va="center", fontsize=8)
    ax.set_xlim(0, max(sizes.values()) / 2**20 * 1.3)
    ax.invert_yaxis()
    ax.set_xlabel("size (MiB)")
    ax.set_title("Artifact size")
    return fig, ""


def _recovery_figure(report: dict[str, Any], plt: Any) -> tuple[Any, str] | None:
    recovery = (report.get("pruning") or {}).get("recovery")
    if not (recovery and recovery.get("loss_curve")):
        return None
    curve = recovery["loss_curve"]
    stride = recovery["steps"] / len(curve)
    fig, axes = _panels(plt, 1, width=5.5, height=2.6, sharey=False)
    ax = axes[0]
    ax.plot([i * stride for i in range(len(curve))], curve, color="tab:purple")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"Recovery after pruning ({recovery['method']})")
    ax.grid(alpha=0.3)
    return fig, ""


# Measures report.html's plots as the browser laid them out and writes the findings, as JSON,
# into the data-result attribute of #plot-check: "texts" (text elements measured), "overlaps"
# (pairs of texts in one figure whose boxes overlap by more than 1 px both ways), "clipped"
# (texts reaching outside their figure), "missing" (a mark a panel must show, per the figure's
# data-needs, absent, empty or centred outside the panel's axes), and per figure its panels,
# legend texts and size. tests/test_report_html.py reads it from `chromium --headless --dump-dom`.
PLOT_CHECK_SCRIPT = """
function checkPlots() {
  const result = {texts: 0, overlaps: [], clipped: [], missing: [], figures: {},
                  page: {width: 0, height: 0}};
  const inside = (a, b, slack) => a.left >= b.left - slack && a.right <= b.right + slack &&
    a.top >= b.top - slack && a.bottom <= b.bottom + slack;
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
    Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const centred = (a, b) => inside(
    {left: a.left + a.width / 2, right: a.left + a.width / 2,
     top: a.top + a.height / 2, bottom: a.top + a.height / 2}, b, 0);
  for (const figure of document.querySelectorAll("figure[data-plot]")) {
    const name = figure.dataset.plot;
    const svg = figure.querySelector("svg");
    const frame = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll("text")]
      .filter((t) => t.textContent.trim())
      .map((t) => ({text: t.textContent.trim(), box: t.getBoundingClientRect()}));
    result.texts += texts.length;
    texts.forEach((a, i) => {
      if (!inside(a.box, frame, 0.5)) result.clipped.push(`${name}: "${a.text}"`);
      texts.slice(i + 1).forEach((b) => {
        if (overlap(a.box, b.box)) result.overlaps.push(`${name}: "${a.text}" / "${b.text}"`);
      });
    });
    const panels = [...svg.querySelectorAll(`g[id^="${name}-panel-"]`)];
    for (const panel of panels) {
      const k = panel.id.slice(`${name}-panel-`.length);
      const axes = svg.querySelector(`[id="${name}-frame-${k}"]`);
      for (const mark of (figure.dataset.needs || "").split(" ").filter(Boolean)) {
        const found = svg.querySelector(`[id="${name}-${mark}-${k}"]`);
        const box = found && found.getBoundingClientRect();
        const shown = box && (box.width > 0 || box.height > 0) &&
          (!axes || centred(box, axes.getBoundingClientRect()));
        if (!shown) result.missing.push(`${panel.id}: ${mark}`);
      }
    }
    const legend = svg.querySelector(`[id="${name}-legend"]`);
    result.figures[name] = {
      panels: panels.length,
      width: Math.round(frame.width),
      height: Math.round(frame.height),
      legend: legend ? [...legend.querySelectorAll("text")].map((t) => t.textContent) : [],
    };
  }
  result.page = {width: document.documentElement.scrollWidth,
                 height: document.documentElement.scrollHeight};
  let out = document.getElementById("plot-check");
  if (!out) {
    out = document.createElement("div");
    out.id = "plot-check";
    out.hidden = true;
    document.body.appendChild(out);
  }
  out.dataset.result = JSON.stringify(result);
}
window.addEventListener("load", checkPlots);
"""


def kept_in_float_lines(report: dict[str, Any]) -> list[str]:
    """What the accuracy budget kept in float, one line per tensor, then its latency cost."""
    lines = []
    for name, kept in (report.get("kept_in_float") or {}).items():
        for t in kept["tensors"]:
            lines.append(
                f"{name}: {t['kind']} {t['tensor']} kept in float (alone it restores "
                f"{t['cosine_gain']:+.5f} of output cosine) → nodes {', '.join(t['nodes'])}"
            )
        if kept.get("latency_cost"):
            lines.append(
                f"{name}: latency cost of the float nodes {kept['latency_cost']:.2f}× the fully "
                "quantized model"
            )
    return lines


def _kept_html(report: dict[str, Any]) -> str:
    lines = kept_in_float_lines(report)
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<div id="kept-in-float">Kept in float by the accuracy budget:<ul>{items}</ul></div>'


def _pruning_html(entry: dict[str, Any] | None) -> str:
    if not entry:
        return ""
    parts = [
        f"parameters {entry['params_before']:,} → {entry['params_after']:,} "
        f"({entry['params_ratio']:.2f}×)",
        f"MACs {entry['macs_before']:,} → {entry['macs_after']:,} ({entry['macs_ratio']:.2f}×)",
    ]
    for key, label in (
        ("accuracy_unpruned", "accuracy unpruned"),
        ("accuracy_pruned", "pruned"),
        ("accuracy_recovered", "recovered"),
    ):
        if entry.get(key) is not None:
            parts.append(f"{label} {entry[key]:.2%}")
    return f'<p id="pruning">Pruned: {html.escape("; ".join(parts))}.</p>'


def html_report(report: dict[str, Any]) -> str:
    """report.html: one self-contained page (inline CSS, SVG plots and the script that checks
    them; nothing is fetched)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in table_rows(report)
    )
    rec = report.get("recommended") or {}
    model = report["model"]
    figures = "".join(
        figure_html(name, svg, caption) for name, (svg, caption) in plots(report).items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgeport report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f0f0f0; }} td:first-child {{ text-align: left; }}
.warn {{ background: #fff6e0; padding: 6px 12px; border-left: 4px solid #d90; }}
.rec {{ background: #eef8ee; padding: 8px 12px; border-left: 4px solid #3a3; margin: 1em 0; }}
figure.plot {{ margin: 1.5em 0; }} figure.plot svg {{ max-width: 100%; height: auto; }}
figcaption {{ font-size: 13px; color: #555; max-width: 70em; }}
</style></head><body>
<h1>edgeport report: {html.escape(str(model.get("class")))}</h1>
<p>Source <code>{html.escape(str(model.get("source")))}</code>,
{model.get("parameters", 0):,} parameters, {model.get("macs", 0) / 1e6:,.1f} M MACs.
CPU {html.escape(report["environment"]["cpu"])}.</p>
<div class="rec" id="recommended">Recommended: <b>{html.escape(str(rec.get("artifact")))}</b>
— {html.escape(str(rec.get("reason")))}</div>
<table id="results"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{"".join(f'<p class="warn">Unstable: {html.escape(w)}</p>' for w in report.get("warnings") or [])}
{_kept_html(report)}
{_pruning_html(report.get("pruning"))}
<p>{html.escape(method_text(report))}</p>
{figures}
<div id="plot-check" hidden></div>
<script>{PLOT_CHECK_SCRIPT}</script>
</body></html>
"""
