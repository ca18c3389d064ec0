"""Tensor specifications: names, dtypes and shapes with symbolic dimensions.

A dimension is either a fixed size (`int`) or a symbolic label (`str`, e.g. ``"batch"``). A
`TensorSpec` used for export also carries an *example* size for each symbolic dim, which is what
the model is traced with.

Command-line grammar (docs/design.md §9):

* ``--input NAME:1x3x224x224[:float32]`` fixes a shape;
* ``--input NAME:batch=1x3x224x224`` declares dim 0 symbolic ("batch") with example size 1;
* ``--dynamic NAME:0=batch`` marks an axis of an already declared input symbolic;
* ``--input ids:batch=2xseq=16:int64:0..30522`` says which values an integer input holds (token
  ids below the vocabulary size), ``--input mask:batch=2xseq=16:int64:mask`` an attention mask
  (1s, then 0s of padding): generated inputs (golden sets, random calibration) respect them.
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


VALUE_KINDS = ("range", "mask")
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Values:
    """Which values an integer input holds, so that generated inputs are ones the model takes.

    Attributes:
        kind: ``range`` (integers in [low, high)) or ``mask`` (an attention mask: each row of
            the last axis is 1s then 0s of padding; the first row has none).
        low: Smallest value (``range``).
        high: One past the largest value (``range``).
    """

    kind: str = "range"
    low: int = 0
    high: int = 2

    def __post_init__(self) -> None:
        if self.kind not in VALUE_KINDS:
            raise EdgeportError(
                f"unknown value kind {self.kind!r}", available=", ".join(VALUE_KINDS)
            )
        if self.kind == "range" and not -INT64_MAX <= self.low < self.high <= INT64_MAX:
            raise EdgeportError(
                f"value range {self.low}..{self.high} is empty or out of int64",
                expected="LOW..HIGH with LOW < HIGH (HIGH excluded), e.g. 0..30522",
            )

    def to_json(self) -> dict[str, Any]:
        """JSON form (the manifest's ``inputs[i].values``)."""
        if self.kind == "mask":
            return {"kind": "mask"}
        return {"kind": "range", "low": self.low, "high": self.high}

    def text(self) -> str:
        """The command-line spelling: ``0..30522`` or ``mask``."""
        return "mask" if self.kind == "mask" else f"{self.low}..{self.high}"


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: dtype, shape (ints or symbolic labels) and example sizes.

    Attributes:
        name: Tensor name, as in the ONNX graph.
        dtype: numpy dtype name, e.g. ``"float32"``.
        shape: Sizes; a ``str`` is a symbolic dim label, ``None`` an unknown size.
        examples: Example size for each symbolic label (used to trace/export).
        values: Which values an integer input holds (None: small integers, ``[0, 10)``).
    """

    name: str
    dtype: str = "float32"
    shape: tuple[Dim | None, ...] = ()
    examples: dict[str, int] = field(default_factory=dict)
    values: Values | None = None

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
        data: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        if self.values is not None:
            data["values"] = self.values.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TensorSpec:
        """Inverse of `to_json`."""
        values = data.get("values")
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            shape=tuple(data["shape"]),
            values=Values(**values) if values else None,
        )


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
    """Parse ``NAME:DIMS[:DTYPE[:VALUES]]`` where DIMS is ``1x3x224x224`` or
    ``batch=1x3x224x224`` and VALUES (integer inputs) ``LOW..HIGH`` or ``mask``."""
    parts = text.split(":")
    if len(parts) not in (2, 3, 4) or not parts[0] or not parts[1]:
        raise EdgeportError(
            f"cannot parse --input {text!r}",
            expected="NAME:SHAPE[:DTYPE[:VALUES]], e.g. input:1x3x224x224, "
            "input:batch=1x3x224x224:float32 or ids:batch=2xseq=16:int64:0..30522",
        )
    name, dims_text = parts[0], parts[1]
    dtype = canonical_dtype(parts[2], context=f"--input {text!r}") if len(parts) >= 3 else "float32"
    values = _parse_values(parts[3], dtype, text) if len(parts) == 4 else None
    shape: list[Dim] = []
    examples: dict[str, int] = {}
    for token in dims_text.lower().split("x") if dims_text else []:
        shape.append(_parse_dim(token, text, examples))
    return TensorSpec(name=name, dtype=dtype, shape=tuple(shape), examples=examples, values=values)


def _parse_values(token: str, dtype: str, text: str) -> Values:
    if np.dtype(dtype).kind not in "iu":
        raise EdgeportError(
            f"--input {text!r} gives values for a {dtype} input",
            expected="LOW..HIGH or mask only for integer inputs (int64, int32, ...)",
        )
    if token.strip().lower() == "mask":
        return Values("mask")
    match = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", token.strip())
    if not match:
        raise EdgeportError(
            f"cannot parse values {token!r} in --input {text!r}",
            expected="LOW..HIGH (HIGH excluded), e.g. 0..30522, or mask",
        )
    return Values("range", int(match.group(1)), int(match.group(2)))


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
