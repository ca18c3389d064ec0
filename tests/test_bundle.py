from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

import edgeport
from catalog import CATALOG
from conftest import REPO
from edgeport.bundle import BundleWriter, check_external_data, load_bundle, sha256_file
from edgeport.errors import CheckFailed, EdgeportError
from edgeport.inspection import summarize_onnx
from edgeport.verify import verify_bundle

Exported = Callable[[str], edgeport.Bundle]
MINIMAL = {
    "inputs": [{"name": "x", "dtype": "float32", "shape": [1]}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": [1]}],
    "artifacts": {},
}


def _copy(bundle: edgeport.Bundle, dest: Path) -> Path:
    import shutil

    shutil.copytree(bundle.root, dest)
    return dest


def test_manifest_contract(exported: Exported) -> None:
    bundle = load_bundle(exported("small_cnn").root)
    m = bundle.manifest
    assert m["schema"] == "edgeport.bundle/1"
    assert m["model"]["parameters"] == 315_146
    assert m["model"]["macs"] == 3_006_848  # 56,448 + 2,654,208 + 294,912 + 1,280
    assert len(m["model"]["state_dict_sha256"]) == 64
    assert {"python", "cpu", "isa", "packages", "providers"} <= set(m["environment"])
    assert m["environment"]["packages"]["torch"].startswith("2.")
    for entry in m["artifacts"].values():
        assert {"path", "sha256", "size_bytes", "format", "precision", "recipe", "parity"} <= set(
            entry
        )
        assert entry["tolerance"] == {"rtol": 1e-3, "atol": 1e-5}
    assert m["golden"]["sets"][0]["inputs"] == {"input": "golden/inputs/input.npy"}
    assert m["recommended"]["artifact"] == "onnx-fp32"


def test_tampered_artifact_fails_verify(exported: Exported, tmp_path: Path) -> None:
    root = _copy(exported("small_cnn"), tmp_path / "b")
    with open(root / "model.onnx", "r+b") as f:
        f.seek(-64, os.SEEK_END)
        f.write(b"\x00" * 8)
    report = verify_bundle(root, trust_code=True)
    assert not report.passed
    assert report.problems == [
        p for p in report.problems if p.startswith("artifact 'onnx-fp32': sha256 of 'model.onnx'")
    ]
    assert report.artifacts == {}  # nothing a tampered bundle holds is run
    with pytest.raises(CheckFailed, match=r"failed its integrity check: artifact 'onnx-fp32'"):
        load_bundle(root)


def test_changed_golden_output_fails_parity(exported: Exported, tmp_path: Path) -> None:
    import numpy as np

    root = _copy(exported("small_cnn"), tmp_path / "b")
    path = root / "golden/outputs/output.npy"
    np.save(path, np.load(path) + 0.5)
    report = verify_bundle(root)
    assert report.problems[0].startswith(
        "golden file: sha256 of 'golden/outputs/output.npy' is "
    ), report.problems
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["golden"]["sets"][0]["sha256"]["golden/outputs/output.npy"] = sha256_file(path)
    (root / "manifest.json").write_text(json.dumps(manifest))
    report = verify_bundle(root)
    assert any(
        "artifact 'onnx-fp32', golden set 'base': output 'output': max_abs_err 0.5" in p
        for p in report.problems
    ), report.problems


def test_truncated_onnx_is_a_clear_error(exported: Exported, tmp_path: Path) -> None:
    data = exported("small_cnn").path_of("onnx-fp32").read_bytes()
    (tmp_path / "t.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(EdgeportError, match=r"'.*t.onnx' is not a readable ONNX model"):
        summarize_onnx(tmp_path / "t.onnx")


def test_external_data_outside_the_directory_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(__import__("numpy").ones((4, 4), "float32"), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    model = helper.make_model(graph)
    onnx.save(
        model,
        str(tmp_path / "m.onnx"),
        save_as_external_data=True,
        location="m.data",
        size_threshold=0,
    )
    assert check_external_data(tmp_path / "m.onnx") == ["m.data"]
    for location in ("../secret.bin", "/etc/passwd"):
        tensor = model.graph.initializer[0]
        tensor.data_location = TensorProto.EXTERNAL
        del tensor.external_data[:]
        tensor.external_data.add(key="location", value=location)
        tensor.ClearField("raw_data")
        (tmp_path / "evil.onnx").write_bytes(model.SerializeToString())
        with pytest.raises(
            EdgeportError, match=rf"points its external data at '{location}', outside"
        ):
            check_external_data(tmp_path / "evil.onnx")


def test_writer_refuses_to_replace_a_non_bundle(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    with pytest.raises(EdgeportError, match=r"exists and is not an edgeport bundle"):
        BundleWriter(tmp_path / "docs")


def test_failed_export_leaves_existing_bundle_intact(exported: Exported, tmp_path: Path) -> None:
    root = _copy(exported("small_cnn"), tmp_path / "b")
    before = (root / "manifest.json").read_text()
    with pytest.raises(EdgeportError):
        edgeport.export(CATALOG["small_cnn"].source, ["input:1x1x9x9"], out=root)
    assert (root / "manifest.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temp dir left behind


def test_replacing_a_bundle_swaps_it_atomically(tmp_path: Path) -> None:
    with BundleWriter(tmp_path / "b") as w:
        w.commit({**MINIMAL, "note": "first"})
    with BundleWriter(tmp_path / "b") as w:
        w.commit({**MINIMAL, "note": "second"})
    assert json.loads((tmp_path / "b/manifest.json").read_text())["note"] == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


@pytest.mark.slow
def test_killed_export_leaves_no_partial_bundle(tmp_path: Path) -> None:
    out = tmp_path / "b"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgeport",
            "export",
            "torchvision:resnet18",
            "--input",
            "input:1x3x224x224",
            "--out",
            str(out),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    temp: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        temp = [p for p in tmp_path.glob(".b.tmp-*") if any(p.rglob("*.npy"))]
        if temp:
            break
        time.sleep(0.05)
    assert temp, "the export never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert temp[0].exists()  # the hidden temp dir is all that is left
    # The next write removes the stale temp dir of the dead process.
    with BundleWriter(out) as w:
        w.commit(MINIMAL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
