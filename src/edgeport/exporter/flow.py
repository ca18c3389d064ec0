"""`export`: from a model source to a verified bundle (TorchScript + ONNX, golden IO, manifest).

Nothing is reported as exported until the artifact has loaded in its runtime and matched eager
PyTorch on every golden set. A failure leaves no bundle under the final name.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.bundle import (
    Bundle,
    BundleWriter,
    GoldenSet,
    check_out_dir,
    file_record,
    load_bundle,
)
from edgeport.environment import collect_environment
from edgeport.errors import CheckFailed, EdgeportError, InternalError
from edgeport.exporter.eager import golden_sets, output_specs
from edgeport.exporter.onnx import DEFAULT_OPSET, EXPORTERS, TORCHSCRIPT_SOURCE, ExportPath
from edgeport.parity import PROFILES, Precision, check_outputs, raise_on_failures
from edgeport.runtime.session import Session
from edgeport.sources import LoadedModel, load_model
from edgeport.spec import TensorSpec, apply_dynamic, parse_input

if TYPE_CHECKING:
    import onnx
    import torch

log = logging.getLogger(__name__)

SCRATCH = "_work"
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class ExportOptions:
    """How to export. Validated on construction.

    Attributes:
        formats: Artifact formats to write, from `list_formats()` (default both).
        opset: ONNX opset version (default 18).
        exporter: ONNX exporter: ``auto`` (dynamo, then legacy when no dynamo path passes),
            ``dynamo`` or ``legacy`` (that exporter's paths only; see `export_paths`).
        script: TorchScript via ``torch.jit.script`` instead of tracing.
        simplify: Run onnxsim on the ONNX graph (skipped with a reason when unsafe; the
            unsimplified graph is tried when the simplified one fails).
        seed: Seed of the random golden inputs.
    """

    formats: tuple[str, ...] = ("onnx", "torchscript")
    opset: int = DEFAULT_OPSET
    exporter: str = "auto"
    script: bool = False
    simplify: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise EdgeportError(
                f"unknown export format(s) {unknown or '(none given)'}",
                available=", ".join(list_formats()),
            )
        if self.exporter not in EXPORTERS:
            raise EdgeportError(
                f"unknown --exporter {self.exporter!r}", available=", ".join(EXPORTERS)
            )
        if not 7 <= self.opset <= 25:
            raise EdgeportError(f"--opset {self.opset} is out of range", expected="7..25")


@dataclass
class _Context:
    loaded: LoadedModel
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    golden: list[GoldenSet]
    example: tuple[Any, ...]
    root: Path
    options: ExportOptions
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)


ArtifactExporter = Callable[[_Context], tuple[str, dict[str, Any]]]


def export(
    model: str | torch.nn.Module | LoadedModel,
    inputs: Sequence[str | TensorSpec],
    *,
    out: str | Path,
    dynamic: Sequence[str] = (),
    weights: str | Path | None = None,
    trust_checkpoint: bool = False,
    options: ExportOptions | None = None,
) -> Bundle:
    """Export a model to a verified bundle at ``out``.

    Args:
        model: A source spec (``torchvision:resnet18``, ``file.py:factory``, ...), an
            ``nn.Module``, or a `LoadedModel`.
        inputs: Input specs, as `TensorSpec` or ``NAME:1x3x224x224[:dtype]`` strings, in call
            order (reordered to the forward signature when the names match its parameters).
            Empty: the inputs the source knows (``hf:`` and ``timm:`` sources).
        out: The bundle directory (created, or an existing bundle replaced atomically).
        dynamic: ``NAME:AXIS=LABEL`` marks of symbolic dims.
        weights: Optional safetensors / state-dict file for a source spec.
        trust_checkpoint: Allow an unsafe pickled checkpoint for ``weights`` (logged).
        options: Export options (formats, opset, exporter, ...).

    Returns:
        The written bundle, loaded and hash-checked.

    Raises:
        EdgeportError: Bad input (model, shapes, weights).
        CheckFailed: An artifact failed parity; no bundle is written.
    """
    from edgeport._progress import step

    options = options or ExportOptions()
    check_out_dir(out)
    with step("loading the model"):
        loaded = as_loaded(model, weights, trust_checkpoint)
    specs = _order_inputs(parse_inputs(inputs or loaded.inputs or (), dynamic), loaded.module)
    loaded.bind([s.name for s in specs])
    with step("running eager PyTorch on golden inputs"):
        golden, names = golden_sets(loaded.module, specs, seed=options.seed)
    outputs = output_specs(golden, names)
    example = example_inputs(specs, options.seed + 100)
    with BundleWriter(out) as writer:
        ctx = _Context(loaded, specs, outputs, golden, example, writer.root, options)
        for fmt in options.formats:
            with step(f"exporting {fmt}"):
                name, entry = FORMATS[fmt](ctx)
            ctx.entries[name] = entry
        shutil.rmtree(writer.root / SCRATCH, ignore_errors=True)
        manifest = _manifest(ctx, _write_golden(writer, golden))
        if loaded.tokenizer_files:
            manifest["tokenizer"] = _copy_tokenizer(writer, loaded.tokenizer_files)
        writer.commit(manifest)
    return load_bundle(out)


def list_formats() -> list[str]:
    """Names of the registered export formats."""
    return list(FORMATS)


def as_loaded(
    model: str | torch.nn.Module | LoadedModel, weights: str | Path | None, trust: bool
) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, str):
        return load_model(model, weights=weights, trust_checkpoint=trust)
    cls = type(model)
    return LoadedModel(model.eval(), f"python:{cls.__module__}.{cls.__qualname__}", cls.__name__)


def parse_inputs(inputs: Sequence[str | TensorSpec], dynamic: Sequence[str]) -> list[TensorSpec]:
    if not inputs:
        raise EdgeportError(
            "no inputs declared",
            expected="at least one --input NAME:SHAPE[:DTYPE], e.g. --input input:1x3x224x224 "
            "(hf: and timm: sources know their own inputs; other models need --input)",
        )
    specs = [parse_input(s) if isinstance(s, str) else s for s in inputs]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise EdgeportError(f"input names repeat: {names}", expected="unique input names")
    return apply_dynamic(specs, dynamic)


def _order_inputs(specs: list[TensorSpec], module: torch.nn.Module) -> list[TensorSpec]:
    """Put inputs in forward-signature order when every name is a parameter of forward."""
    try:
        params = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        return specs
    if len(specs) > 1 and all(s.name in params for s in specs):
        return sorted(specs, key=lambda s: params.index(s.name))
    return specs


def example_inputs(specs: Sequence[TensorSpec], seed: int) -> tuple[Any, ...]:
    import torch

    from edgeport.data import random_inputs

    sizes = {k: v for s in specs for k, v in s.examples.items()}
    feeds = random_inputs(specs, sizes, seed=seed)
    return tuple(torch.from_numpy(feeds[s.name]) for s in specs)


def _copy_tokenizer(writer: BundleWriter, files: Sequence[Path]) -> dict[str, Any]:
    """Copy the tokenizer saved beside a Hugging Face model into ``tokenizer/`` (data: JSON,
    vocabularies, sentencepiece models), so that text calibration and deployment read it from
    the bundle."""
    records = []
    for source in files:
        rel = f"tokenizer/{source.name}"
        target = writer.fresh(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        records.append(file_record(writer.root, rel))
    return {"files": records, "from": "the hf: directory's tokenizer (save_pretrained)"}


def _write_golden(writer: BundleWriter, sets: Sequence[GoldenSet]) -> dict[str, Any]:
    entries = [
        writer.golden_entry(
            "golden" if gset.name == "base" else f"golden/{gset.name}",
            gset.inputs,
            gset.outputs,
            name=gset.name,
            sizes=gset.sizes,
        )
        for gset in sets
    ]
    return {"reference": "eager PyTorch, eval(), inference_mode", "sets": entries}


def _manifest(ctx: _Context, golden: dict[str, Any]) -> dict[str, Any]:
    from edgeport._version import __version__

    model = ctx.loaded.describe()
    onnx_entry = ctx.entries.get("onnx-fp32")
    if onnx_entry is not None:
        from edgeport.inspection import summarize_onnx

        sizes = {k: v for s in ctx.inputs for k, v in s.examples.items()}
        model["macs"] = summarize_onnx(ctx.root / onnx_entry["path"], sizes)["macs"]
        model["macs_at"] = sizes
    recommended = "onnx-fp32" if onnx_entry is not None else next(iter(ctx.entries))
    return {
        "edgeport_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "inputs": [s.to_json() for s in ctx.inputs],
        "input_examples": {k: v for s in ctx.inputs for k, v in s.examples.items()},
        "outputs": [s.to_json() for s in ctx.outputs],
        "golden": {
            **golden,
            "seed": ctx.options.seed,
            "distribution": "floats N(0,1); ints uniform [0, 10) unless the input's values "
            "say otherwise (a range, or a mask padded at the end of each row but the first); "
            "bools fair",
        },
        "artifacts": ctx.entries,
        "environment": collect_environment(),
        "recommended": {
            "artifact": recommended,
            "reason": "the verified fp32 artifact (no compressed variant has been made yet)",
        },
    }


def check_parity(
    session: Session, name: str, sets: Sequence[GoldenSet], precision: Precision
) -> dict[str, Any]:
    """Run ``session`` on every golden set; parity per set, raising `CheckFailed` on failure."""
    tolerance = PROFILES[precision]
    parity: dict[str, Any] = {}
    notes: list[str] = []
    for gset in sets:
        try:
            got = session.run(gset.inputs)
        except EdgeportError as exc:
            raise EdgeportError(
                f"{name} failed at run time on golden set {gset.name!r}: {runtime_failure(exc)}",
                fix="the artifact cannot run at these sizes; see which node failed",
            ) from exc
        results = check_outputs(got, gset.outputs, tolerance)
        parity[gset.name] = {r.name: r.to_json() for r in results}
        raise_on_failures(name, gset.name, results)
        notes += [f"golden set {gset.name!r}: {n}" for r in results for n in r.notes]
    if notes:
        log.warning("%s: %s (%d note(s) in the manifest)", name, notes[0], len(notes))
    return parity


def runtime_failure(exc: EdgeportError) -> str:
    """One line: the runtime's own message (ONNX Runtime's without its C++ source location)."""
    lines = str(exc.__cause__ or exc.what).strip().splitlines()
    text = lines[0] if lines else type(exc.__cause__ or exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"Status Message: \S+:\d+ .*? was false\. ", "Status Message: ", text)
    return text[:400]


def parity_notes(parity: dict[str, Any]) -> list[str]:
    """Every note (e.g. a degenerate reference) recorded in a parity entry."""
    return [
        f"golden set {set_name!r}: {note}"
        for set_name, outputs in parity.items()
        for out in outputs.values()
        for note in out.get("notes", [])
    ]


def _with_hint(exc: CheckFailed, warnings_: list[str]) -> CheckFailed:
    """Add the tracer's warnings to a TorchScript parity failure."""
    if not warnings_:
        return exc
    return CheckFailed(
        f"{exc.what}. The tracer warned that the trace may be specialised to the example input "
        f"(data-dependent control flow): {warnings_[0]}",
        fix="remove the data-dependent branch (express it with tensor ops such as torch.where), "
        "or for TorchScript export with --script",
    )


def _artifact_entry(
    root: Path, rel: str, fmt: str, recipe: dict[str, Any], parity: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        **file_record(root, rel),
        "format": fmt,
        "precision": "fp32",
        "derived_from": None,
        "recipe": recipe,
        "tolerance": PROFILES[Precision.FP32].to_json(),
        "golden_sets": list(parity),
        "parity": parity,
        "passed": True,
        **extra,
        "warnings": [*extra.get("warnings", []), *parity_notes(parity)],
    }


def _torchscript_artifact(ctx: _Context) -> tuple[str, dict[str, Any]]:
    from edgeport.exporter.torchscript import export_torchscript

    rel = "model.ts"
    start = time.perf_counter()
    record = export_torchscript(
        ctx.loaded.module, ctx.example, ctx.root / rel, script=ctx.options.script
    )
    # The user's own model, just traced: trusted (docs/trust.md §1).
    session = _session(ctx, rel, "torchscript", "torchscript-fp32", trust_code=True)
    try:
        parity = check_parity(session, "torchscript-fp32", ctx.golden, Precision.FP32)
    except CheckFailed as exc:
        raise _with_hint(exc, record["tracer_warnings"]) from exc
    warnings_ = record.pop("tracer_warnings")
    if warnings_:
        log.warning("TorchScript trace warnings (parity passed on every golden set): %s", warnings_)
    entry = _artifact_entry(ctx.root, rel, "torchscript", record, parity, warnings=warnings_)
    entry["export_seconds"] = round(time.perf_counter() - start, 3)
    return "torchscript-fp32", entry


@dataclass(frozen=True)
class ExportAttempt:
    """One ONNX export path tried, as the artifact's recipe records it (``attempts``).

    Attributes:
        exporter: ``dynamo`` or ``legacy``.
        simplified: Whether the graph checked was onnxsim's (False also when the export failed,
            so that there was no graph).
        outcome: ``passed``, or why it failed, in one line.
        stage: Where it failed: ``export`` (the exporter raised), ``onnxruntime`` (ONNX Runtime
            could not load or run it), ``parity`` (it ran and differed from eager); None when
            it passed.
        baked_dims: Nodes of the failed graph that fix a symbolic dim (`baked_dims`).
        guards: dynamo's guards that pinned a symbolic dim, with their source lines.
    """

    exporter: str
    simplified: bool
    outcome: str = "passed"
    stage: str | None = None
    baked_dims: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()

    def __str__(self) -> str:
        path = ExportPath(self.exporter, self.simplified)
        if self.stage == "export":
            return f"{self.exporter}: the exporter failed: {self.outcome}"
        return f"{path}: {self.outcome}"

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "exporter": self.exporter,
            "simplified": self.simplified,
            "outcome": self.outcome,
        }
        if self.stage is not None:
            record["stage"] = self.stage
        if self.baked_dims:
            record["baked_dims"] = list(self.baked_dims)
        if self.guards:
            record["guards"] = list(self.guards)
        return record


@dataclass
class _OnnxSearch:
    """The export paths tried so far, and what the exporters noticed on the way."""

    ctx: _Context
    attempts: list[ExportAttempt] = field(default_factory=list)
    tracer_warnings: list[str] = field(default_factory=list)


class _GraphFailed(Exception):
    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason[:600]


def _onnx_artifact(ctx: _Context) -> tuple[str, dict[str, Any]]:
    import torch

    from edgeport.exporter.onnx import export_paths

    start = time.perf_counter()
    (ctx.root / SCRATCH).mkdir(exist_ok=True)
    is_script = isinstance(ctx.loaded.module, torch.jit.ScriptModule)
    paths = export_paths(ctx.options.exporter, simplify=ctx.options.simplify, torchscript=is_script)
    search = _OnnxSearch(ctx)
    for exporter in dict.fromkeys(p.exporter for p in paths):
        simplify = any(p.simplify for p in paths if p.exporter == exporter)
        found = _try_exporter(search, exporter, simplify=simplify)
        if found is not None:
            break
    else:
        raise _no_path_passed(search)
    record, parity, data = found
    record["attempts"] = [a.to_json() for a in search.attempts]
    fallback = _fallback_reason(search.attempts, is_script, ctx.options.exporter)
    if fallback:
        record["fallback_reason"] = fallback
        log.info("ONNX export used the legacy exporter: %s", fallback)
    entry = _artifact_entry(
        ctx.root,
        ONNX_FILE,
        "onnx",
        record,
        parity,
        opset=ctx.options.opset,
        external_data=[file_record(ctx.root, p) for p in data],
        warnings=search.tracer_warnings,
    )
    entry["export_seconds"] = round(time.perf_counter() - start, 3)
    return "onnx-fp32", entry


def _try_exporter(
    search: _OnnxSearch, exporter: str, *, simplify: bool
) -> tuple[dict[str, Any], dict[str, Any], list[str]] | None:
    """Export with ``exporter``; check its simplified graph, then its own. The first that
    passes: (recipe, parity, external data files); None when neither did."""
    from edgeport.exporter.onnx import ExportFailed, export_onnx, load_onnx, set_symbolic_dims
    from edgeport.exporter.simplify import simplify_onnx

    ctx = search.ctx
    scratch = ctx.root / SCRATCH / f"{exporter}.onnx"
    try:
        record = export_onnx(
            ctx.loaded.module,
            ctx.example,
            scratch,
            inputs=ctx.inputs,
            outputs=ctx.outputs,
            opset=ctx.options.opset,
            exporter=exporter,
        )
    except ExportFailed as exc:
        failed = ExportAttempt(exporter, False, exc.reason, "export", guards=exc.guards)
        search.attempts.append(failed)
        return None
    search.tracer_warnings += record.pop("tracer_warnings", [])
    exported = load_onnx(scratch)
    set_symbolic_dims(exported, ctx.inputs, ctx.outputs)
    simplify_record: dict[str, Any] = {"applied": False, "reason": "disabled (--no-simplify)"}
    graphs = [exported]
    if simplify:
        simplified, simplify_record = simplify_onnx(exported, ctx.inputs)
        if simplify_record["applied"]:
            graphs.insert(0, simplified)
    for graph in graphs:
        attempt, checked = _try_graph(ctx, exporter, graph, simplified=graph is not exported)
        search.attempts.append(attempt)
        if checked is not None:
            return {**record, "simplify": simplify_record}, *checked
        if graph is not exported:
            log.info("the simplified %s graph failed; checking its own: %s", exporter, attempt)
            simplify_record = {
                **simplify_record,
                "applied": False,
                "reason": f"reverted: the simplified graph failed: {attempt.outcome}",
            }
    return None


def _try_graph(
    ctx: _Context, exporter: str, graph: onnx.ModelProto, *, simplified: bool
) -> tuple[ExportAttempt, tuple[dict[str, Any], list[str]] | None]:
    """Save ``graph`` as the artifact, open it in ONNX Runtime and check parity on every
    golden set: the attempt, and (parity, external data files) when it passed."""
    from edgeport.exporter.onnx import baked_dims, save_onnx

    data = save_onnx(graph, ctx.root / ONNX_FILE)
    try:
        parity = _onnx_parity(ctx, ONNX_FILE)
    except _GraphFailed as exc:
        baked = tuple(baked_dims(graph, ctx.inputs))
        return ExportAttempt(exporter, simplified, exc.reason, exc.stage, baked), None
    return ExportAttempt(exporter, simplified), (parity, data)


def _onnx_parity(ctx: _Context, rel: str) -> dict[str, Any]:
    """Parity of the ONNX file at ``rel``; `_GraphFailed` says at which stage it failed."""
    try:
        session = _session(ctx, rel, "onnx", "onnx-fp32")
    except EdgeportError as exc:
        raise _GraphFailed("onnxruntime", exc.what) from exc
    try:
        return check_parity(session, "onnx-fp32", ctx.golden, Precision.FP32)
    except CheckFailed as exc:
        raise _GraphFailed("parity", exc.what) from exc
    except EdgeportError as exc:
        raise _GraphFailed("onnxruntime", exc.what) from exc


def _fallback_reason(attempts: Sequence[ExportAttempt], is_script: bool, option: str) -> str:
    """Why the artifact is not dynamo's, when auto would have preferred dynamo; else empty."""
    if is_script and option != "legacy":
        return TORCHSCRIPT_SOURCE
    dynamo = [a for a in attempts if a.exporter == "dynamo"]
    if not dynamo or attempts[-1].exporter == "dynamo":
        return ""
    last = dynamo[-1]
    if last.stage == "export":
        return f"dynamo exporter failed: {last.outcome}"
    return f"no dynamo graph passed; the last failed at {last.stage}: {last.outcome}"


def _no_path_passed(search: _OnnxSearch) -> EdgeportError:
    """One error naming every path tried, why each failed, and what pinned a dim."""
    attempts = search.attempts
    lines = [f"  {i}. {a}" for i, a in enumerate(attempts, 1)]
    found = dict.fromkeys(d for a in attempts for d in (*a.guards, *a.baked_dims))
    if found:
        lines.append("What fixes a symbolic dim to its example size:")
        lines += [f"  - {d}" for d in found]
    warned = sorted(search.tracer_warnings, key=lambda w: "site-packages" in w)
    if warned:
        lines.append("The tracer warned that the trace may be specialised to the example input:")
        lines += [f"  - {w.split('. ', 1)[0].rstrip('.')}." for w in warned[:3]]
    what = f"no ONNX export path passed ({len(attempts)} tried):\n" + "\n".join(lines)
    fix = (
        "make the named source lines export-friendly: keep sizes symbolic (no int() or numpy "
        "on a shape) and branch with tensor ops such as torch.where, not a Python if on a value"
    )
    if found:
        fix += "; or declare the pinned dims fixed (a plain size in --input, no LABEL=)"
    if search.ctx.options.exporter != "auto":
        fix += "; --exporter auto tries both exporters"
    failed_check = any(a.stage == "parity" for a in attempts)
    return (CheckFailed if failed_check else EdgeportError)(what, fix=fix)


def _session(ctx: _Context, rel: str, fmt: str, name: str, *, trust_code: bool = False) -> Session:
    """The artifact just written, opened with the model's IO specs (the bundle is not
    committed yet)."""
    return Session.for_file(
        ctx.root / rel, fmt, ctx.inputs, ctx.outputs, trust_code=trust_code, name=name
    )


FORMATS: dict[str, ArtifactExporter] = {}


def register_format(name: str, exporter: ArtifactExporter) -> None:
    """Register an artifact exporter under ``name``; a duplicate name is an internal error."""
    if name in FORMATS:
        raise InternalError(f"export format {name!r} is registered twice")
    FORMATS[name] = exporter


register_format("onnx", _onnx_artifact)
register_format("torchscript", _torchscript_artifact)
