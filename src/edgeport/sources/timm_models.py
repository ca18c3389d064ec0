"""``timm:NAME[?k=v]``: a `timm` model, randomly initialised (seeded) unless ``--weights`` names
a local file. ``pretrained`` is always off and the network is refused while the model is built;
the default input is the model's own ``input_size`` with a symbolic batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeport.errors import EdgeportError
from edgeport.sources.network import first_line, offline
from edgeport.spec import TensorSpec

if TYPE_CHECKING:
    import torch

FIX = (
    "edgeport never downloads: build the model without pretrained weights and pass a local "
    "safetensors file with --weights"
)


@dataclass
class TimmModel:
    """What `load` returns."""

    module: torch.nn.Module
    class_name: str
    inputs: list[TensorSpec]


def load(spec: str) -> TimmModel:
    """Build ``timm:NAME?k=v`` (``spec`` without the ``timm:`` prefix)."""
    import timm

    from edgeport.sources import no_such_model, parse_options

    name, _, query = spec.partition("?")
    kwargs = parse_options(query, f"timm:{spec}")
    if kwargs.pop("pretrained", False):
        raise EdgeportError(f"timm:{spec}: pretrained=True would download weights", fix=FIX)
    available = timm.list_models()
    if name not in available:
        raise no_such_model("timm", name, available, cutoff=0.6)
    with offline(f"timm:{name}", fix=FIX):
        try:
            model = timm.create_model(name, pretrained=False, **kwargs)
        except TypeError as exc:
            raise EdgeportError(
                f"timm:{name} does not accept the options {kwargs}: {first_line(exc)}",
                fix="remove or rename the ?key=value options",
            ) from exc
    size = tuple(int(d) for d in _input_size(model))
    inputs = [TensorSpec("input", "float32", ("batch", *size), {"batch": 1})]
    return TimmModel(model, f"{type(model).__module__}.{type(model).__qualname__}", inputs)


def _input_size(model: Any) -> tuple[int, ...]:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    return tuple(cfg.get("input_size") or (3, 224, 224))
