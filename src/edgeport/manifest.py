"""The bundle manifest, parsed once into typed objects (docs/design.md §3, §7).

`parse_manifest` checks every field the runtimes rely on before anything else reads the manifest:
a missing key, a wrong type, an unknown dtype, precision or format, an impossible size is one
`ManifestError` naming the field (``artifacts.onnx-fp32.path``). The parsed `Manifest` keeps the
raw JSON (``raw``) for the fields only the writers use (environment, benchmarks, reports).

This module needs numpy only for `TensorSpec`; it never opens a file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from edgeport.errors import EdgeportError
from edgeport.spec import INT64_MAX, VALUE_KINDS, TensorSpec, Values

SCHEMA = "edgeport.bundle/1"
SCHEMA_FAMILY = "edgeport.bundle/"
PRECISIONS = ("fp32", "int8")
# Formats a manifest may record; loading the ones in CODE_FORMATS runs code from the file.
FORMATS = ("onnx", "torchscript")
CODE_FORMATS = frozenset({"torchscript"})
DTYPES = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
)
# Sizes a manifest may ask the reader to allocate: one dim, and one example input in elements.
MAX_DIM = 1 << 24
MAX_EXAMPLE_ELEMENTS = 1 << 28
TOLERANCE_KEYS = ("rtol", "atol", "min_cosine", "min_top1")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(EdgeportError):
    """manifest.json is not a usable edgeport manifest (exit 2)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(
            f"manifest.json: {field} {problem}",
            fix="this bundle was not written by edgeport, or was edited after; re-export it",
        )
        self.field = field


@dataclass(frozen=True)
class FileRecord:
    """A file the manifest names: a path inside the bundle and its sha256."""

    path: str
    sha256: str


@dataclass(frozen=True)
class ArtifactEntry:
    """One artifact as the manifest records it (``raw`` holds the whole entry)."""

    name: str
    path: str
    sha256: str
    format: str
    precision: str
    tolerance: dict[str, float]
    golden_sets: tuple[str, ...] | None  # None: every golden set
    external_data: tuple[FileRecord, ...]
    raw: dict[str, Any]

    @property
    def runs_code(self) -> bool:
        """True when loading the artifact runs code from the file (TorchScript)."""
        return self.format in CODE_FORMATS


@dataclass(frozen=True)
class GoldenEntry:
    """One golden set: input and output files, their hashes, the sizes it was made at."""

    name: str
    sizes: dict[str, int]
    inputs: dict[str, str]
    outputs: dict[str, str]
    batch: int | None
    sha256: dict[str, str]


@dataclass(frozen=True)
class Manifest:
    """A validated manifest."""

    schema: str
    source: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    input_examples: dict[str, int]
    artifacts: dict[str, ArtifactEntry]
    golden: tuple[GoldenEntry, ...]
    recommended: str | None
    pruning: dict[str, FileRecord]
    raw: dict[str, Any]
    tokenizer: tuple[FileRecord, ...] = ()


def parse_manifest(doc: Any) -> Manifest:
    """Validate a decoded manifest.json and return it typed.

    Raises:
        ManifestError: The first field that is missing, of the wrong type or out of range.
        EdgeportError: The schema is not one this edgeport reads.
    """
    if not isinstance(doc, dict):
        raise ManifestError("the top level", f"is a JSON {_kind(doc)}, not an object")
    schema = _str(doc, "schema", "")
    if schema != SCHEMA:
        raise EdgeportError(
            f"manifest.json has schema {schema!r}",
            expected=f"schema {SCHEMA!r}",
            fix="open it with the edgeport version that wrote it, or re-export the bundle",
        )
    examples = {
        k: _count(v, f"input_examples.{k}", low=1, high=MAX_DIM)
        for k, v in _obj(doc, "input_examples", "", optional=True).items()
    }
    inputs = tuple(_spec(d, f"inputs[{i}]", examples) for i, d in enumerate(_list(doc, "inputs")))
    outputs = tuple(_spec(d, f"outputs[{i}]", None) for i, d in enumerate(_list(doc, "outputs")))
    for kind, specs in (("inputs", inputs), ("outputs", outputs)):
        if not specs:
            raise ManifestError(kind, "is empty")
    artifacts = {name: _artifact(name, entry) for name, entry in _obj(doc, "artifacts", "").items()}
    golden_doc = _obj(doc, "golden", "", optional=True)
    golden = tuple(
        _golden(s, f"golden.sets[{i}]")
        for i, s in enumerate(_list(golden_doc, "sets", "golden.", optional=True))
    )
    model = _obj(doc, "model", "", optional=True)
    if model.get("weights") is not None:
        _str(model, "weights", "model.")
    recommended = _obj(doc, "recommended", "", optional=True).get("artifact")
    pruning = {
        key: _record(_obj(_obj(doc, "pruning", ""), key, "pruning."), f"pruning.{key}")
        for key in ("plan", "state_dict")
        if doc.get("pruning")
    }
    tokenizer = tuple(
        _record(r, f"tokenizer.files[{i}]")
        for i, r in enumerate(
            _list(_obj(doc, "tokenizer", "", optional=True), "files", "tokenizer.", optional=True)
        )
    )
    return Manifest(
        schema=schema,
        source=_str(model, "source", "model.") if "source" in model else None,
        inputs=inputs,
        outputs=outputs,
        input_examples=examples,
        artifacts=artifacts,
        golden=golden,
        recommended=recommended if isinstance(recommended, str) else None,
        pruning=pruning,
        raw=doc,
        tokenizer=tokenizer,
    )


def _artifact(name: str, entry: Any) -> ArtifactEntry:
    where = f"artifacts.{name}"
    if not isinstance(entry, dict):
        raise ManifestError(where, f"is a JSON {_kind(entry)}, not an object")
    fmt = _choice(entry, "format", where, FORMATS)
    precision = _choice(entry, "precision", where, PRECISIONS)
    tolerance = {
        key: _number(value, f"{where}.tolerance.{key}")
        for key, value in _obj(entry, "tolerance", f"{where}.", optional=True).items()
        if key in TOLERANCE_KEYS and value is not None
    }
    sets = None
    if "golden_sets" in entry:
        sets = tuple(
            _str_value(s, f"{where}.golden_sets[{i}]")
            for i, s in enumerate(_list(entry, "golden_sets", f"{where}."))
        )
    if "size_bytes" in entry:
        _count(entry["size_bytes"], f"{where}.size_bytes", low=0, high=1 << 62)
    external = tuple(
        _record(r, f"{where}.external_data[{i}]")
        for i, r in enumerate(_list(entry, "external_data", f"{where}.", optional=True))
    )
    record = _record(entry, where)
    return ArtifactEntry(
        name, record.path, record.sha256, fmt, precision, tolerance, sets, external, entry
    )


def _golden(entry: Any, where: str) -> GoldenEntry:
    if not isinstance(entry, dict):
        raise ManifestError(where, f"is a JSON {_kind(entry)}, not an object")
    name = _str(entry, "name", f"{where}.")
    where = f"golden set {name!r}"
    sizes = {
        k: _count(v, f"{where}.sizes.{k}", low=1, high=MAX_DIM)
        for k, v in _obj(entry, "sizes", f"{where}.").items()
    }
    files = {
        kind: {
            k: _str_value(v, f"{where}.{kind}.{k}")
            for k, v in _obj(entry, kind, f"{where}.").items()
        }
        for kind in ("inputs", "outputs")
    }
    batch = None
    if entry.get("batch") is not None:
        batch = _count(entry["batch"], f"{where}.batch", low=1, high=MAX_DIM)
    hashes = {
        k: _hex(v, f"{where}.sha256.{k}")
        for k, v in _obj(entry, "sha256", f"{where}.", optional=True).items()
    }
    return GoldenEntry(name, sizes, files["inputs"], files["outputs"], batch, hashes)


def _spec(data: Any, where: str, examples: dict[str, int] | None) -> TensorSpec:
    if not isinstance(data, dict):
        raise ManifestError(where, f"is a JSON {_kind(data)}, not an object")
    name = _str(data, "name", f"{where}.")
    dtype = _choice(data, "dtype", where, DTYPES)
    shape: list[int | str | None] = []
    for i, dim in enumerate(_list(data, "shape", f"{where}.")):
        if dim is None or (isinstance(dim, str) and dim):
            shape.append(dim)
        else:
            shape.append(_count(dim, f"{where}.shape[{i}]", low=0, high=MAX_DIM))
    values = _values(data, where) if examples is not None else None
    spec = TensorSpec(name, dtype, tuple(shape), values=values)
    if examples is not None:
        known = {d: examples.get(d) for d in shape if isinstance(d, str)}
        sizes = [d if isinstance(d, int) else (known.get(d) or 1) for d in shape if d is not None]
        if math.prod(sizes) > MAX_EXAMPLE_ELEMENTS:
            raise ManifestError(
                "input_examples",
                f"make input {name!r} {math.prod(sizes):,} elements, over the "
                f"{MAX_EXAMPLE_ELEMENTS:,} edgeport allocates for an example",
            )
    return spec


def _values(data: dict[str, Any], where: str) -> Values | None:
    """An input's optional ``values``: ``{"kind": "range", "low": L, "high": H}`` or
    ``{"kind": "mask"}``, for an integer input."""
    entry = _obj(data, "values", f"{where}.", optional=True)
    if not entry:
        return None
    kind = _choice(entry, "kind", f"{where}.values", VALUE_KINDS)
    if not str(data["dtype"]).startswith(("int", "uint")):
        raise ManifestError(f"{where}.values", f"is given for a {data['dtype']} input")
    if kind == "mask":
        return Values("mask")
    low = _count(_get(entry, "low", f"{where}.values."), f"{where}.values.low", low=-INT64_MAX,
                 high=INT64_MAX)  # fmt: skip
    high = _count(_get(entry, "high", f"{where}.values."), f"{where}.values.high", low=low + 1,
                  high=INT64_MAX)  # fmt: skip
    return Values("range", low, high)


def _record(data: Any, where: str) -> FileRecord:
    if not isinstance(data, dict):
        raise ManifestError(where, f"is a JSON {_kind(data)}, not an object")
    return FileRecord(_str(data, "path", f"{where}."), _hex(data.get("sha256"), f"{where}.sha256"))


# ---- field readers ---------------------------------------------------------------------------


def _get(obj: dict[str, Any], key: str, prefix: str) -> Any:
    if key not in obj:
        raise ManifestError(f"{prefix}{key}", "is missing")
    return obj[key]


def _str(obj: dict[str, Any], key: str, prefix: str) -> str:
    return _str_value(_get(obj, key, prefix), f"{prefix}{key}")


def _str_value(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(field, f"is {_show(value)}, not a non-empty string")
    return value


def _choice(obj: dict[str, Any], key: str, where: str, allowed: tuple[str, ...]) -> str:
    value = _get(obj, key, f"{where}.")
    if value not in allowed:
        raise ManifestError(f"{where}.{key}", f"is {_show(value)}; expected one of {allowed}")
    return str(value)


def _obj(obj: dict[str, Any], key: str, prefix: str, optional: bool = False) -> dict[str, Any]:
    if optional and obj.get(key) is None:
        return {}
    value = _get(obj, key, prefix)
    if not isinstance(value, dict):
        raise ManifestError(f"{prefix}{key}", f"is a JSON {_kind(value)}, not an object")
    return value


def _list(obj: dict[str, Any], key: str, prefix: str = "", optional: bool = False) -> list[Any]:
    if optional and obj.get(key) is None:
        return []
    value = _get(obj, key, prefix)
    if not isinstance(value, list):
        raise ManifestError(f"{prefix}{key}", f"is a JSON {_kind(value)}, not a list")
    return value


def _count(value: Any, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ManifestError(field, f"is {_show(value)}; expected an integer in [{low}, {high:,}]")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ManifestError(field, f"is {_show(value)}, not a finite number")
    return float(value)


def _hex(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ManifestError(field, f"is {_show(value)}, not a sha256 (64 lowercase hex digits)")
    return value


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else "null"
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
