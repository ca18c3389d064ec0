"""Reports written into the bundle: report.json (schema ``edgeport.report/1``), report.md (tables
for a PR) and report.html (one self-contained file: tables and matplotlib plots as inline PNGs).

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

import base64
import html
import io
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


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def plots(report: dict[str, Any]) -> dict[str, str]:
    """Base64 PNGs: latency distributions, accuracy vs latency, sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    labels = [f"{r['variant']}\nb{r['batch']} t{r['threads'] or 'd'}" for r in results]
    out = {}
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(results)), 3.6))
    ax.boxplot([r["samples_ms"] for r in results], showfliers=False)
    ax.set_xticks(range(1, len(results) + 1), labels, fontsize=8)
    ax.set_ylabel("latency per call (ms)")
    ax.set_title("Latency distribution per variant")
    ax.grid(axis="y", alpha=0.3)
    out["latency"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    recommended = (report.get("recommended") or {}).get("artifact")
    accuracy = report.get("accuracy") or {}
    for r in results:
        acc = accuracy.get(r["variant"]) or {}
        fp32_acc = next((a.get("accuracy_fp32") for a in accuracy.values() if a), None)
        y = acc.get("accuracy_int8", fp32_acc if r["precision"] == "fp32" else None)
        if y is None:
            y = acc.get("cosine", 1.0 if r["precision"] == "fp32" else None)
        if y is None:
            continue
        chosen = r["variant"] == recommended
        ax.scatter(
            r["stats"]["p50_ms"],
            y,
            s=120 if chosen else 50,
            marker="*" if chosen else "o",
            color="tab:red" if chosen else "tab:blue",
        )
        ax.annotate(
            r["variant"] + (" (recommended)" if chosen else ""),
            (r["stats"]["p50_ms"], y),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("p50 latency (ms)")
    ax.set_ylabel("accuracy (or cosine vs fp32)")
    ax.set_title("Accuracy vs latency")
    ax.grid(alpha=0.3)
    out["accuracy"] = _png(fig)
    plt.close(fig)

    sizes = {r["variant"]: r["size_bytes"] / 2**20 for r in results}
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(list(sizes), list(sizes.values()), color="tab:green")
    ax.set_xlabel("size (MiB)")
    ax.set_title("Artifact size")
    out["size"] = _png(fig)
    plt.close(fig)

    recovery = (report.get("pruning") or {}).get("recovery")
    if recovery and recovery.get("loss_curve"):
        curve = recovery["loss_curve"]
        stride = recovery["steps"] / len(curve)
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot([i * stride for i in range(len(curve))], curve, color="tab:purple")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(f"Recovery after pruning ({recovery['method']})")
        ax.grid(alpha=0.3)
        out["recovery"] = _png(fig)
        plt.close(fig)
    return out


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
    """report.html: one self-contained page (inline CSS and PNGs)."""
    images = plots(report)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in table_rows(report)
    )
    rec = report.get("recommended") or {}
    model = report["model"]
    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{data}"></figure>'
        for name, data in images.items()
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
figure {{ display: inline-block; margin: 0.5em; }} img {{ max-width: 640px; }}
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
<script>
// Marks each plot with its decoded width, so a headless browser can check the plots rendered.
window.addEventListener("load", () => document.querySelectorAll("img").forEach(
  (img) => {{ img.dataset.rendered = String(img.naturalWidth); }}));
</script>
</body></html>
"""
