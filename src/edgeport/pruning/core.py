"""Structured channel pruning: dependency groups, importance criteria, surgery, the saved plan.

The dependency analysis is Torch-Pruning's DepGraph, built by tracing the model: it groups the
channels that must go together (a conv's outputs with the following BatchNorm and every consumer,
both sides of a residual addition, concatenations, depthwise/grouped convs, flatten → linear,
squeeze-excitation multiplies, attention projections) and removes them physically, so the model
has fewer parameters and MACs. edgeport adds what a shipping flow needs on top:

* a registry of importance criteria (`IMPORTANCE`), uniform or global ratios, per-layer
  overrides, ignored layers (default: the first conv and the classifier), channel counts rounded
  to a multiple (default 8);
* `nn.MultiheadAttention` head counts and the attributes that depend on a pruned width (a
  ViT's ``hidden_dim``) patched after surgery;
* a **plan**: the module attributes that changed (``in_channels``, ``num_features``,
  ``embed_dim``, ...), recorded as JSON. `apply_plan` re-applies it to a freshly built model, so a
  pruned model saves as plan + state dict and reloads without pickling any code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgeport.errors import EdgeportError

log = logging.getLogger(__name__)

PLAN_SCHEMA = "edgeport.pruning-plan/1"


def _torch_pruning() -> Any:
    try:
        import torch_pruning
    except ImportError as exc:  # pragma: no cover - an install problem
        raise EdgeportError(
            "pruning needs the torch-pruning package",
            fix="pip install 'edgeport[export]' (or pip install torch-pruning)",
        ) from exc
    return torch_pruning


def _magnitude(p: int) -> Callable[[], Any]:
    return lambda: _torch_pruning().importance.GroupMagnitudeImportance(p=p)


# Importance criteria by name: a factory and whether it needs gradients from data.
IMPORTANCE: dict[str, tuple[Callable[[], Any], bool]] = {
    "l1": (_magnitude(1), False),
    "l2": (_magnitude(2), False),
    "bn_scale": (lambda: _torch_pruning().importance.BNScaleImportance(), False),
    "taylor": (lambda: _torch_pruning().importance.GroupTaylorImportance(), True),
}


@dataclass(frozen=True)
class PruneOptions:
    """How to prune. Validated on construction.

    Attributes:
        ratio: Fraction of channels to remove from each prunable group (0 < ratio < 1).
        importance: A name in `IMPORTANCE`.
        global_pruning: Rank channels across layers instead of the same ratio per layer.
        overrides: Per-layer ratios, by module name.
        ignore: Module names never pruned (their output channels stay). None means the default:
            the first convolution and the classifier (the last Linear).
        round_to: Keep channel counts a multiple of this (fast kernels); 1 to disable.
    """

    ratio: float = 0.5
    importance: str = "l1"
    global_pruning: bool = False
    overrides: dict[str, float] = field(default_factory=dict)
    ignore: tuple[str, ...] | None = None
    round_to: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.ratio < 1:
            raise EdgeportError(
                f"pruning ratio {self.ratio} is out of range (--ratio, --prune)",
                expected="a fraction of channels to remove, 0 < ratio < 1",
            )
        if self.importance not in IMPORTANCE:
            raise EdgeportError(
                f"unknown importance {self.importance!r}", available=", ".join(IMPORTANCE)
            )
        for name, value in self.overrides.items():
            if not 0 <= value < 1:
                raise EdgeportError(f"override ratio {value} for {name!r} must be in [0, 1)")
        if self.round_to < 1:
            raise EdgeportError(f"round_to={self.round_to} must be at least 1")


def default_ignored(model: nn.Module) -> list[str]:
    """The first convolution and the classifier (the last Linear) by module name."""
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return [*convs[:1], *linears[-1:]]


def count_macs_params(model: nn.Module, example: tuple[torch.Tensor, ...]) -> tuple[int, int]:
    """MACs and parameters for one forward pass on ``example``."""
    tp = _torch_pruning()
    macs, params = tp.utils.count_ops_and_params(model, example)
    return int(macs), int(params)


_ATTR_TYPES = (int, bool)


def _shape_attrs(module: nn.Module) -> dict[str, Any]:
    """The attributes of a module that describe its sizes (ints and tuples of ints)."""
    out: dict[str, Any] = {}
    for key, value in vars(module).items():
        if key in ("training",) or (key.startswith("_") and key != "_qkv_same_embed_dim"):
            continue
        if isinstance(value, _ATTR_TYPES) or (
            isinstance(value, tuple) and all(isinstance(v, int) for v in value)
        ):
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def snapshot(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Size attributes of every module, by module name."""
    return {name: _shape_attrs(m) for name, m in model.named_modules()}


def plan_from(before: dict[str, dict[str, Any]], model: nn.Module) -> dict[str, dict[str, Any]]:
    """The size attributes that changed, by module name."""
    changed: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        now = _shape_attrs(module)
        diff = {k: v for k, v in now.items() if before.get(name, {}).get(k) != v}
        if diff:
            changed[name] = diff
    return changed


def _checked_attrs(name: str, module: nn.Module, attrs: Any) -> dict[str, Any]:
    """A plan entry, only if it sets size attributes the module has to values of their kind
    (a plan comes from a bundle: it never sets ``forward`` or ``__class__``)."""
    sizes = _shape_attrs(module)
    if not isinstance(attrs, dict):
        raise EdgeportError(f"the pruning plan's entry for {name!r} is not a JSON object")
    for key, value in attrs.items():
        current = sizes.get(key)
        if isinstance(current, list):
            fits = isinstance(value, list) and all(type(v) is int and v >= 0 for v in value)
        elif isinstance(current, bool):
            fits = type(value) is bool
        else:
            fits = type(value) is int and type(current) is int and value >= 0
        if not fits:
            raise EdgeportError(
                f"the pruning plan sets {name}.{key} = {value!r:.60}",
                expected="size attributes of the module (ints, bools, lists of ints) only",
                fix="re-run edgeport prune; do not load a plan edited by hand",
            )
    return attrs


def apply_plan(model: nn.Module, modules: Any, state: dict[str, torch.Tensor]) -> nn.Module:
    """Make a freshly built ``model`` the pruned one: set the recorded attributes, give every
    parameter and buffer the shape it has in ``state``, then load ``state`` (strictly).

    Raises:
        EdgeportError: The plan or the state dict does not fit this model.
    """
    named = dict(model.named_modules())
    if not isinstance(modules, dict):
        raise EdgeportError("the pruning plan's 'modules' is not a JSON object")
    for name, attrs in modules.items():
        if name not in named:
            raise EdgeportError(
                f"the pruning plan names module {name!r}, which this model does not have",
                fix="rebuild the model from the same source the plan was made from",
            )
        for key, value in _checked_attrs(name, named[name], attrs).items():
            setattr(named[name], key, tuple(value) if isinstance(value, list) else value)
    for key, tensor in state.items():
        owner_name, _, leaf = key.rpartition(".")
        owner = named.get(owner_name)
        if owner is None:
            raise EdgeportError(
                f"the pruned state dict has {key!r}, which this model does not have"
            )
        current = getattr(owner, leaf, None)
        if isinstance(current, torch.Tensor) and current.shape != tensor.shape:
            empty = torch.empty(tensor.shape, dtype=current.dtype)
            if isinstance(current, nn.Parameter):
                setattr(owner, leaf, nn.Parameter(empty, requires_grad=current.requires_grad))
            else:
                owner._buffers[leaf] = empty
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise EdgeportError(
            f"the pruned state dict does not fit the model rebuilt from the plan: {exc}"
        ) from exc
    return model.eval()


@dataclass
class PruneResult:
    """What pruning did.

    Attributes:
        model: The pruned model (the same object, modified in place).
        plan: Module name → changed size attributes.
        macs_before, macs_after, params_before, params_after: Counts at the example inputs.
        ignored: Module names that were not pruned by request.
        untouched: Conv/Linear layers outside the ignored list that kept every channel (not
            safely prunable in their group, or ranked to keep all).
    """

    model: nn.Module
    plan: dict[str, dict[str, Any]]
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    ignored: list[str]
    untouched: list[str]

    def to_json(self) -> dict[str, Any]:
        """Manifest form (without the plan, which is saved beside)."""
        return {
            "macs_before": self.macs_before,
            "macs_after": self.macs_after,
            "macs_ratio": self.macs_after / max(self.macs_before, 1),
            "params_before": self.params_before,
            "params_after": self.params_after,
            "params_ratio": self.params_after / max(self.params_before, 1),
            "ignored": self.ignored,
            "untouched": self.untouched,
        }


def _attention_heads(model: nn.Module) -> dict[nn.Module, int]:
    return {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}


def _patch_widths(model: nn.Module) -> None:
    """Update attributes that hold a pruned width but are not part of a layer's own shape."""
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention):
            module.head_dim = module.embed_dim // module.num_heads
            module.kdim = module.vdim = module.embed_dim
        # torchvision's VisionTransformer reshapes patches to `hidden_dim` in forward.
        proj = getattr(module, "conv_proj", None)
        if isinstance(proj, nn.Conv2d) and isinstance(getattr(module, "hidden_dim", None), int):
            setattr(module, "hidden_dim", proj.out_channels)  # noqa: B010


def prune_model(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    options: PruneOptions,
    *,
    data: Iterator[tuple[torch.Tensor, ...]] | None = None,
) -> PruneResult:
    """Prune ``model`` in place (it must be in eval mode).

    Args:
        model: The model; its parameters are modified.
        example: Example inputs for tracing the dependency graph.
        options: Ratio, importance, ignored layers, rounding.
        data: Batches of inputs for data-driven importance (``taylor``).

    Raises:
        EdgeportError: Bad options, a criterion that needs data without it, or a model the
            tracer cannot follow.
    """
    tp = _torch_pruning()
    factory, needs_data = IMPORTANCE[options.importance]
    named = dict(model.named_modules())
    ignored = list(options.ignore) if options.ignore is not None else default_ignored(model)
    unknown = [n for n in [*ignored, *options.overrides] if n not in named]
    if unknown:
        raise EdgeportError(
            f"no module named {', '.join(map(repr, unknown))} in the model",
            available=", ".join(n for n, m in named.items() if n and not list(m.children()))[:400],
        )
    macs_before, params_before = count_macs_params(model, example)
    before = snapshot(model)
    weights_before = {
        n: tuple(m.weight.shape) for n, m in named.items() if isinstance(m, nn.Conv2d | nn.Linear)
    }
    try:
        pruner = tp.pruner.MetaPruner(
            model,
            example,
            importance=factory(),
            pruning_ratio=options.ratio,
            pruning_ratio_dict={named[n]: r for n, r in options.overrides.items()} or None,
            global_pruning=options.global_pruning,
            ignored_layers=[named[n] for n in ignored],
            round_to=options.round_to if options.round_to > 1 else None,
            num_heads=_attention_heads(model),
        )
    except Exception as exc:
        raise EdgeportError(
            f"cannot build the dependency graph of {type(model).__name__}: {exc}",
            fix="check that the model traces with the example inputs; ignore the layers it "
            "cannot handle with --ignore",
        ) from exc
    if needs_data:
        if data is None:
            raise EdgeportError(
                f"importance {options.importance!r} needs data", fix="pass --data DATA"
            )
        model.zero_grad()
        for inputs in data:
            out = model(*inputs)
            logits = out if isinstance(out, torch.Tensor) else next(iter(out.values()))
            target = logits.detach().argmax(-1)
            nn.functional.cross_entropy(logits.flatten(0, -2), target.flatten()).backward()
    pruner.step()
    model.zero_grad(set_to_none=True)
    _patch_widths(model)
    model.eval()
    macs_after, params_after = count_macs_params(model, example)
    untouched = [
        n
        for n, shape in weights_before.items()
        if n not in ignored and tuple(named[n].weight.shape) == shape
    ]
    return PruneResult(
        model,
        plan_from(before, model),
        macs_before,
        macs_after,
        params_before,
        params_after,
        ignored,
        untouched,
    )
