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
from edgeport.recommend import recommend

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
        manifest["recommended"] = recommend(bundle.artifacts, bench)
        bench["recommended"] = manifest["recommended"]
        own = recommend(bundle.artifacts)  # what quantize's speed check alone says
        if own["artifact"] != manifest["recommended"]["artifact"]:
            notes.append(
                f"the bench recommends {manifest['recommended']['artifact']} where quantize's "
                f"shorter speed check said {own['artifact']} ({own['reason']}). The bench, "
                "timed later and longer, decides; two measurements this far apart mean the "
                "machine's speed changed between them (another process, throttling): rerun "
                "edgeport bench on a quiet machine to settle it"
            )
            log.warning(notes[-1])
        paths = write_reports(bench, writer.root)
        writer.commit(manifest)
    final = {k: bundle.root / v.name for k, v in paths.items()}
    return BuildResult(load_bundle(bundle.root), bench, final, notes)


def _maybe_quantize(bundle: Bundle, options: BuildOptions, notes: list[str]) -> Bundle:
    from edgeport.quantization import QuantizeOptions, quantize
    from edgeport.quantization.flow import NothingToQuantize

    try:
        return quantize(
            bundle.root,
            QuantizeOptions(calib=options.calib, eval=options.eval, max_drop=options.max_drop),
        )
    except CheckFailed as exc:
        notes.append(f"int8 not added: {exc}")
    except NothingToQuantize as exc:
        notes.append(f"int8 not added: {exc}")
    log.warning(notes[-1])
    return bundle


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
