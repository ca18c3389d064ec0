"""`edgeport build`: export → simplify → quantize (auto) → verify → bench → report, and the
recommendation. Options come from the command line and/or a TOML config (unknown keys are an
error); command-line flags override the config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib

from edgeport.benchmarks.harness import BenchOptions, run_bench
from edgeport.bundle import Bundle, BundleWriter, check_out_dir, load_bundle
from edgeport.errors import CheckFailed, EdgeportError
from edgeport.exporter.flow import ExportOptions, export

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """Everything `build` does, in one place.

    Attributes:
        inputs: Input specs (``NAME:SHAPE[:DTYPE]``).
        dynamic: ``NAME:AXIS=LABEL`` marks.
        weights: Weights file for a source spec.
        calib: Calibration data (static int8); without it conv-heavy models stay fp32.
        eval: Evaluation data (``labels`` for accuracy).
        max_drop: Accuracy budget in points.
        prune: Channel pruning ratio: prune (distilling on --calib when it is real data)
            before quantizing.
        export: Export options.
        bench: Benchmark options.
    """

    inputs: tuple[str, ...] = ()
    dynamic: tuple[str, ...] = ()
    weights: str | None = None
    calib: str | None = None
    eval: str | None = None
    max_drop: float | None = None
    prune: float | None = None
    export: ExportOptions = field(default_factory=ExportOptions)
    bench: BenchOptions = field(default_factory=lambda: BenchOptions(duration=1.5))


@dataclass
class BuildResult:
    """What `build` produced."""

    bundle: Bundle
    report: dict[str, Any]
    reports: dict[str, Path]
    notes: list[str]


# Config file keys → (section, field). Sections: [build], [export], [bench].
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "build": ("model", "inputs", "dynamic", "weights", "calib", "eval", "max_drop", "prune", "out"),
    "export": tuple(f.name for f in fields(ExportOptions)),
    "bench": tuple(f.name for f in fields(BenchOptions)),
}


def load_config(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read an edgeport.toml; every section and key must be known."""
    path = Path(path)
    if not path.is_file():
        raise EdgeportError(f"config file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise EdgeportError(f"{str(path)!r} is not valid TOML: {exc}") from exc
    for section, values in data.items():
        if section not in CONFIG_KEYS or not isinstance(values, dict):
            raise EdgeportError(
                f"{str(path)!r}: unknown section [{section}]",
                available=", ".join(f"[{s}]" for s in CONFIG_KEYS),
            )
        for key in values:
            if key not in CONFIG_KEYS[section]:
                raise EdgeportError(
                    f"{str(path)!r}: unknown key {key!r} in [{section}]",
                    available=", ".join(CONFIG_KEYS[section]),
                )
    return data


def options_from_config(config: dict[str, dict[str, Any]]) -> BuildOptions:
    """`BuildOptions` from a loaded config (lists become tuples)."""

    def tuples(values: dict[str, Any]) -> dict[str, Any]:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}

    build = tuples(config.get("build", {}))
    build = {k: v for k, v in build.items() if k not in ("model", "out")}
    return BuildOptions(
        **build,
        export=ExportOptions(**tuples(config.get("export", {}))),
        bench=BenchOptions(**{"duration": 1.5, **tuples(config.get("bench", {}))}),
    )


def build(
    model: Any, out: str | Path, options: BuildOptions, *, eager_model: Any = None
) -> BuildResult:
    """Run the whole flow into the bundle ``out`` and recommend what to ship.

    Args:
        model: A source spec or an ``nn.Module``.
        out: Bundle directory.
        options: What to do.
        eager_model: The eager model for the bench baseline (default: ``model`` when it is an
            ``nn.Module``, else rebuilt from the source).

    Raises:
        EdgeportError: Bad input. CheckFailed: an artifact failed verification.
    """
    from edgeport._progress import step
    from edgeport.benchmarks.report import write_reports
    from edgeport.verify import verify_bundle

    notes: list[str] = []
    check_out_dir(out)
    if options.prune is not None:
        from edgeport.pruning import PruneOptions, RecoverOptions, prune

        # Distill from the unpruned model on the calibration data when it is real data.
        real = options.calib is not None and options.calib != "random"
        bundle = prune(
            model,
            list(options.inputs),
            out=out,
            options=PruneOptions(ratio=options.prune),
            recovery=RecoverOptions(method="distill", data=options.calib) if real else None,
            eval_data=options.eval,
            dynamic=list(options.dynamic),
            weights=options.weights,
            formats=options.export.formats,
        )
        if not real:
            notes.append("pruned without recovery: pass real --calib data to distill")
    else:
        bundle = export(
            model,
            list(options.inputs),
            out=out,
            dynamic=list(options.dynamic),
            weights=options.weights,
            options=options.export,
        )
    bundle = _maybe_quantize(bundle, options, notes)
    with step("verifying the bundle"):
        report = verify_bundle(bundle.root, trust_code=True)  # made by this command
    if not report.passed:
        raise CheckFailed("the built bundle failed verification: " + "; ".join(report.problems))
    eager = eager_model if eager_model is not None else (None if isinstance(model, str) else model)
    if eager is None and options.prune is not None:
        from edgeport.sources import load_model

        # The baseline is the user's model as given, not the pruned one the bundle rebuilds.
        eager = load_model(model, weights=options.weights).module
    bench = run_bench(bundle.root, options.bench, model=eager, trust_code=True)
    with BundleWriter(bundle.root, update=True) as writer:
        writer.copy_from(bundle)
        manifest = dict(bundle.manifest)
        manifest["benchmarks"] = _bench_summary(bench)
        manifest["recommended"] = recommend_from_bench(bundle.artifacts, bench)
        bench["recommended"] = manifest["recommended"]
        paths = write_reports(bench, writer.root)
        writer.commit(manifest)
    final = {k: bundle.root / v.name for k, v in paths.items()}
    return BuildResult(load_bundle(bundle.root), bench, final, notes)


def _maybe_quantize(bundle: Bundle, options: BuildOptions, notes: list[str]) -> Bundle:
    from edgeport.quantization import QuantizeOptions, quantize

    try:
        return quantize(
            bundle.root,
            QuantizeOptions(calib=options.calib, eval=options.eval, max_drop=options.max_drop),
        )
    except CheckFailed as exc:
        notes.append(f"int8 not added: {exc}")
    except EdgeportError as exc:
        if "needs static quantization" not in str(exc) and "no quantizable ops" not in str(exc):
            raise
        notes.append(f"int8 not added: {exc}")
    log.warning(notes[-1])
    return bundle


def recommend_from_bench(
    artifacts: dict[str, dict[str, Any]], bench: dict[str, Any]
) -> dict[str, Any]:
    """The fastest ONNX artifact within its accuracy budget, by the bench's p50 at the first
    configuration measured (fp32 ONNX when nothing else is faster, or when the speed-up's CI95
    reaches down to 1×: not clearly faster)."""
    rows = bench["results"]
    if not rows:
        return {"artifact": "onnx-fp32", "reason": "nothing was benchmarked"}
    first = (rows[0]["provider"], rows[0]["batch"], rows[0]["threads"])
    config = {r["variant"]: r for r in rows if (r["provider"], r["batch"], r["threads"]) == first}
    fp32 = config.get("onnx-fp32")
    best = "onnx-fp32"
    for name, row in config.items():
        entry = artifacts.get(name, {})
        speed = entry.get("speed", {})
        eligible = (
            entry.get("format") == "onnx"
            and entry.get("passed")
            and not speed.get("slower_than_fp32")
        )
        if eligible and row["stats"]["p50_ms"] < config.get(best, row)["stats"]["p50_ms"]:
            best = name
    if fp32 is None or best == "onnx-fp32":
        return {
            "artifact": "onnx-fp32",
            "reason": "no compressed artifact is faster within its accuracy budget",
        }
    gain = fp32["stats"]["p50_ms"] / config[best]["stats"]["p50_ms"]
    where = f"{first[0]}, batch {first[1]}, threads {first[2] or 'default'}"
    interval = config[best].get("speedup_intervals", {}).get("vs_onnx-fp32", {}).get("ci95")
    ci = f", CI95 {span(*interval)}×" if interval else ""
    if interval and interval[0] <= 1.0:
        return {
            "artifact": "onnx-fp32",
            "reason": f"{best} measured {gain:.2f}× faster than fp32 ONNX ({where}{ci}), "
            "not clearly faster: the interval reaches 1×",
        }
    return {
        "artifact": best,
        "reason": f"fastest within its accuracy budget: p50 {gain:.2f}× "
        f"faster than fp32 ONNX ({where}{ci}; edgeport bench, interleaved)",
    }


def span(low: float, high: float) -> str:
    """``low–high`` with two decimals, or as many more (up to four) as it takes to tell them
    apart: thousands of calls of a small model give a speed-up interval like 1.4489–1.4531."""
    for digits in (2, 3, 4):
        ends = f"{low:.{digits}f}", f"{high:.{digits}f}"
        if ends[0] != ends[1]:
            break
    return "–".join(ends)


def _bench_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "report": "report.json",
        "method": report["method"],
        "p50_ms": {
            f"{r['variant']}@{r['provider']}/b{r['batch']}/t{r['threads']}": r["stats"]["p50_ms"]
            for r in report["results"]
        },
    }


def merge_cli(options: BuildOptions, overrides: dict[str, Any]) -> BuildOptions:
    """Apply command-line values (those not None) over config-file options."""
    given = {k: v for k, v in overrides.items() if v is not None and v != ()}
    return replace(options, **given)
