"""libedgeport against bundles the Python side made: `edgeport-run verify` passes, C++ outputs equal
Python `Session` outputs bitwise (CPU, one intra-op thread), `examples/embed` builds against the
installed package with find_package(edgeport), and only ep_* symbols are exported.

Needs the C++ build (`make cpp`; `make test` runs it first and sets EDGEPORT_CPP_BUILD).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import edgeport
from edgeport.quantization import QuantizeOptions, quantize
from edgeport.runtime import Session

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("EDGEPORT_CPP_BUILD", REPO / "build" / "cpp"))
RUN = BUILD / "edgeport-run"

pytestmark = [
    pytest.mark.cpp,
    pytest.mark.skipif(not RUN.exists(), reason=f"no C++ build at {BUILD} (run `make cpp`)"),
]

Exported = Callable[[str], edgeport.Bundle]


def edgeport_run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUN), *map(str, args)], capture_output=True, text=True, timeout=600, check=False
    )


def cpp_outputs(
    bundle: Path, artifact: str, feeds: dict[str, np.ndarray], tmp: Path
) -> dict[str, np.ndarray]:
    """Outputs of `edgeport-run run` (one intra-op thread) for these inputs."""
    args: list[str | Path] = ["run", bundle, "--artifact", artifact, "--threads", "1"]
    for name, value in feeds.items():
        np.save(tmp / f"in_{name}.npy", value)
        args += ["--input", f"{name}={tmp / f'in_{name}.npy'}"]
    out = tmp / f"out_{artifact}"
    result = edgeport_run(*args, "--output", out)
    assert result.returncode == 0, result.stderr
    return {p.stem: np.load(p) for p in out.glob("*.npy")}


@pytest.fixture(scope="module")
def resnet18_int8(exported: Exported, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cpp") / "resnet18"
    shutil.copytree(exported("resnet18").root, root)
    quantize(root, QuantizeOptions(mode="static", calib="random"))
    return root


def test_verify_passes_on_python_bundles(
    resnet18_int8: Path, exported: Exported, tmp_path: Path
) -> None:
    result = edgeport_run("verify", resnet18_int8)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   onnx-fp32 / base / output" in result.stdout
    assert "ok   onnx-int8-static / sample / output" in result.stdout
    assert "verified: every artifact passes parity on its golden sets (2 artifact(s))" in (
        result.stdout
    )
    encoder = exported("transformer_encoder").root
    result = edgeport_run("verify", encoder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   onnx-fp32 / resized / output" in result.stdout  # another (batch, seq)


@pytest.mark.parametrize("artifact", ["onnx-fp32", "onnx-int8-static"])
def test_cpp_outputs_equal_python_session_bitwise(
    resnet18_int8: Path, artifact: str, tmp_path: Path
) -> None:
    x = np.random.default_rng(1).standard_normal((3, 3, 224, 224), dtype=np.float32)
    got = cpp_outputs(resnet18_int8, artifact, {"input": x}, tmp_path)
    want = Session(resnet18_int8, artifact, threads=1).run({"input": x})
    np.testing.assert_array_equal(got["output"], want["output"])


def test_transformer_dynamic_sequence_bitwise(exported: Exported, tmp_path: Path) -> None:
    root = exported("transformer_encoder").root
    for batch, seq in ((1, 5), (3, 31)):
        tokens = np.random.default_rng(seq).integers(0, 50, (batch, seq), dtype=np.int64)
        got = cpp_outputs(root, "onnx-fp32", {"tokens": tokens}, tmp_path)
        want = Session(root, threads=1).run({"tokens": tokens})
        assert got["output"].shape[0] == batch
        np.testing.assert_array_equal(got["output"], want["output"])


def test_bad_input_messages_from_the_tool(exported: Exported, tmp_path: Path) -> None:
    root = exported("small_cnn").root
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 16, 16), np.float64))
    result = edgeport_run("run", root, "--input", f"input={tmp_path / 'x.npy'}")
    assert result.returncode == 2
    assert result.stderr == (
        "error: input 'input' is float64, the model takes float32 (libedgeport never casts; "
        "convert the data first) [EP_ERR_INPUT]\n"
    )
    result = edgeport_run("run", root, "--input", f"image={tmp_path / 'x.npy'}")
    assert result.returncode == 2
    assert "error: unknown input 'image'. The model takes: input float32[1, 1, 16, 16]" in (
        result.stderr
    )
    result = edgeport_run("verify", tmp_path / "missing")
    assert result.returncode == 2
    assert f"error: '{tmp_path / 'missing'}' does not exist [EP_ERR_NOT_FOUND]" in result.stderr


def test_embed_example_builds_against_the_installed_package(
    exported: Exported, tmp_path: Path
) -> None:
    prefix = tmp_path / "prefix"
    subprocess.run(
        ["cmake", "--install", str(BUILD), "--prefix", str(prefix)],
        check=True,
        capture_output=True,
    )
    build = tmp_path / "embed"
    configure = subprocess.run(
        [
            "cmake",
            "-S",
            str(REPO / "examples" / "embed"),
            "-B",
            str(build),
            f"-DCMAKE_PREFIX_PATH={prefix}",
        ],
        capture_output=True,
        text=True,
    )
    assert configure.returncode == 0, configure.stderr
    made = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    root = exported("small_cnn").root
    run = subprocess.run([str(build / "embed"), str(root)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("onnx-fp32 on cpu: output[0..2] = ")
    run_c = subprocess.run([str(build / "embed_c"), str(root)], capture_output=True, text=True)
    assert run_c.returncode == 0, run_c.stderr
    assert run_c.stdout == ("input input float32 rank 4\nlibedgeport 0.1.0, artifact onnx-fp32\n")


def test_only_ep_symbols_are_exported() -> None:
    library = BUILD / "libedgeport.so"
    listing = subprocess.run(
        ["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True, check=True
    ).stdout
    symbols = sorted(line.split()[-1] for line in listing.splitlines() if line.strip())
    print(f"{library.resolve().name}: {library.resolve().stat().st_size} bytes, {symbols}")
    assert symbols, "no symbols exported"
    assert [s for s in symbols if not s.startswith("ep_")] == []
    assert "ep_session_run" in symbols
