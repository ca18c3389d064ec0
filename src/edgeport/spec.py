"""Tensor specifications: names, dtypes and shapes with symbolic dimensions.

A dimension is either a fixed size (`int`) or a symbolic label (`str`, e.g. ``"batch"``). A
`TensorSpec` used for export also carries an *example* size for each symbolic dim, which is what
the model is traced with.

Command-line grammar (docs/design.md §9):

* ``--input NAME:1x3x224x224[:float32]`` fixes a shape;
* ``--input NAME:batch=1x3x224x224`` declares dim 0 symbolic ("batch") with example size 1;
* ``--dynamic NAME:0=batch`` marks an axis of an already declared input symbolic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgeport.errors import EdgeportError

Dim = int | str

# numpy dtype names accepted on the command line, and their canonical spelling.
DTYPES = {
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float64": "float64",
    "double": "float64",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}

_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: dtype, shape (ints or symbolic labels) and example sizes.

    Attributes:
        name: Tensor name, as in the ONNX graph.
        dtype: numpy dtype name, e.g. ``"float32"``.
        shape: Sizes; a ``str`` is a symbolic dim label, ``None`` an unknown size.
        examples: Example size for each symbolic label (used to trace/export).
    """

    name: str
    dtype: str = "float32"
    shape: tuple[Dim | None, ...] = ()
    examples: dict[str, int] = field(default_factory=dict)

    def concrete_shape(self, sizes: dict[str, int] | None = None) -> tuple[int, ...]:
        """Shape with every symbolic dim replaced by ``sizes[label]`` or its example size."""
        merged = {**self.examples, **(sizes or {})}
        out: list[int] = []
        for dim in self.shape:
            if isinstance(dim, int):
                out.append(dim)
            elif dim is not None and dim in merged:
                out.append(merged[dim])
            else:
                raise EdgeportError(
                    f"input '{self.name}' has symbolic dim {dim!r} with no example size",
                    expected="an example size for every symbolic dim",
                    fix=f"write it as {dim}=N in --input, e.g. --input {self.name}:{dim}=1x...",
                )
        return tuple(out)

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """Axis index → label for every symbolic dim."""
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def to_json(self) -> dict[str, Any]:
        """JSON form used in the bundle manifest."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TensorSpec:
        """Inverse of `to_json`."""
        return cls(name=data["name"], dtype=data["dtype"], shape=tuple(data["shape"]))


def canonical_dtype(text: str, *, context: str) -> str:
    """Map a user dtype spelling to a numpy dtype name, or raise a clear error."""
    key = text.strip().lower()
    if key not in DTYPES:
        raise EdgeportError(
            f"unknown dtype {text!r} in {context}",
            available=", ".join(sorted(set(DTYPES.values()))),
        )
    return DTYPES[key]


def parse_input(text: str) -> TensorSpec:
    """Parse ``NAME:DIMS[:DTYPE]`` where DIMS is ``1x3x224x224`` or ``batch=1x3x224x224``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise EdgeportError(
            f"cannot parse --input {text!r}",
            expected="NAME:SHAPE[:DTYPE], e.g. input:1x3x224x224 or "
            "input:batch=1x3x224x224:float32",
        )
    name, dims_text = parts[0], parts[1]
    dtype = canonical_dtype(parts[2], context=f"--input {text!r}") if len(parts) == 3 else "float32"
    shape: list[Dim] = []
    examples: dict[str, int] = {}
    for token in dims_text.lower().split("x") if dims_text else []:
        shape.append(_parse_dim(token, text, examples))
    return TensorSpec(name=name, dtype=dtype, shape=tuple(shape), examples=examples)


def _parse_dim(token: str, text: str, examples: dict[str, int]) -> Dim:
    if token.isdigit() and int(token) > 0:
        return int(token)
    label, _, size = token.partition("=")
    if _LABEL.match(label) and size.isdigit() and int(size) > 0:
        examples[label] = int(size)
        return label
    raise EdgeportError(
        f"cannot parse dim {token!r} in --input {text!r}",
        expected="a positive size (224) or a symbolic label with an example size (batch=1)",
    )


def apply_dynamic(specs: Sequence[TensorSpec], dynamic: Iterable[str]) -> list[TensorSpec]:
    """Apply ``--dynamic NAME:AXIS=LABEL`` options to the parsed input specs."""
    by_name = {s.name: s for s in specs}
    for text in dynamic:
        match = re.fullmatch(r"([^:]+):(-?\d+)=([A-Za-z_][A-Za-z0-9_]*)", text.strip())
        if not match:
            raise EdgeportError(
                f"cannot parse --dynamic {text!r}",
                expected="NAME:AXIS=LABEL, e.g. input:0=batch",
            )
        name, axis, label = match.group(1), int(match.group(2)), match.group(3)
        if name not in by_name:
            raise EdgeportError(
                f"--dynamic {text!r} names input {name!r}, which no --input declares",
                available=", ".join(by_name) or "no inputs declared",
            )
        spec = by_name[name]
        if not -len(spec.shape) <= axis < len(spec.shape):
            raise EdgeportError(
                f"--dynamic {text!r}: axis {axis} is out of range for {name} "
                f"with rank {len(spec.shape)}",
                expected=f"an axis in 0..{len(spec.shape) - 1}",
            )
        shape = list(spec.shape)
        axis %= len(shape)
        current = shape[axis]
        example = current if isinstance(current, int) else spec.examples.get(str(current), 1)
        shape[axis] = label
        by_name[name] = replace(
            spec, shape=tuple(shape), examples={**spec.examples, label: int(example)}
        )
    return [by_name[s.name] for s in specs]


def check_labels_consistent(specs: Sequence[TensorSpec]) -> dict[str, int]:
    """Every symbolic label must have one example size across inputs; return label → size."""
    sizes: dict[str, int] = {}
    for spec in specs:
        for label, size in spec.examples.items():
            if sizes.setdefault(label, size) != size:
                raise EdgeportError(
                    f"symbolic dim {label!r} has example size {sizes[label]} in one input and "
                    f"{size} in '{spec.name}'",
                    expected="one example size per label (the same dim must agree across inputs)",
                )
    return sizes


def numpy_dtype(name: str) -> np.dtype[Any]:
    """numpy dtype for a spec dtype name."""
    return np.dtype(name)
