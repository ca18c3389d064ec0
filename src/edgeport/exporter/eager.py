"""Running the eager model: golden outputs, output specs, and clear errors when a layer fails."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeport.bundle import GoldenSet
from edgeport.data import random_inputs
from edgeport.errors import EdgeportError
from edgeport.runtime.torchscript import flatten_outputs, output_names_for
from edgeport.spec import TensorSpec, check_labels_consistent

if TYPE_CHECKING:
    import torch


def run_eager(
    module: torch.nn.Module, specs: Sequence[TensorSpec], feeds: dict[str, np.ndarray]
) -> Any:
    """Run the model in eval mode on ``feeds``; its raw (unflattened) result.

    Raises:
        EdgeportError: The model cannot take these inputs; names the layer that failed and the
            shapes it was given.
    """
    import torch

    args = [torch.from_numpy(np.array(feeds[s.name])) for s in specs]
    stack: list[tuple[str, str, str]] = []
    handles = [] if isinstance(module, torch.jit.ScriptModule) else _track_layers(module, stack)
    try:
        with torch.inference_mode():
            return module(*args)
    except Exception as exc:
        got = ", ".join(f"{s.name} {list(feeds[s.name].shape)} {s.dtype}" for s in specs)
        where = ""
        if stack:
            name, kind, shapes = stack[-1]
            where = f"; layer '{name}' ({kind}) failed on input shapes {shapes}"
        message = str(exc).strip().splitlines()
        raise EdgeportError(
            f"the model cannot take the inputs {got}{where}: "
            f"{type(exc).__name__}: {message[0] if message else ''}",
            expected="input shapes and dtypes the model accepts",
            fix="check the --input shapes (e.g. the image size or channel count the model wants)",
        ) from exc
    finally:
        for handle in handles:
            handle.remove()


def _track_layers(module: torch.nn.Module, stack: list[tuple[str, str, str]]) -> list[Any]:
    import torch

    def shapes(args: tuple[Any, ...]) -> str:
        return ", ".join(str(list(a.shape)) for a in args if isinstance(a, torch.Tensor))

    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue

        def pre(_m: Any, args: tuple[Any, ...], name: str = name, sub: Any = sub) -> None:
            stack.append((name, type(sub).__name__, shapes(args)))

        def post(_m: Any, _args: Any, _out: Any) -> None:
            if stack:
                stack.pop()

        handles.append(sub.register_forward_pre_hook(pre))
        handles.append(sub.register_forward_hook(post))
    return handles


def golden_sets(
    module: torch.nn.Module, specs: Sequence[TensorSpec], *, seed: int
) -> tuple[list[GoldenSet], list[str]]:
    """Golden sets and the flattened output names.

    Sets: ``base`` (seeded random at the example sizes), ``negated`` (the base float inputs
    negated: catches traces specialised on the sign of a value) and, when any dim is symbolic,
    ``resized`` (every symbolic dim one larger, so dynamic batch is checked at two sizes).
    """
    import torch

    sizes = check_labels_consistent(specs)
    plans = [("base", sizes, random_inputs(specs, sizes, seed=seed))]
    base = plans[0][2]
    if any(np.dtype(s.dtype).kind == "f" for s in specs):
        negated = {k: (-v if v.dtype.kind == "f" else v) for k, v in base.items()}
        plans.append(("negated", sizes, negated))
    if sizes:
        bigger = {k: v + 1 for k, v in sizes.items()}
        plans.append(("resized", bigger, random_inputs(specs, bigger, seed=seed + 1)))
    sets, names = [], []
    for set_name, set_sizes, feeds in plans:
        result = run_eager(module, specs, feeds)
        flat = flatten_outputs(result)
        bad = [type(t).__name__ for t in flat if not isinstance(t, torch.Tensor)]
        if bad:
            raise EdgeportError(
                f"the model returns non-tensor values ({', '.join(bad)})",
                expected="tensors, or tuples/lists/dicts of tensors",
            )
        names = output_names_for(result)
        outputs = {n: t.detach().cpu().numpy() for n, t in zip(names, flat, strict=True)}
        sets.append(GoldenSet(set_name, dict(set_sizes), feeds, outputs))
    return sets, names


def output_specs(sets: Sequence[GoldenSet], names: Sequence[str]) -> list[TensorSpec]:
    """Output specs: an axis whose size follows a symbolic input dim gets that dim's label."""
    base = sets[0]
    resized = next((s for s in sets if s.name == "resized"), None)
    specs = []
    for name in names:
        shape: list[int | str | None] = list(base.outputs[name].shape)
        if resized is not None:
            other = resized.outputs[name].shape
            for axis, size in enumerate(shape):
                if axis < len(other) and other[axis] != size:
                    shape[axis] = _label_for(base.sizes, resized.sizes, size, other[axis]) or (
                        f"{re.sub(r'[^A-Za-z0-9_]', '_', name)}_dim{axis}"
                    )
        specs.append(TensorSpec(name, str(base.outputs[name].dtype), tuple(shape)))
    return specs


def _label_for(before: dict[str, int], after: dict[str, int], a: Any, b: Any) -> str | None:
    for label, size in before.items():
        if size == a and after.get(label) == b:
            return label
    return None
