"""ONNX export paths: when one fails at run time or on parity, the next is tried, and the manifest
records which passed and why the others did not (issue 17)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import edgeport
from catalog import CATALOG
from conftest import run_cli
from edgeport.errors import CheckFailed, EdgeportError
from edgeport.exporter import ExportOptions
from edgeport.exporter.onnx import ExportPath, baked_dims, export_paths
from edgeport.sources import load_model
from edgeport.spec import parse_input

Exported = Callable[[str], edgeport.Bundle]

HERE = CATALOG["small_cnn"].source.rsplit(":", 1)[0]
LSTM = f"{HERE}:lstm_tagger"
NUMPY_LENGTH = f"{HERE}:numpy_length"


@pytest.fixture(scope="module")
def lstm_bundle(tmp_path_factory: pytest.TempPathFactory) -> edgeport.Bundle:
    out = tmp_path_factory.mktemp("lstm") / "b"
    options = ExportOptions(formats=("onnx",))
    return edgeport.export(LSTM, ["ids:batch=2xseq=20:int64"], out=out, options=options)


def test_lstm_tagger_falls_back_to_the_unsimplified_dynamo_graph(
    lstm_bundle: edgeport.Bundle,
) -> None:
    # torch 2.14's dynamo exporter annotates the LSTM output as [batch, 20, 32]; onnxsim trusts
    # that and folds the head's reshape to [-1, 20, 10], which ONNX Runtime refuses at seq 21.
    recipe = lstm_bundle.artifact("onnx-fp32")["recipe"]
    failed, passed = recipe["attempts"]
    assert (failed["exporter"], failed["simplified"], failed["stage"]) == (
        "dynamo",
        True,
        "onnxruntime",
    )
    assert failed["outcome"].startswith("onnx-fp32 failed at run time on golden set 'resized': ")
    assert "running Reshape node" in failed["outcome"]
    assert "requested shape:{-1,20,10}" in failed["outcome"]
    assert "onnxruntime_src" not in failed["outcome"]  # ORT's C++ source location is dropped
    (baked,) = failed["baked_dims"]
    assert re.fullmatch(
        r"node '\S+' \(Reshape\) fixes dim seq=20 \(shape constant \[-1, 20, 10\]\)", baked
    )
    assert passed == {"exporter": "dynamo", "simplified": False, "outcome": "passed"}
    assert recipe["exporter"] == "dynamo"
    assert "fallback_reason" not in recipe
    assert recipe["simplify"]["applied"] is False
    assert recipe["simplify"]["reason"] == (
        f"reverted: the simplified graph failed: {failed['outcome']}"
    )


def test_lstm_tagger_matches_eager_at_batch_3_seq_7(lstm_bundle: edgeport.Bundle) -> None:
    assert lstm_bundle.manifest["inputs"][0]["shape"] == ["batch", "seq"]
    assert lstm_bundle.manifest["outputs"][0]["shape"] == ["batch", "seq", 10]
    assert edgeport.verify_bundle(lstm_bundle.root).passed
    ids = np.random.default_rng(3).integers(0, 100, size=(3, 7), dtype=np.int64)
    model = load_model(LSTM).module  # seeded: the weights the bundle was exported from
    with torch.inference_mode():
        reference = model(torch.from_numpy(ids)).numpy()
    got = edgeport.Session(lstm_bundle.root).run({"ids": ids})["output"]
    assert got.shape == (3, 7, 10)
    np.testing.assert_allclose(got, reference, rtol=1e-3, atol=1e-5)


def test_lstm_tagger_verifies_at_other_sizes_from_the_cli(lstm_bundle: edgeport.Bundle) -> None:
    result = run_cli(
        "verify", str(lstm_bundle.root), "--sizes", "batch=3,seq=7", "--trust-code", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True
    check = report["artifacts"]["onnx-fp32"]["eager@batch=3,seq=7"]["output"]
    assert check["passed"] is True
    assert check["metrics"]["max_abs_err"] < 1e-5


@pytest.mark.parametrize("name", ["small_cnn", "transformer_encoder"])
def test_first_path_passing_is_the_only_attempt(name: str, exported: Exported) -> None:
    recipe = exported(name).artifact("onnx-fp32")["recipe"]
    assert recipe["attempts"] == [{"exporter": "dynamo", "simplified": True, "outcome": "passed"}]
    assert recipe["simplify"]["applied"] is True
    assert "fallback_reason" not in recipe


def test_no_path_passing_names_each_attempt_the_guard_and_the_node(tmp_path: Path) -> None:
    with pytest.raises(EdgeportError) as info:
        edgeport.export(NUMPY_LENGTH, ["x:batch=2xseq=20x8"], out=tmp_path / "b")
    assert type(info.value) is EdgeportError  # nothing ran and differed: exit 2, not 1
    message = str(info.value)
    assert message.startswith("no ONNX export path passed (3 tried):\n")
    assert "  1. dynamo: the exporter failed: TorchExportError: ValueError: " in message
    assert "tracing inferred a static shape of 20 for dimension inputs[0].shape[1]" in message
    assert re.search(
        r"  - dynamo guard pins x axis 1 \(seq=20\) at seq = int\(np\.int64\(x\.shape\[1\]\)\) "
        r"# \S*catalog\.py:\d+ in forward",
        message,
    )
    for path in ("2. legacy, simplified", "3. legacy, not simplified"):
        assert f"  {path}: onnx-fp32 failed at run time on golden set 'resized': " in message
    assert "requested shape:{-1,20,4}" in message
    assert "  - node '/model/Reshape' (Reshape) fixes dim seq=20 (shape constant [-1, 20, 4])" in (
        message
    )
    assert "Converting a tensor to a NumPy array might cause the trace to be incorrect." in message
    assert "Fix: make the named source lines export-friendly" in message
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("exporter", "simplify", "tried"),
    [
        ("legacy", True, ["legacy, simplified", "legacy, not simplified"]),
        ("legacy", False, ["legacy, not simplified"]),
        ("dynamo", True, ["dynamo"]),
    ],
)
def test_restricted_exporter_tries_only_its_paths(
    exporter: str, simplify: bool, tried: list[str], tmp_path: Path
) -> None:
    options = ExportOptions(formats=("onnx",), exporter=exporter, simplify=simplify)
    with pytest.raises(EdgeportError) as info:
        edgeport.export(NUMPY_LENGTH, ["x:batch=2xseq=20x8"], out=tmp_path / "b", options=options)
    message = str(info.value)
    assert message.startswith(f"no ONNX export path passed ({len(tried)} tried):\n")
    assert re.findall(r"^  \d\. ([a-z, ]+):", message, flags=re.MULTILINE) == tried
    assert message.endswith("--exporter auto tries both exporters.")


def test_data_dependent_branch_fails_every_path_with_exit_1(tmp_path: Path) -> None:
    source = f"{HERE}:data_dependent"
    options = ExportOptions(formats=("onnx",))
    with pytest.raises(CheckFailed) as info:
        edgeport.export(source, ["x:batch=2x8"], out=tmp_path / "b", options=options)
    message = str(info.value)
    assert "  1. dynamo: the exporter failed: TorchExportError: GuardOnDataDependentSymNode: " in (
        message
    )
    assert "  2. legacy, simplified: artifact 'onnx-fp32' failed parity against eager" in message
    assert re.search(r"  - \S*catalog\.py:\d+: Converting a tensor to a Python boolean", message)


@pytest.mark.parametrize(
    ("exporter", "simplify", "torchscript", "expected"),
    [
        (
            "auto",
            True,
            False,
            [("dynamo", True), ("dynamo", False), ("legacy", True), ("legacy", False)],
        ),
        ("auto", False, False, [("dynamo", False), ("legacy", False)]),
        ("dynamo", True, False, [("dynamo", True), ("dynamo", False)]),
        ("legacy", False, False, [("legacy", False)]),
        ("auto", True, True, [("legacy", True), ("legacy", False)]),
    ],
)
def test_export_paths_order(
    exporter: str, simplify: bool, torchscript: bool, expected: list[tuple[str, bool]]
) -> None:
    paths = export_paths(exporter, simplify=simplify, torchscript=torchscript)
    assert paths == [ExportPath(e, s) for e, s in expected]


def test_baked_dims_names_shape_constants_holding_an_example_size() -> None:
    spec = parse_input("ids:batch=2xseq=20:int64")
    one = parse_input("x:batch=1x4")
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [-1, 20, 10])
    ones = helper.make_tensor("ones", TensorProto.INT64, [2], [1, 4])
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["x", "shape"], ["y"], name="Reshape_2"),
            helper.make_node("Expand", ["y", "ones"], ["z"], name="Expand_0"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, 10])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, None, 10])],
        [shape, ones],
    )
    model = helper.make_model(graph)
    onnx.checker.check_model(model)
    assert baked_dims(model, [spec]) == [
        "node 'Reshape_2' (Reshape) fixes dim seq=20 (shape constant [-1, 20, 10])"
    ]
    assert baked_dims(model, [one]) == []  # size 1 is in every other shape constant
