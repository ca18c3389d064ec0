"""Property-based fuzzing (Hypothesis) of everything that reads untrusted bytes in Python.

The property everywhere: any input ends in a result or an `EdgeportError` (one clear message),
never another exception, a crash, or an allocation the input merely asked for. ``make test``
runs a few hundred examples per property; ``make fuzz-py`` runs many more
(``EDGEPORT_FUZZ_EXAMPLES``) and prints Hypothesis's statistics (examples run, time).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeport._npy import load_npy, load_npz
from edgeport.bundle import resolve_inside
from edgeport.data import read_arrays
from edgeport.errors import EdgeportError, IntegrityError
from edgeport.manifest import parse_manifest
from edgeport.spec import TensorSpec
from edgeport.verify import verify_bundle

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning"),
    pytest.mark.filterwarnings("ignore:invalid escape sequence"),  # fuzzed .npy headers
]

EXAMPLES = int(os.environ.get("EDGEPORT_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


# ---- a tiny real bundle, made with onnx + numpy only ------------------------------------------


def _tiny_bundle(root: Path) -> dict[str, Any]:
    import onnx
    from onnx import TensorProto, helper

    root.mkdir(parents=True)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, root / "model.onnx")
    (root / "golden").mkdir()
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    np.save(root / "golden/x.npy", x)
    np.save(root / "golden/y.npy", np.maximum(x, 0))

    def sha(rel: str) -> str:
        return hashlib.sha256((root / rel).read_bytes()).hexdigest()

    manifest = {
        "schema": "edgeport.bundle/1",
        "model": {"source": "torchvision:none"},
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}],
        "input_examples": {"batch": 2},
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 4]}],
        "artifacts": {
            "onnx-fp32": {
                "path": "model.onnx",
                "sha256": sha("model.onnx"),
                "format": "onnx",
                "precision": "fp32",
                "tolerance": {"rtol": 1e-3, "atol": 1e-5},
            }
        },
        "golden": {
            "sets": [
                {
                    "name": "base",
                    "sizes": {"batch": 2},
                    "batch": 1,
                    "inputs": {"x": "golden/x.npy"},
                    "outputs": {"y": "golden/y.npy"},
                    "sha256": {r: sha(r) for r in ("golden/x.npy", "golden/y.npy")},
                }
            ]
        },
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("fuzz") / "b"
    return root, _tiny_bundle(root)


def test_the_tiny_bundle_verifies(tiny: tuple[Path, dict[str, Any]]) -> None:
    report = verify_bundle(tiny[0])
    assert report.passed, report.problems
    assert report.artifacts["onnx-fp32"]["base"]["y"]["metrics"]["max_abs_err"] == 0.0


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


@FUZZ
@given(data=st.data(), value=JSON, delete=st.booleans())
def test_mutated_manifest_is_parsed_or_refused(
    tiny: tuple[Path, dict[str, Any]], data: st.DataObject, value: Any, delete: bool
) -> None:
    _, manifest = tiny
    path = data.draw(st.sampled_from(_paths(manifest)))
    doc = _mutate(manifest, path, value, delete)
    try:
        parsed = parse_manifest(doc)
    except EdgeportError:
        return
    assert parsed.inputs
    assert parsed.outputs
    for entry in parsed.artifacts.values():
        assert entry.format in ("onnx", "torchscript")
        assert len(entry.sha256) == 64


@FUZZ
@given(doc=JSON)
def test_any_json_is_parsed_or_refused(doc: Any) -> None:
    try:
        parse_manifest(doc)
    except EdgeportError:
        return


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 20))
@given(data=st.data(), value=JSON, delete=st.booleans())
def test_verify_survives_a_mutated_manifest(
    tiny: tuple[Path, dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
    value: Any,
    delete: bool,
) -> None:
    root, manifest = tiny
    work = tmp_path_factory.mktemp("m") / "b"
    import shutil

    shutil.copytree(root, work)
    path = data.draw(st.sampled_from(_paths(manifest)))
    (work / "manifest.json").write_text(json.dumps(_mutate(manifest, path, value, delete)))
    try:
        report = verify_bundle(work)
    except EdgeportError:
        return
    if report.passed:  # a mutation that still verifies must leave the checked data intact
        assert report.artifacts


# ---- .npy / .npz -----------------------------------------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


SMALL_ARRAYS = st.builds(
    lambda shape, dtype: np.zeros(shape, dtype),
    st.lists(st.integers(0, 5), max_size=3).map(tuple),
    st.sampled_from(["<f4", "<i8", "|u1", "|b1", ">f8", "<f2"]),
)


@FUZZ
@given(
    array=SMALL_ARRAYS, cut=st.integers(0, 200), junk=st.binary(max_size=40), at=st.integers(0, 200)
)
def test_npy_reader_never_trusts_the_header(
    tmp_path_factory: pytest.TempPathFactory, array: np.ndarray, cut: int, junk: bytes, at: int
) -> None:
    data = bytearray(_npy(array))
    if cut % 3 == 0:  # truncate
        del data[len(data) - min(cut, len(data)) :]
    elif cut % 3 == 1:  # insert junk, possibly into the header
        data[at:at] = junk
    path = tmp_path_factory.mktemp("npy") / "a.npy"
    path.write_bytes(bytes(data))
    try:
        got = load_npy(path, "a.npy", max_bytes=1 << 20)
    except EdgeportError:
        return
    assert got.nbytes <= 1 << 20
    assert got.nbytes <= len(data)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_npy_reader_on_raw_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("raw") / "a.npy"
    path.write_bytes(b"\x93NUMPY" + raw if raw[:1] == b"\x01" else raw)
    try:
        got = load_npy(path, "a.npy", max_bytes=1 << 16)
    except EdgeportError:
        return
    assert got.nbytes <= len(raw)


@FUZZ
@given(
    members=st.dictionaries(st.sampled_from(["x", "labels", "y"]), SMALL_ARRAYS, max_size=3),
    corrupt=st.integers(0, 400),
    rows=st.none() | st.integers(0, 4),
)
def test_npz_reader_checks_before_it_reads(
    tmp_path_factory: pytest.TempPathFactory,
    members: dict[str, np.ndarray],
    corrupt: int,
    rows: int | None,
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in members.items():
            archive.writestr(f"{name}.npy", _npy(array))
    data = bytearray(buffer.getvalue())
    if corrupt < len(data) and corrupt % 2:
        data[corrupt] ^= 0xFF
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    path.write_bytes(bytes(data))
    spec = TensorSpec("x", "float32", ("batch", 2))
    try:
        arrays, labels = read_arrays(path, [spec], rows)
    except EdgeportError:
        return
    assert arrays["x"].ndim == 2
    assert arrays["x"].shape[1] == 2
    assert rows is None or len(arrays["x"]) <= rows
    assert labels is None or labels.ndim == 1


@FUZZ
@given(names=st.lists(st.text("abxy.npz/_", max_size=6), max_size=3))
def test_npz_of_random_member_names(
    tmp_path_factory: pytest.TempPathFactory, names: list[str]
) -> None:
    path = tmp_path_factory.mktemp("names") / "d.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name or "empty", b"\x93NUMPY junk")
    try:
        load_npz(path, "d.npz", ["x"])
    except EdgeportError:
        return


# ---- the path rule -------------------------------------------------------------------------


PARTS = st.sampled_from(["a", "b", "..", ".", "", "link", "out", "/", "golden", "x.npy"])


@FUZZ
@given(parts=st.lists(PARTS, min_size=1, max_size=5), absolute=st.booleans())
def test_resolve_inside_never_leaves_the_bundle(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str], absolute: bool
) -> None:
    base = tmp_path_factory.mktemp("paths")
    root = base / "bundle"
    (root / "a").mkdir(parents=True)
    (base / "out").mkdir()
    os.symlink(base / "out", root / "link")
    os.symlink(base / "out", root / "a" / "link")
    rel = ("/" if absolute else "") + "/".join(parts)
    try:
        path = resolve_inside(root, rel, "fuzzed path")
    except IntegrityError as exc:
        message = str(exc)
        assert "outside the bundle" in message, message
        return
    assert path.resolve().is_relative_to(root.resolve())
    assert ".." not in Path(rel).parts
