from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import edgeport
from catalog import CATALOG, TwoInputsDictOutput
from edgeport.errors import CheckFailed, EdgeportError
from edgeport.exporter import ExportOptions
from edgeport.exporter import onnx as onnx_exporter
from edgeport.sources import load_model
from edgeport.verify import verify_bundle

Exported = Callable[[str], edgeport.Bundle]


@pytest.mark.slow
def test_degenerate_reference_is_flagged(exported: Exported) -> None:
    entry = exported("mobilenet_v3_small").artifact("onnx-fp32")
    assert entry["parity"]["base"]["output"]["metrics"]["ref_max_abs"] < 1e-6
    assert entry["warnings"][0].startswith(
        "golden set 'base': output 'output': the reference is degenerate (max |value| "
    )


@pytest.mark.parametrize("name", list(CATALOG))
def test_catalog_model_exports_and_verifies(name: str, exported: Exported) -> None:
    bundle = exported(name)
    entry = CATALOG[name]
    assert set(bundle.artifacts) == {"onnx-fp32", "torchscript-fp32"}
    assert [o["name"] for o in bundle.manifest["outputs"]] == list(entry.outputs)
    for artifact in bundle.artifacts.values():
        assert artifact["passed"] is True
        for per_output in artifact["parity"]["base"].values():
            metrics = per_output["metrics"]
            assert metrics["max_abs_err"] < 1e-3
            if metrics["ref_max_abs"] > 1e-3:
                assert metrics["cosine"] > 0.99999
            else:  # random-init mobilenet_v3_small: logits ~1e-9, the check is flagged
                assert any("the reference is degenerate" in w for w in artifact["warnings"])
    report = verify_bundle(bundle.root)
    assert report.passed, report.problems
    symbolic = any(isinstance(d, str) for i in bundle.manifest["inputs"] for d in i["shape"])
    floats = any(i["dtype"] == "float32" for i in bundle.manifest["inputs"])
    expected_sets = ["base"] + ["negated"] * floats + ["resized"] * symbolic
    assert [s["name"] for s in bundle.manifest["golden"]["sets"]] == expected_sets


def test_resnet18_dynamic_batch_runs_at_other_sizes(exported: Exported) -> None:
    bundle = exported("resnet18")
    onnx_entry = bundle.artifact("onnx-fp32")
    assert bundle.manifest["inputs"][0]["shape"] == ["batch", 3, 224, 224]
    assert bundle.manifest["outputs"][0]["shape"] == ["batch", 1000]
    sizes = {s["name"]: s["sizes"] for s in bundle.manifest["golden"]["sets"]}
    assert (sizes["base"], sizes["resized"]) == ({"batch": 1}, {"batch": 2})
    assert onnx_entry["recipe"]["exporter"] == "dynamo"
    assert onnx_entry["recipe"]["simplify"]["applied"] is True
    assert bundle.manifest["model"]["macs"] == 1_814_073_344  # torchvision's 1.81 GMACs
    # The ONNX artifact at batch 3 and 7 against eager (model rebuilt from its source).
    model = load_model("torchvision:resnet18").module
    session = ort.InferenceSession(str(bundle.path_of("onnx-fp32")))
    for batch in (3, 7):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224), dtype=np.float32)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        (got,) = session.run(None, {"input": x})
        assert got.shape == (batch, 1000)
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-5)
    report = verify_bundle(bundle.root, eager_sizes=[{"batch": 3}, {"batch": 7}])
    assert report.passed, report.problems
    assert report.artifacts["onnx-fp32"]["eager@batch=7"]["output"]["passed"] is True


def test_dict_output_names_match_values(exported: Exported) -> None:
    bundle = exported("two_inputs_dict_output")
    # Inputs were declared meta, image; the forward signature orders them image, meta.
    assert [i["name"] for i in bundle.manifest["inputs"]] == ["image", "meta"]
    model = load_model(CATALOG["two_inputs_dict_output"].source).module
    assert type(model).__name__ == TwoInputsDictOutput.__name__
    (gset,) = [g for g in bundle.golden_sets() if g.name == "base"]
    with torch.inference_mode():
        eager = model(*(torch.from_numpy(gset.inputs[n]) for n in ("image", "meta")))
    session = ort.InferenceSession(str(bundle.path_of("onnx-fp32")))
    assert [o.name for o in session.get_outputs()] == ["scores", "boxes"]
    got = dict(zip(["scores", "boxes"], session.run(None, gset.inputs), strict=True))
    for key in ("scores", "boxes"):
        np.testing.assert_allclose(got[key], eager[key].numpy(), rtol=1e-4, atol=1e-6)
    assert eager["boxes"].min() >= 0  # sigmoid head: the names did not swap
    assert got["boxes"].min() >= 0


def test_transformer_keeps_batch_and_sequence_dynamic(exported: Exported) -> None:
    bundle = exported("transformer_encoder")
    model = onnx.load(str(bundle.path_of("onnx-fp32")))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "seq"]
    session = ort.InferenceSession(str(bundle.path_of("onnx-fp32")))
    tokens = np.random.default_rng(0).integers(0, 10, size=(3, 29))
    (out,) = session.run(None, {"tokens": tokens})
    assert out.shape == (3, 5)


def test_data_dependent_branch_is_caught(tmp_path: Path) -> None:
    source = CATALOG["small_cnn"].source.replace(":cnn", ":data_dependent")
    with pytest.raises(CheckFailed) as info:
        edgeport.export(source, ["x:batch=2x8"], out=tmp_path / "b")
    message = str(info.value)
    assert "failed parity against eager PyTorch on golden set" in message
    assert "Converting a tensor to a Python boolean" in message
    assert "catalog.py:" in message
    assert not (tmp_path / "b").exists()


def test_data_dependent_branch_exports_with_script(tmp_path: Path) -> None:
    source = CATALOG["small_cnn"].source.replace(":cnn", ":data_dependent")
    options = ExportOptions(formats=("torchscript",), script=True)
    bundle = edgeport.export(source, ["x:batch=2x8"], out=tmp_path / "b", options=options)
    entry = bundle.artifact("torchscript-fp32")
    assert entry["recipe"]["method"] == "script"
    assert entry["parity"]["negated"]["output"]["passed"] is True


def test_legacy_exporter_on_request(tmp_path: Path) -> None:
    entry = CATALOG["small_cnn"]
    options = ExportOptions(formats=("onnx",), exporter="legacy", opset=17)
    bundle = edgeport.export(entry.source, list(entry.inputs), out=tmp_path / "b", options=options)
    artifact = bundle.artifact("onnx-fp32")
    assert artifact["recipe"]["exporter"] == "legacy"
    assert onnx.load(str(bundle.path_of("onnx-fp32"))).opset_import[0].version == 17


def test_large_model_uses_external_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_exporter, "EXTERNAL_DATA_THRESHOLD", 1024)
    entry = CATALOG["small_cnn"]
    options = ExportOptions(formats=("onnx",))
    bundle = edgeport.export(entry.source, list(entry.inputs), out=tmp_path / "b", options=options)
    artifact = bundle.artifact("onnx-fp32")
    assert [d["path"] for d in artifact["external_data"]] == ["model.onnx.data"]
    assert artifact["external_data"][0]["size_bytes"] > 1_000_000
    assert artifact["size_bytes"] < 100_000
    assert verify_bundle(bundle.root).passed
    # Re-exporting over it never appends to the old data file.
    bundle = edgeport.export(entry.source, list(entry.inputs), out=tmp_path / "b", options=options)
    assert (
        bundle.artifact("onnx-fp32")["external_data"][0]["size_bytes"]
        == (artifact["external_data"][0]["size_bytes"])
    )


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(EdgeportError, match=r"unknown export format.*Available: onnx, torchscript"):
        ExportOptions(formats=("tflite",))


def test_model_that_cannot_take_the_shape_names_the_layer(tmp_path: Path) -> None:
    with pytest.raises(EdgeportError) as info:
        edgeport.export(CATALOG["small_cnn"].source, ["input:1x1x20x20"], out=tmp_path / "b")
    message = str(info.value)
    assert "the model cannot take the inputs input [1, 1, 20, 20] float32" in message
    assert "layer '6' (Linear) failed on input shapes [1, 4096]" in message
    assert "mat1 and mat2 shapes cannot be multiplied" in message


def test_dynamo_failure_falls_back_to_legacy_with_reason(tmp_path: Path) -> None:
    source = CATALOG["small_cnn"].source.replace(":cnn", ":always_true_branch")
    bundle = edgeport.export(source, ["x:batch=2x8"], out=tmp_path / "b")
    recipe = bundle.artifact("onnx-fp32")["recipe"]
    assert recipe["exporter"] == "legacy"
    assert recipe["fallback_reason"].startswith(
        "dynamo exporter failed: TorchExportError: GuardOnDataDependentSymNode: "
    )
    assert "catalog.py" in recipe["fallback_reason"]
    # The tracer's warning rides along in the manifest even though parity passed.
    assert any(
        "Converting a tensor to a Python boolean" in w
        for w in bundle.artifact("torchscript-fp32")["warnings"]
    )
    assert verify_bundle(bundle.root).passed


def test_torchscript_source_exports_via_legacy(tmp_path: Path) -> None:
    scripted = torch.jit.script(load_model("edgeport.demo:small_cnn").module)
    torch.jit.save(scripted, str(tmp_path / "cnn.ts"))
    bundle = edgeport.export(str(tmp_path / "cnn.ts"), ["x:batch=1x1x16x16"], out=tmp_path / "b")
    assert bundle.artifact("torchscript-fp32")["recipe"]["method"] == "already-torchscript"
    onnx_recipe = bundle.artifact("onnx-fp32")["recipe"]
    assert onnx_recipe["exporter"] == "legacy"
    assert onnx_recipe["fallback_reason"] == (
        "the source is TorchScript, which only the legacy exporter reads"
    )


def test_simplify_skipped_over_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeport.exporter import simplify

    monkeypatch.setattr(simplify, "SIZE_LIMIT", 1000)
    entry = CATALOG["small_cnn"]
    options = ExportOptions(formats=("onnx",))
    bundle = edgeport.export(entry.source, list(entry.inputs), out=tmp_path / "b", options=options)
    record = bundle.artifact("onnx-fp32")["recipe"]["simplify"]
    assert record["applied"] is False
    assert record["reason"] == (
        "skipped: weights are 1.2 MiB, over the 0.0 MiB that onnxsim can serialise"
    )
