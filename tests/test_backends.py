"""The backend registry (one class per artifact format) and `Session.for_file`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx.external_data_helper import convert_model_to_external_data
from torch import nn

import edgeport
from edgeport.errors import CodeNotTrusted, EdgeportError, InternalError
from edgeport.manifest import CODE_FORMATS, FORMATS
from edgeport.runtime import BACKENDS, Backend, Session, backend_class
from edgeport.runtime.backends import OrtBackend, register_backend
from edgeport.spec import TensorSpec

Exported = Callable[[str], edgeport.Bundle]
CODE_MARKER = "EDGEPORT-TS-LOADED"


# ---- the registry ----------------------------------------------------------------------------


def test_the_registry_holds_every_format_a_manifest_records() -> None:
    assert list(BACKENDS) == ["onnx", "torchscript"]
    assert set(BACKENDS) == set(FORMATS)
    assert {fmt for fmt, cls in BACKENDS.items() if cls.runs_code} == CODE_FORMATS


@pytest.mark.parametrize("fmt", list(BACKENDS))
def test_each_backend_is_registered_under_its_format(fmt: str) -> None:
    cls = backend_class(fmt)
    assert issubclass(cls, Backend)
    assert cls.format == fmt


def test_an_unknown_format_is_one_error_naming_the_available_ones(tmp_path: Path) -> None:
    message = (
        r"no backend runs artifact format 'pte'. Available: onnx, torchscript. "
        r"Fix: export the model to one of these formats"
    )
    with pytest.raises(EdgeportError, match=message):
        backend_class("pte")
    (tmp_path / "model.pte").write_bytes(b"not opened")
    with pytest.raises(EdgeportError, match=message):
        Session.for_file(tmp_path / "model.pte", "pte", [TensorSpec("x")], [TensorSpec("y")])


def test_a_format_registered_twice_is_an_internal_error() -> None:
    class Again(OrtBackend):
        pass

    with pytest.raises(InternalError, match=r"artifact format 'onnx' has two backends"):
        register_backend(Again)
    assert BACKENDS["onnx"] is OrtBackend


# ---- Session.for_file: TorchScript -----------------------------------------------------------


class _Marked(nn.Module):
    """Prints a marker when torch.jit.load restores it: loading the file runs its code."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = 2.0

    @torch.jit.export
    def __getstate__(self) -> tuple[float, bool]:
        return (self.scale, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[float, bool]) -> None:
        print("EDGEPORT-TS-LOADED")
        self.scale = state[0]
        self.training = state[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) * self.scale


def test_for_file_refuses_torchscript_without_trust_before_loading_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "marked.ts"
    torch.jit.script(_Marked()).save(str(path))
    specs = [TensorSpec("x", "float32", ("batch", 5))], [TensorSpec("y", "float32", ("batch", 5))]
    with pytest.raises(
        CodeNotTrusted,
        match=r"opening torchscript artifact 'marked.ts' \(marked.ts\) would run code from the "
        r"bundle, and a bundle is data. Fix: pass --trust-code",
    ):
        Session.for_file(path, "torchscript", *specs)
    assert CODE_MARKER not in capfd.readouterr().out
    # Not even a file torch cannot read gets as far as a load attempt.
    (tmp_path / "garbage.ts").write_bytes(b"\x00 not an archive")
    with pytest.raises(CodeNotTrusted):
        Session.for_file(tmp_path / "garbage.ts", "torchscript", *specs)

    session = Session.for_file(path, "torchscript", *specs, trust_code=True)
    assert CODE_MARKER in capfd.readouterr().out  # positive control: the load ran the code
    x = np.random.default_rng(0).standard_normal((3, 5), dtype=np.float32)
    out = session.run({"x": x})
    assert (session.artifact, session.provider, out.provider) == ("marked.ts", "cpu", "cpu")
    np.testing.assert_allclose(out["y"], np.tanh(x) * 2.0, rtol=1e-6, atol=1e-6)


def test_for_file_torchscript_matches_golden_and_validates_like_a_bundle(
    exported: Exported,
) -> None:
    bundle = exported("small_cnn")
    session = Session.for_file(
        bundle.path_of("torchscript-fp32"),
        "torchscript",
        bundle.inputs,
        bundle.outputs,
        trust_code=True,
        name="torchscript-fp32",
    )
    gset = bundle.golden_sets()[0]
    np.testing.assert_array_equal(session.run(gset.inputs)["output"], gset.outputs["output"])
    with pytest.raises(EdgeportError, match=r"input 'input' has dtype float64"):
        session.run({"input": gset.inputs["input"].astype(np.float64)})
    assert session.metrics()["runs"] == 1
    assert session.metrics()["errors"] == 1


def test_torchscript_takes_a_dict_in_any_order(exported: Exported) -> None:
    # TorchScript is called positionally: a dict in another order than the inputs must still
    # reach the right parameters (it used to be passed in the dict's own order).
    bundle = exported("two_inputs_dict_output")
    gset = bundle.golden_sets()[0]
    reversed_feeds = dict(reversed(list(gset.inputs.items())))
    assert list(reversed_feeds) != [s.name for s in bundle.inputs]
    session = Session(bundle.root, "torchscript-fp32", trust_code=True)
    out = session.run(reversed_feeds)
    for name in ("scores", "boxes"):
        np.testing.assert_allclose(out[name], gset.outputs[name], rtol=1e-5, atol=1e-6)


def test_an_artifact_returning_fewer_outputs_than_its_specs_is_refused(
    exported: Exported,
) -> None:
    bundle = exported("small_cnn")
    outputs = [*bundle.outputs, TensorSpec("extra", "float32", (1, 10))]
    session = Session.for_file(
        bundle.path_of("torchscript-fp32"), "torchscript", bundle.inputs, outputs, trust_code=True
    )
    with pytest.raises(
        EdgeportError,
        match=r"the torchscript artifact returned 1 outputs. Expected 2 outputs named "
        r"\['output', 'extra'\]",
    ):
        session.run(bundle.golden_sets()[0].inputs)


# ---- Session.for_file: ONNX ------------------------------------------------------------------


def test_for_file_onnx_matches_golden(exported: Exported) -> None:
    bundle = exported("two_inputs_dict_output")
    session = Session.for_file(
        bundle.path_of("onnx-fp32"), "onnx", bundle.inputs, bundle.outputs, threads=1
    )
    assert session.artifact == "model.onnx"
    assert session.options.threads == 1
    assert [s.shape for s in session.inputs] == [s.shape for s in bundle.inputs]
    for gset in bundle.golden_sets():
        out = session.run(gset.inputs)
        assert list(out) == ["scores", "boxes"]
        for name in out:
            np.testing.assert_allclose(out[name], gset.outputs[name], rtol=1e-4, atol=1e-5)


def test_for_file_onnx_io_names_must_be_the_graphs(exported: Exported) -> None:
    bundle = exported("small_cnn")
    with pytest.raises(
        EdgeportError,
        match=r"the manifest's IO names \['image'\] → \['output'\] do not match the graph's "
        r"\['input'\] → \['output'\]",
    ):
        Session.for_file(
            bundle.path_of("onnx-fp32"),
            "onnx",
            [TensorSpec("image", "float32", (1, 1, 16, 16))],
            bundle.outputs,
        )


def test_for_file_onnx_external_data_must_stay_beside_the_model(
    exported: Exported, tmp_path: Path
) -> None:
    bundle = exported("small_cnn")
    model = onnx.load(str(bundle.path_of("onnx-fp32")))
    convert_model_to_external_data(model, location="w.bin", size_threshold=0)
    for tensor in model.graph.initializer:
        tensor.ClearField("raw_data")
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../w.bin"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.onnx").write_bytes(model.SerializeToString())
    (tmp_path / "w.bin").write_bytes(bytes(4096))  # something to point at
    with pytest.raises(EdgeportError, match=r"points its external data at '../w.bin', outside"):
        Session.for_file(tmp_path / "m" / "model.onnx", "onnx", bundle.inputs, bundle.outputs)


def test_for_file_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        EdgeportError,
        match=r"'.*nope.onnx' does not exist. Expected an artifact file of format 'onnx'",
    ):
        Session.for_file(tmp_path / "nope.onnx", "onnx", [TensorSpec("x")], [TensorSpec("y")])
