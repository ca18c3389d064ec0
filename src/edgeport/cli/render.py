"""Everything the CLI prints: rich tables, progress, JSON. The library never prints."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edgeport.recommend import span


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, files) gets room for the tables instead of rich's 80 columns.
    wide = stream.isatty() or "COLUMNS" in os.environ
    return Console(stderr=stderr, width=None if wide else 140)


@contextmanager
def _progress(quiet: bool) -> Iterator[None]:
    """Show the library's steps with a rich spinner on stderr (nothing with --json)."""
    from edgeport import _progress as progress

    if quiet:
        yield
        return
    console = _console(stderr=True)
    with console.status("starting …") as status:

        def show(description: str) -> None:
            status.update(f"{description} …")

        progress.add_listener(show)
        try:
            yield
        finally:
            progress.remove_listener(show)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _print_artifacts(manifest: dict[str, Any], *, title: str) -> None:
    from rich.table import Table

    model = manifest["model"]
    table = Table(title=title)
    for col in ("artifact", "how", "size", "max abs err", "parity"):
        table.add_column(col, no_wrap=col == "artifact")
    for name, entry in manifest["artifacts"].items():
        errs = [
            o["metrics"].get("max_abs_err", 0.0)
            for s in entry["parity"].values()
            for o in s.values()
        ]
        recipe = entry["recipe"]
        how = recipe.get("exporter", "")
        how += f" ({recipe['method']})" if "method" in recipe else ""
        if recipe.get("fallback_reason"):
            how += " [fallback]"
        if recipe.get("simplify", {}).get("applied"):
            how += " + onnxsim"
        verdict = "passed" if entry["passed"] else "FAILED"
        table.add_row(
            name,
            how,
            _size(entry["size_bytes"]),
            f"{max(errs, default=0.0):.2e}",
            f"[green]{verdict}[/] on " + ", ".join(entry["parity"]),
        )
    console = _console()
    console.print(table)
    ins = ", ".join(f"{s['name']} {s['dtype']}{s['shape']}" for s in manifest["inputs"])
    outs = ", ".join(f"{s['name']} {s['dtype']}{s['shape']}" for s in manifest["outputs"])
    console.print(
        f"model {model['class']}: {model['parameters']:,} parameters, "
        f"{model.get('macs', 0) / 1e6:,.1f} M MACs",
        highlight=False,
    )
    console.print(f"inputs: {ins}\noutputs: {outs}", highlight=False)
    for name, entry in manifest["artifacts"].items():
        reason = entry["recipe"].get("fallback_reason")
        if reason:
            console.print(f"[yellow]{name}: legacy exporter used: {reason}[/]", highlight=False)
        for warning in entry.get("warnings", []):
            console.print(f"[yellow]{name}: {warning}[/]", highlight=False)


def _print_verify(report: Any) -> None:
    from rich.table import Table

    table = Table(title=f"verify {report.bundle}")
    for col in ("artifact", "check", "output", "max abs err", "cosine", "passed"):
        table.add_column(col)
    for name, sets in report.artifacts.items():
        for set_name, outputs in sets.items():
            for out_name, res in outputs.items():
                m = res["metrics"]
                table.add_row(
                    name,
                    set_name,
                    out_name,
                    f"{m.get('max_abs_err', float('nan')):.2e}",
                    f"{m.get('cosine', float('nan')):.6f}",
                    "[green]yes[/]" if res["passed"] else "[red]NO[/]",
                )
    console = _console()
    console.print(table)
    for name, why in report.skipped.items():
        console.print(f"[yellow]skipped:[/] {name}: {why}", highlight=False)
    if report.passed:
        checked = ", ".join(report.artifacts)
        console.print(
            "[green]verified:[/] hashes match and every checked artifact passes parity "
            f"({checked})",
            highlight=False,
        )
    for problem in report.problems:
        console.print(f"[red]failed:[/] {problem}", highlight=False, soft_wrap=True)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _print_inspect(info: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    if "bundle" in info:
        model = info["model"]
        console.print(
            f"bundle {info['bundle']}: {model.get('class')} from {model.get('source')}, "
            f"{model.get('parameters', 0):,} parameters, "
            f"{model.get('macs', 0) / 1e6:,.1f} M MACs",
            highlight=False,
        )
        _print_io(console, info)
        table = Table(title="artifacts")
        for col in ("artifact", "path", "format", "precision", "size", "nodes", "top ops"):
            table.add_column(col)
        for name, a in info["artifacts"].items():
            ops = ", ".join(f"{k}×{v}" for k, v in list(a.get("ops", {}).items())[:5])
            table.add_row(
                name,
                a["path"],
                a["format"],
                a["precision"],
                _size(a["size_bytes"]),
                str(a.get("nodes", "")),
                ops,
            )
        console.print(table)
        return
    console.print(
        f"{info['path']}: {_size(info['size_bytes'])}, opset {info['opset']}, "
        f"{info['nodes']} nodes, {info['parameters']:,} parameters, "
        f"{info['macs'] / 1e6:,.1f} M MACs (symbolic dims = 1)",
        highlight=False,
    )
    _print_io(console, info)
    table = Table(title="op histogram")
    table.add_column("op")
    table.add_column("count", justify="right")
    for op, count in info["ops"].items():
        table.add_row(op, str(count))
    console.print(table)


def _print_io(console: Any, info: dict[str, Any]) -> None:
    for kind in ("inputs", "outputs"):
        for s in info[kind]:
            console.print(f"  {kind[:-1]} {s['name']}: {s['dtype']} {s['shape']}", highlight=False)


def _print_bench(report: dict[str, Any]) -> None:
    from rich.table import Table

    from edgeport.benchmarks.report import COLUMNS, table_rows

    several = {k: len({r[k] for r in report["results"]}) > 1 for k in ("threads", "provider")}
    wanted = ["variant", *(k for k in ("provider", "threads") if several[k])]
    wanted += ["batch", "p50 ms", "p99 ms", "vs eager", "vs ONNX fp32", "size", "accuracy"]
    index = [COLUMNS.index(c) for c in wanted]
    table = Table(title=f"bench {report['bundle']}")
    for col in wanted:
        table.add_column(col, no_wrap=True, justify="left" if col == "variant" else "right")
    for row in table_rows(report):
        table.add_row(*(row[i] for i in index))
    console = _console()
    console.print(table)
    for warning in report.get("warnings") or []:
        console.print(f"[yellow]unstable:[/] {warning}", highlight=False)
    for skipped in report.get("skipped") or []:
        console.print(f"[yellow]skipped:[/] {skipped}", highlight=False)
    rec = report.get("recommended") or {}
    console.print(
        f"recommended: [bold]{rec.get('artifact')}[/] — {rec.get('reason')}", highlight=False
    )


def _print_summary(result: Any) -> None:
    _print_bench(result.report)
    console = _console()
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(
        f"report: {result.reports['html']} (also report.md, report.json)", highlight=False
    )


def _print_quantized(name: str, entry: dict[str, Any], recommended: dict[str, Any]) -> None:
    from rich.table import Table

    e, speed, st = entry["evaluation"], entry["speed"], entry["structure"]
    table = Table(title=f"{name}: {entry['recipe']['mode_reason']}")
    for col in ("metric", "fp32", "int8"):
        table.add_column(col)
    if e["accuracy_fp32"] is not None:
        table.add_row(
            f"accuracy ({e['samples']} samples)",
            f"{e['accuracy_fp32']:.2%}",
            f"{e['accuracy_int8']:.2%}",
        )
    table.add_row("cosine vs fp32", "1", f"{e['cosine']:.5f}")
    if e["top1_agreement"] is not None:
        table.add_row("top-1 agreement", "1", f"{e['top1_agreement']:.3f}")
    ci = speed.get("speedup_ci95")
    table.add_row(
        "latency p50, batch 1",
        f"{speed['fp32']['p50_ms']:.3f} ms",
        f"{speed['int8']['p50_ms']:.3f} ms ({speed['speedup_vs_fp32']:.2f}×"
        + (f", CI95 {span(*ci)}×)" if ci else ")"),
    )
    console = _console()
    console.print(table)
    console.print(
        f"QuantizeLinear {st['quantize_linear']}, DequantizeLinear "
        f"{st['dequantize_linear']}, left in float: {st['float_ops'] or 'none'}",
        highlight=False,
    )
    for kept in entry["kept_in_float"]:
        console.print(
            f"kept in float: {kept['kind']} {kept['tensor']} (alone it restores "
            f"{kept['cosine_gain']:+.5f} of output cosine) → nodes {', '.join(kept['nodes'])}",
            highlight=False,
        )
    if "revert_latency_cost" in speed:
        console.print(
            f"latency cost of the float nodes: {speed['revert_latency_cost']:.2f}× "
            "the fully quantized model",
            highlight=False,
        )
    for warning in entry["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"recommended: {recommended['artifact']} ({recommended['reason']})", highlight=False
    )


def _print_run(summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(
        title=f"{summary['artifact']} on {summary['provider']}: "
        f"{summary['seconds'] * 1e3:.2f} ms (first run, includes warm-up)"
    )
    for col in ("output", "dtype", "shape", "min", "max", "mean"):
        table.add_column(col)
    for name, o in summary["outputs"].items():
        table.add_row(
            name,
            o["dtype"],
            str(o["shape"]),
            *(f"{o[k]:.6g}" if k in o else "" for k in ("min", "max", "mean")),
        )
    console = _console()
    console.print(table)
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if summary["written"]:
        console.print(f"outputs written to {summary['written']}", highlight=False)


def _stats(array: Any) -> dict[str, float]:
    if array.dtype.kind not in "fiub" or array.size == 0:
        return {}
    return {"min": float(array.min()), "max": float(array.max()), "mean": float(array.mean())}
