"""Models whose weights are over protobuf's 2 GiB limit (issue 17, outcome 4).

The slow tests export a model just over 2 GiB of weights, verify it and inspect it, each step a
CLI process whose peak resident memory (VmHWM, read in the process as it exits) is printed (run
with ``-s`` to see it), and quantize a small model through the over-the-limit path. The fast
tests take the same code paths with small models and the limits lowered, or with a sparse
external-data file that is over 2 GiB on paper and takes no disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import edgeport
import edgeport.inspection as inspection
from edgeport.errors import EdgeportError
from edgeport.exporter import ExportOptions, simplify
from edgeport.exporter import onnx as onnx_exporter
from edgeport.quantization import QuantizeOptions, quantize
from edgeport.quantization.methods import inline_external_data
from edgeport.quantization.preprocess import SYMBOLIC_OVER_LIMIT

# Not conftest's: this module is also the model source of the CLI runs, imported on its own.
REPO = Path(__file__).resolve().parents[1]
WIDTH = 16384
GIB = 2**30
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)"
)


def big_mlp() -> nn.Module:
    """Two 16384×16384 Linear layers: 2 × 1 GiB of fp32 weights plus biases, just over 2 GiB."""
    return _mlp(WIDTH)


def small_mlp() -> nn.Module:
    """The same shape of model, 256 wide (0.5 MiB of weights)."""
    return _mlp(256)


def _mlp(width: int) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(width, width, device="meta") for _ in range(2)]
    # Allocated, not initialised by nn.Linear: 2 GiB of kaiming draws would take seconds.
    model = nn.Sequential(layers[0], nn.ReLU(), layers[1]).to_empty(device="cpu")
    with torch.no_grad():
        for layer in layers:
            layer.weight.uniform_(-(width**-0.5), width**-0.5)
            layer.bias.uniform_(-(width**-0.5), width**-0.5)
    return model.eval()


# Runs the CLI and, as it exits, prints the process's peak resident memory (VmHWM, KiB). Read
# inside the process: a child's ru_maxrss also counts the parent's pages it was forked with.
_MEASURED_CLI = """
import atexit, runpy, sys

def peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print(f"peak-rss-kib {kib}", file=sys.stderr)

atexit.register(peak)
runpy.run_module("edgeport", run_name="__main__", alter_sys=True)
"""


def run_measured(*args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the `edgeport` CLI; its result and its peak resident memory in bytes."""
    result = subprocess.run(
        [sys.executable, "-c", _MEASURED_CLI, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
        timeout=1800,
    )
    lines = result.stderr.splitlines()
    kib = int(lines[-1].removeprefix("peak-rss-kib "))
    result.stderr = "\n".join(lines[:-1])
    return result, kib * 1024


def gemm_model(rows: int, cols: int) -> onnx.ModelProto:
    """``y = x @ W.T + b`` for ``x`` [1, cols], ``W`` [rows, cols] random, as ONNX (opset 18)."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((rows, cols), dtype=np.float32)
    bias = rng.standard_normal(rows, dtype=np.float32)
    node = helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cols])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, rows])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def external_entries(path: Path) -> dict[str, dict[str, str]]:
    """Tensor name → its external-data entries, as saved in the file."""
    model = onnx.load(str(path), load_external_data=False)
    return {t.name: {e.key: e.value for e in t.external_data} for t in model.graph.initializer}


def test_onnxsim_skip_reason_by_size(monkeypatch: pytest.MonkeyPatch) -> None:
    model = gemm_model(64, 256)  # 64 KiB of weights + 256 B of bias
    assert simplify.skip_reason(model) is None
    monkeypatch.setattr(simplify, "SIZE_LIMIT", 32 * 1024)
    assert simplify.skip_reason(model) == (
        "skipped: weights are 0.1 MiB, over the 0.0 MiB that onnxsim can serialise"
    )


def test_onnxsim_is_skipped_when_weights_stay_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx.save_model(gemm_model(64, 256), str(tmp_path / "m.onnx"), save_as_external_data=True)
    monkeypatch.setattr(inspection, "PROTOBUF_LIMIT", 10_000)
    model = onnx_exporter.load_onnx(tmp_path / "m.onnx")
    assert simplify.skip_reason(model) == (
        "skipped: 0.1 MiB of weights stay in external data (with them the model is over "
        "protobuf's 2 GiB message limit), and onnxsim needs the whole model in one message"
    )
    simplified, record = simplify.simplify_onnx(model, [])
    assert simplified is model
    assert record == {"applied": False, "nodes_before": 1, "reason": simplify.skip_reason(model)}


def test_load_onnx_keeps_weights_on_disk_over_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = gemm_model(64, 256)
    bias_values = numpy_helper.to_array(source.graph.initializer[1])
    path = tmp_path / "m.onnx"
    onnx.save_model(source, str(path), save_as_external_data=True, size_threshold=0)
    assert set(external_entries(path)) == {"W", "b"}
    model = onnx_exporter.load_onnx(path)
    assert not any(t.external_data for t in model.graph.initializer)  # fits: all in memory
    monkeypatch.setattr(inspection, "PROTOBUF_LIMIT", 10_000)
    model = onnx_exporter.load_onnx(path)
    weight, bias = model.graph.initializer
    assert not weight.HasField("raw_data")
    assert {e.key: e.value for e in weight.external_data}["basepath"] == str(tmp_path)
    assert onnx_exporter.weight_bytes(model) == 64 * 256 * 4 + 64 * 4
    # The bias (256 B, under GRAPH_TENSOR_BYTES) is read with the graph, as shape constants are.
    assert bias.data_location == TensorProto.DEFAULT
    np.testing.assert_array_equal(numpy_helper.to_array(bias), bias_values)


def test_save_onnx_copies_weights_left_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = gemm_model(512, 1024)  # 2 MiB of weights: aligned in the data file
    weight, bias = (numpy_helper.to_array(t) for t in source.graph.initializer)
    src_dir, out_dir = tmp_path / "scratch", tmp_path / "bundle"
    src_dir.mkdir()
    out_dir.mkdir()
    # As the legacy exporter writes them: one file per tensor, no offset or length.
    onnx.save_model(
        source,
        str(src_dir / "m.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=False,
        size_threshold=0,
    )
    legacy = onnx.load(str(src_dir / "m.onnx"), load_external_data=False)
    for tensor in legacy.graph.initializer:
        keep = [(e.key, e.value) for e in tensor.external_data if e.key == "location"]
        del tensor.external_data[:]
        for key, value in keep:
            tensor.external_data.add(key=key, value=value)
    onnx.save_model(legacy, str(src_dir / "m.onnx"))
    monkeypatch.setattr(inspection, "PROTOBUF_LIMIT", 10_000)

    model = onnx_exporter.load_onnx(src_dir / "m.onnx")
    (out_dir / "model.onnx.data").write_bytes(b"stale data from an older export")
    assert onnx_exporter.save_onnx(model, out_dir / "model.onnx") == ["model.onnx.data"]

    assert sorted(p.name for p in out_dir.iterdir()) == ["model.onnx", "model.onnx.data"]
    entries = external_entries(out_dir / "model.onnx")
    assert entries["W"] == {"location": "model.onnx.data", "offset": "0", "length": "2097152"}
    # Only tensors of ALIGN_FROM (1 MiB) or more are aligned: the 2 KiB bias follows directly.
    assert entries["b"] == {"location": "model.onnx.data", "offset": "2097152", "length": "2048"}
    assert (out_dir / "model.onnx.data").stat().st_size == 2097152 + 2048
    saved = onnx.load(str(out_dir / "model.onnx"))
    for got, want in zip(saved.graph.initializer, (weight, bias), strict=True):
        np.testing.assert_array_equal(numpy_helper.to_array(got), want)
    # ONNX Runtime reads the artifact; the proto in memory still points at its data.
    x = np.ones((1, 1024), np.float32)
    session = ort.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ weight.T + bias, rtol=1e-4)
    basepaths = {e.value for t in model.graph.initializer for e in t.external_data}
    assert str(out_dir) in basepaths


def test_external_data_is_aligned_for_large_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_exporter, "EXTERNAL_DATA_THRESHOLD", 1024)
    monkeypatch.setattr(onnx_exporter, "ALIGN_FROM", 1024)
    model = gemm_model(64, 256)
    model.graph.initializer.extend([numpy_helper.from_array(np.ones(300, np.float32), "c")])
    assert onnx_exporter.save_onnx(model, tmp_path / "model.onnx") == ["model.onnx.data"]
    entries = external_entries(tmp_path / "model.onnx")
    offsets = {name: int(e["offset"]) for name, e in entries.items() if e}
    # W (64 KiB) at 0, c (1200 B) at the next 64 KiB boundary; b (256 B) stays in the graph.
    assert offsets == {"W": 0, "c": 65536}
    assert entries["b"] == {}


def sparse_gemm(directory: Path, rows: int, cols: int) -> Path:
    """A Gemm model whose weight lives in a sparse external-data file: ``rows × cols`` floats
    on paper, no disk and no memory until read."""
    weight = TensorProto(name="W", dims=[rows, cols], data_type=TensorProto.FLOAT)
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "model.onnx.data"), ("offset", 0), ("length", rows * cols * 4)):
        weight.external_data.add(key=key, value=str(value))
    bias = numpy_helper.from_array(np.zeros(rows, np.float32), "b")
    node = helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)
    graph = helper.make_graph(
        [node],
        "sparse",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", cols])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", rows])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = directory / "model.onnx"
    onnx.save_model(model, str(path))
    with open(directory / "model.onnx.data", "wb") as f:
        f.truncate(rows * cols * 4)
    return path


@needs_proc
def test_summary_of_a_model_over_2_gib_reads_no_weights(tmp_path: Path) -> None:
    rows, cols = 16384, 32768 + 64  # 2 GiB + 4 MiB of weights, sparse on disk
    path = sparse_gemm(tmp_path, rows, cols)
    assert inspection.over_protobuf_limit(path)
    summary = inspection.summarize_onnx(path, {"batch": 2})
    assert summary["parameters"] == rows * cols + rows
    assert summary["macs"] == 2 * rows * cols
    assert summary["ops"] == {"Gemm": 1}
    assert summary["size_bytes"] == path.stat().st_size + rows * cols * 4
    # The CLI, in its own process: its peak memory is far below one copy of the weights.
    result, peak = run_measured("inspect", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parameters"] == rows * cols + rows
    assert peak < GIB // 2, f"edgeport inspect peaked at {peak / GIB:.2f} GiB"


def test_macs_of_a_fully_loaded_model_come_from_shapes() -> None:
    model = gemm_model(64, 256)
    stripped = inspection.shapes_only(model)
    weight = stripped.graph.initializer[0]
    assert (weight.name, list(weight.dims), weight.HasField("raw_data")) == ("W", [64, 256], False)
    assert inspection.count_macs(model, {}) == 64 * 256
    assert model.graph.initializer[0].HasField("raw_data")  # the caller's model is untouched


def test_one_file_over_2_gib_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as f:
        f.truncate(2**31 + 4096)
    with pytest.raises(EdgeportError, match=r"huge.onnx' is 2.00 GiB in one file, over the 2 GiB"):
        inspection.summarize_onnx(path)


def test_inline_external_data_refuses_an_int8_model_over_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx.save_model(gemm_model(64, 256), str(tmp_path / "q.onnx"), save_as_external_data=True)
    monkeypatch.setattr(inspection, "PROTOBUF_LIMIT", 10_000)
    with pytest.raises(EdgeportError, match=r"the quantized model is 0.00 GiB, over the 2 GiB"):
        inline_external_data(tmp_path / "q.onnx")
    monkeypatch.setattr(inspection, "PROTOBUF_LIMIT", 2**31 - 1)
    inline_external_data(tmp_path / "q.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.onnx"]
    assert external_entries(tmp_path / "q.onnx") == {"W": {}, "b": {}}


@pytest.mark.slow
def test_quantize_a_model_over_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fp32 model counts as over the limit (0.5 MiB of weights, the limit lowered to
    0.3 MiB), its int8 model as under it: quantize takes the external-data path."""
    options = ExportOptions(formats=("onnx",))
    bundle = edgeport.export(small_mlp(), ["x:1x256"], out=tmp_path / "b", options=options)
    monkeypatch.setattr(inspection, "PROTOBUF_LIMIT", 300 * 1024)
    bundle = quantize(bundle.root, QuantizeOptions(mode="dynamic"))
    entry = bundle.artifact("onnx-int8-dynamic")
    preprocess = entry["recipe"]["preprocess"]
    assert preprocess["skipped"] == [f"full: {SYMBOLIC_OVER_LIMIT}"]
    assert preprocess["variant"] == "no-symbolic-shape"
    assert preprocess["measured"].keys() == {"preprocessed", "raw"}
    assert entry.get("external_data", []) == []
    assert sorted(p.name for p in bundle.root.iterdir() if p.is_file()) == [
        "manifest.json",
        "model.int8-dynamic.onnx",
        "model.onnx",
    ]
    assert entry["structure"]["integer_ops"] == {"MatMulInteger": 2}
    assert entry["evaluation"]["cosine"] > 0.999


@pytest.mark.slow
@needs_proc
def test_model_over_2_gib_exports_verifies_and_inspects(tmp_path: Path) -> None:
    weights = 2 * WIDTH * WIDTH * 4 + 2 * WIDTH * 4  # 2 GiB + 128 KiB
    out = tmp_path / "big"
    peaks: dict[str, int] = {}
    try:
        export, peaks["export"] = run_measured(
            "export",
            f"{__file__}:big_mlp",
            "--input",
            f"x:1x{WIDTH}",
            "--format",
            "onnx",
            "--out",
            str(out),
            "--json",
        )
        assert export.returncode == 0, export.stderr
        manifest = json.loads(export.stdout)
        verify, peaks["verify"] = run_measured("verify", str(out), "--json")
        inspect_dir, peaks["inspect bundle"] = run_measured("inspect", str(out), "--json")
        inspect_file, peaks["inspect model.onnx"] = run_measured(
            "inspect", str(out / "model.onnx"), "--json"
        )
        data = out / "model.onnx.data"
        data_size = data.stat().st_size
    finally:
        print()
        for step, peak in peaks.items():
            print(
                f"peak RSS of edgeport {step}: {peak / GIB:.2f} GiB ({peak / weights:.2f}× weights)"
            )
        shutil.rmtree(out, ignore_errors=True)

    entry = manifest["artifacts"]["onnx-fp32"]
    (record,) = entry["external_data"]
    assert (record["path"], record["size_bytes"]) == ("model.onnx.data", data_size)
    assert len(record["sha256"]) == 64  # and verify checked it against the file
    assert weights <= data_size < weights + 2**20
    assert entry["size_bytes"] < 64 * 1024  # the graph alone
    assert entry["recipe"]["simplify"]["reason"] == (
        "skipped: weights are 2048.1 MiB, over the 2048.0 MiB that onnxsim can serialise"
    )
    assert manifest["model"]["parameters"] == 2 * WIDTH * WIDTH + 2 * WIDTH
    assert manifest["model"]["macs"] == 2 * WIDTH * WIDTH

    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["passed"] is True
    assert report["artifacts"]["onnx-fp32"]["base"]["output"]["passed"] is True

    assert inspect_dir.returncode == 0, inspect_dir.stderr
    artifact = json.loads(inspect_dir.stdout)["artifacts"]["onnx-fp32"]
    assert artifact["ops"] == {"Gemm": 2, "Relu": 1}
    assert artifact["size_bytes"] == entry["size_bytes"] + data_size
    assert inspect_file.returncode == 0, inspect_file.stderr
    summary = json.loads(inspect_file.stdout)
    assert (summary["parameters"], summary["macs"]) == (2 * WIDTH * WIDTH + 2 * WIDTH, 2 * WIDTH**2)

    # A generous bound: no step holds four copies of the weights.
    assert all(peak < 4 * weights for peak in peaks.values()), peaks
    assert peaks["inspect bundle"] < GIB, peaks
    assert peaks["inspect model.onnx"] < GIB, peaks
