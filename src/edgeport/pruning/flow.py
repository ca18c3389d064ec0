"""`edgeport prune`: prune a model's channels, recover accuracy, export a verified bundle.

The bundle's artifacts come from the pruned model and pass parity against the pruned eager model.
The manifest's ``pruning`` entry records the options, params/MACs before and after, what was left
alone, the recovery (loss curve) and the accuracies measured; ``pruning/plan.json`` and
``pruning/state_dict.safetensors`` rebuild the pruned model from its source with no pickle
(`load_pruned`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from edgeport.bundle import (
    Bundle,
    BundleWriter,
    check_out_dir,
    file_record,
    load_bundle,
    resolve_inside,
    sha256_file,
)
from edgeport.data import SampleSet, load_samples
from edgeport.errors import CheckFailed, EdgeportError, IntegrityError, short_message
from edgeport.pruning.core import (
    PLAN_SCHEMA,
    PruneOptions,
    PruneResult,
    apply_plan,
    prune_model,
)
from edgeport.pruning.recover import Recovery, accuracy, recover
from edgeport.sources import LoadedModel, load_model
from edgeport.spec import TensorSpec
from edgeport.trust import rebuild_what, require_trust, source_runs_code

PLAN_FILE = "pruning/plan.json"
STATE_FILE = "pruning/state_dict.safetensors"


@dataclass(frozen=True)
class RecoverOptions:
    """Recovery after pruning: ``method`` None (none), ``finetune`` or ``distill``."""

    method: str | None = None
    data: str | None = None
    steps: int = 200
    batch: int = 32
    lr: float = 1e-3
    temperature: float = 4.0


def prune(
    model: str | torch.nn.Module,
    inputs: Sequence[str | TensorSpec],
    *,
    out: str | Path,
    options: PruneOptions | None = None,
    recovery: RecoverOptions | None = None,
    eval_data: str | None = None,
    dynamic: Sequence[str] = (),
    weights: str | Path | None = None,
    formats: tuple[str, ...] = ("onnx", "torchscript"),
) -> Bundle:
    """Prune, recover, export and verify; returns the bundle at ``out``.

    Args:
        model: A source spec or an ``nn.Module``.
        inputs: Input specs as for `edgeport.export`.
        out: Bundle directory.
        options: Ratio, importance, ignored layers, rounding.
        recovery: Fine-tune or distill after pruning (default: none).
        eval_data: ``.npz`` with ``labels`` to measure accuracy before/after.
        dynamic: Symbolic dims, as for export.
        weights: Weights file for a source spec.
        formats: Export formats.

    Raises:
        EdgeportError: Bad options, data or model; CheckFailed if an artifact fails parity.
    """
    from edgeport._progress import step
    from edgeport.exporter.flow import (
        ExportOptions,
        as_loaded,
        example_inputs,
        export,
        parse_inputs,
    )

    options = options or PruneOptions()
    recovery = recovery or RecoverOptions()
    if recovery.method is not None and recovery.data is None:
        raise EdgeportError(
            f"--recover {recovery.method} needs --data",
            expected="--data samples.npz (one array per input; `labels` for finetune)",
        )
    check_out_dir(out)
    loaded = as_loaded(model, weights, False)
    specs = parse_inputs(inputs, dynamic)
    example = example_inputs(specs, seed=0)
    teacher = copy.deepcopy(loaded.module).eval()
    train = load_samples(recovery.data, specs, purpose="--data") if recovery.data else None
    evals = load_samples(eval_data, specs, purpose="--eval") if eval_data else None
    measured: dict[str, Any] = {}
    if evals is not None:
        measured["accuracy_unpruned"] = accuracy(teacher, evals)
    with step(f"pruning {options.ratio:.0%} of channels ({options.importance})"):
        result = prune_model(loaded.module, example, options, data=_taylor_batches(train, options))
    if evals is not None:
        measured["accuracy_pruned"] = accuracy(loaded.module, evals)
    record: Recovery | None = None
    if recovery.method is not None and train is not None:
        record = recover(
            loaded.module,
            teacher,
            train,
            method=recovery.method,
            steps=recovery.steps,
            batch=recovery.batch,
            lr=recovery.lr,
            temperature=recovery.temperature,
        )
        if evals is not None:
            measured["accuracy_recovered"] = accuracy(loaded.module, evals)
    # The module was pruned in place: `loaded` now describes the pruned model.
    bundle = export(loaded, specs, out=out, options=ExportOptions(formats=formats))
    return _record(bundle, result, options, record, measured)


def _taylor_batches(train: SampleSet | None, options: PruneOptions) -> Any:
    if train is None or options.importance != "taylor":
        return None
    names = list(train.arrays)
    count = min(len(train), 64)
    return iter([tuple(torch.from_numpy(train.arrays[n][:count]) for n in names)])


def _record(
    bundle: Bundle,
    result: PruneResult,
    options: PruneOptions,
    recovery: Recovery | None,
    measured: dict[str, Any],
) -> Bundle:
    from safetensors.torch import save_file

    with BundleWriter(bundle.root, update=True) as writer:
        writer.copy_from(bundle)
        (writer.root / "pruning").mkdir(exist_ok=True)
        plan = {"schema": PLAN_SCHEMA, "source": bundle.manifest["model"]["source"]}
        plan["modules"] = result.plan
        writer.fresh(PLAN_FILE).write_text(json.dumps(plan, indent=1) + "\n")
        state = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
        save_file(state, str(writer.fresh(STATE_FILE)))
        manifest = dict(bundle.manifest)
        manifest["pruning"] = {
            "options": {**asdict(options), "ignore": result.ignored},
            **result.to_json(),
            "recovery": recovery.to_json() if recovery else None,
            **measured,
            "plan": file_record(writer.root, PLAN_FILE),
            "state_dict": file_record(writer.root, STATE_FILE),
        }
        writer.commit(manifest)
    return load_bundle(bundle.root)


def load_pruned(
    bundle_dir: str | Path, *, source: str | None = None, trust_code: bool = False
) -> LoadedModel:
    """Rebuild a bundle's pruned model: the model from its source, then the recorded plan and
    state dict (hash-checked; safetensors, so no code is unpickled).

    A source that imports code (``file.py:factory``) runs only with ``trust_code=True`` or
    when given as ``source=`` by the caller.

    Raises:
        EdgeportError: Not a pruned bundle, a hash mismatch, or a source that does not fit.
        CodeNotTrusted: The manifest's source imports code and ``trust_code`` is False.
    """
    from safetensors.torch import load_file

    root = Path(bundle_dir)
    bundle = load_bundle(root, check_hashes=False)
    entry = bundle.manifest.get("pruning")
    if not entry:
        raise EdgeportError(f"{str(root)!r} is not a pruned bundle (no `pruning` entry)")
    paths = {}
    for key, record in bundle.spec.pruning.items():
        paths[key] = resolve_inside(bundle.root, record.path, f"pruning {key}")
        actual = sha256_file(paths[key])
        if actual != record.sha256:
            raise IntegrityError(
                f"sha256 of {record.path!r} is {actual}, manifest says {record.sha256}",
                fix="re-run edgeport prune; do not load a modified plan or state dict",
            )
    try:
        plan = json.loads(paths["plan"].read_text())
    except (ValueError, RecursionError) as exc:
        raise EdgeportError(f"the pruning plan is not JSON: {exc}") from exc
    if not isinstance(plan, dict):
        raise EdgeportError("the pruning plan is not a JSON object")
    if plan.get("schema") != PLAN_SCHEMA:
        raise EdgeportError(f"unknown pruning plan schema {plan.get('schema')!r}")
    src = source or bundle.spec.source or "python:"
    if source is None and source_runs_code(src, bundle.manifest["model"].get("weights")):
        require_trust(trust_code, rebuild_what(src))
    if src.startswith("python:"):
        raise EdgeportError(
            "this bundle was pruned from an in-memory nn.Module; pass source= to rebuild it",
            fix="prune from a source spec (file.py:factory, torchvision:NAME)",
        )
    loaded = load_model(src)
    try:
        state = load_file(str(paths["state_dict"]))
    except Exception as exc:  # safetensors raises its own error kinds on a corrupt file
        raise EdgeportError(
            f"the pruned state dict {bundle.spec.pruning['state_dict'].path!r} cannot be read: "
            f"{short_message(exc)}",
            fix="re-run edgeport prune",
        ) from exc
    apply_plan(loaded.module, plan.get("modules"), state)
    return loaded


def require_rebuild_trust(bundle: Bundle, trust_code: bool) -> str:
    """The bundle's ``model.source``, once rebuilding it is allowed (see `rebuild_eager`)."""
    spec = bundle.spec.source
    if spec is None or spec.startswith("python:"):
        raise EdgeportError(
            "this bundle was exported from an in-memory nn.Module; its source cannot be rebuilt",
            fix="export from a source spec (file.py:factory, torchvision:NAME) to re-check later",
        )
    if source_runs_code(spec, bundle.manifest["model"].get("weights")):
        require_trust(trust_code, rebuild_what(spec))
    return spec


def rebuild_eager(bundle: Bundle, *, trust_code: bool = False) -> LoadedModel:
    """The bundle's eager model, rebuilt from its ``model.source`` (and pruning plan), checked
    to have the state dict the bundle was exported from. The one way edgeport does this.

    Raises:
        CodeNotTrusted: The source imports code or reads files outside the bundle, and
            ``trust_code`` is False (see `edgeport.trust`).
        EdgeportError: The bundle came from an in-memory module (no source to rebuild).
        CheckFailed: The source no longer builds the same weights.
    """
    spec = require_rebuild_trust(bundle, trust_code)
    source = bundle.manifest["model"]
    if bundle.spec.pruning:
        loaded = load_pruned(bundle.root, trust_code=trust_code)
    else:
        loaded = load_model(spec, weights=source.get("weights"))
    loaded.bind([s.name for s in bundle.inputs])
    if loaded.describe()["state_dict_sha256"] != source.get("state_dict_sha256"):
        raise CheckFailed(
            f"{spec!r} no longer builds the model this bundle was exported from "
            "(state dict sha256 differs)",
            fix="re-export the bundle from the current source",
        )
    return loaded
