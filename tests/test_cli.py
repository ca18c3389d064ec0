"""The command line as a user meets it: exit codes, one-paragraph errors, no tracebacks."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import edgeport
from catalog import CATALOG
from conftest import run_cli
from test_sources import _Exploit

Exported = Callable[[str], edgeport.Bundle]


def _error(result: object) -> str:
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    return result.stderr.replace("\n", " ")  # type: ignore[attr-defined]


@pytest.mark.parametrize("verb", ["export", "verify", "inspect", "run", "demo"])
def test_every_verb_has_help_with_an_example(verb: str) -> None:
    result = run_cli(verb, "--help")
    assert result.returncode == 0
    assert f"example:\n  edgeport {verb}" in result.stdout
    assert "--json" in result.stdout


def test_export_verify_inspect_json(exported: Exported, tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run_cli(
        "export",
        CATALOG["small_cnn"].source,
        "--input",
        "input:1x1x16x16",
        "--dynamic",
        "input:0=batch",
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["inputs"][0]["shape"] == ["batch", 1, 16, 16]
    verify = run_cli("verify", str(out), "--json")
    assert verify.returncode == 0
    assert json.loads(verify.stdout)["passed"] is True
    inspect = json.loads(run_cli("inspect", str(out / "model.onnx"), "--json").stdout)
    assert inspect["macs"] == 3_006_848
    assert (inspect["ops"]["Conv"], inspect["ops"]["Gemm"]) == (2, 2)
    assert inspect["inputs"] == [
        {"name": "input", "dtype": "float32", "shape": ["batch", 1, 16, 16]}
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["export", "torchvision:resnet181", "--input", "input:1x3x224x224"],
            2,
            "torchvision has no model named 'resnet181'. Available: near matches: resnet18",
        ),
        (
            ["export", "missing/model.py:make", "--input", "x:1x3"],
            2,
            "model file 'missing/model.py' does not exist",
        ),
        (
            ["export", "edgeport.demo:small_cnn", "--input", "image:1x3x16x16"],
            2,
            "layer '0' (Conv2d) failed on input shapes [1, 3, 16, 16]",
        ),
        (
            ["export", "tests/catalog.py:data_dependent", "--input", "x:batch=2x8"],
            1,
            "The tracer warned that the trace may be specialised to the example input",
        ),
        (["verify", "no/such/bundle"], 2, "'no/such/bundle' is not an edgeport bundle"),
    ],
)
def test_bad_input_one_message_no_traceback(
    args: list[str], code: int, message: str, tmp_path: Path
) -> None:
    if args[0] == "export":
        args = [*args, "--out", str(tmp_path / "b")]
    result = run_cli(*args)
    assert result.returncode == code, result.stderr
    assert message in _error(result)
    assert _error(result).startswith("error: ")


def test_malicious_weights_refused_by_cli(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"x": _Exploit(marker)}, f)
    result = run_cli(
        "export",
        "edgeport.demo:small_cnn",
        "--input",
        "image:1x1x16x16",
        "--weights",
        str(tmp_path / "evil.pt"),
        "--out",
        str(tmp_path / "b"),
    )
    assert result.returncode == 2
    assert "nothing in it was executed" in _error(result)
    assert "--trust-checkpoint" in _error(result)
    assert not marker.exists()
    assert not (tmp_path / "b").exists()


def test_corrupt_onnx_for_inspect_and_verify(exported: Exported, tmp_path: Path) -> None:
    root = tmp_path / "b"
    shutil.copytree(exported("small_cnn").root, root)
    onnx_path = root / "model.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes()[:1000])
    result = run_cli("inspect", str(onnx_path))
    assert result.returncode == 2
    assert "is not a readable ONNX model" in _error(result)
    result = run_cli("verify", str(root))
    assert result.returncode == 1
    assert "artifact 'onnx-fp32': sha256 of 'model.onnx' is" in result.stdout.replace("\n", " ")


def test_tampered_bundle_verify_exit_code(exported: Exported, tmp_path: Path) -> None:
    root = tmp_path / "b"
    shutil.copytree(exported("small_cnn").root, root)
    with open(root / "model.ts", "ab") as f:
        f.write(b"tampered")
    result = run_cli("verify", str(root))
    assert result.returncode == 1
    out = result.stdout.replace("\n", " ")
    assert "failed: artifact 'torchscript-fp32': sha256 of 'model.ts' is" in out
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = run_cli("verify", "no/such/bundle", "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_inspect_bundle_lists_artifacts(exported: Exported) -> None:
    result = run_cli("inspect", str(exported("small_cnn").root), "--json")
    info = json.loads(result.stdout)
    assert info["model"]["macs"] == 3_006_848
    assert set(info["artifacts"]) == {"onnx-fp32", "torchscript-fp32"}
    assert info["artifacts"]["onnx-fp32"]["ops"]["Conv"] == 2
    text = run_cli("inspect", str(exported("small_cnn").root)).stdout
    assert "315,146 parameters, 3.0 M MACs" in text


def test_run_with_inputs_file_writes_outputs(exported: Exported, tmp_path: Path) -> None:
    import numpy as np

    bundle = exported("two_inputs_dict_output")
    gset = bundle.golden_sets()[0]
    np.savez(tmp_path / "x.npz", **gset.inputs)
    result = run_cli(
        "run",
        str(bundle.root),
        "--inputs",
        str(tmp_path / "x.npz"),
        "--out",
        str(tmp_path / "y.npz"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["provider"] == "cpu"
    assert summary["outputs"]["scores"]["shape"] == [1, 3]
    with np.load(tmp_path / "y.npz") as y:
        np.testing.assert_allclose(y["boxes"], gset.outputs["boxes"], rtol=1e-4, atol=1e-6)


def test_run_cuda_on_cpu_machine_fails_closed(exported: Exported) -> None:
    from edgeport.runtime import available_providers

    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    root = str(exported("small_cnn").root)
    result = run_cli("run", root, "--provider", "cuda")
    assert result.returncode == 2
    assert "provider 'cuda' (CUDAExecutionProvider) is not usable" in _error(result)
    fallback = run_cli("run", root, "--provider", "cuda", "--allow-fallback", "--json")
    assert fallback.returncode == 0
    assert json.loads(fallback.stdout)["provider"] == "cpu"


def test_run_rejects_misnamed_inputs(exported: Exported, tmp_path: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "x.npz", img=np.zeros((1, 1, 16, 16), np.float32))
    result = run_cli("run", str(exported("small_cnn").root), "--inputs", str(tmp_path / "x.npz"))
    assert result.returncode == 2
    assert "has no array for inputs ['input']" in _error(result)
    assert "Available: img" in _error(result)


def _verbs() -> list[str]:
    from edgeport.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[attr-defined]


@pytest.mark.parametrize("verb", ["", *_verbs()])
def test_every_verb_answers_help(verb: str) -> None:
    from edgeport.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"] if verb else ["--help"])
    assert exit_.value.code == 0
