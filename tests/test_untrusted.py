"""Bundles, data files and arguments that are wrong by accident or by intent (docs/design.md §7).

Every crafted case must end in one clear message and a non-zero exit code (never 3, a bug),
read nothing outside the bundle, write or delete nothing outside the bundle / out dir, and run
no code from the bundle. The base bundle carries code on purpose: its ``model.source`` is a file
that creates a marker file when imported, and its TorchScript artifact is replaced by one whose
``__setstate__`` prints a marker when ``torch.jit.load`` runs it. The same cases go through
``edgeport-run verify`` where the C++ build exists: both runtimes must refuse or accept alike.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgeport
from edgeport.cli import main

CODE_MARKER = "EDGEPORT-CODE-RAN"
MODEL_PY = """
import pathlib
import torch
from torch import nn

pathlib.Path(__file__).with_name("SOURCE_IMPORTED").write_text("model.source ran")


def make():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
"""
EVIL_TS = """
from typing import Tuple
import sys
import torch
from torch import nn


class Evil(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.flag = 1

    @torch.jit.export
    def __getstate__(self) -> Tuple[int, bool]:
        return (self.flag, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[int, bool]) -> None:
        print("EDGEPORT-CODE-RAN")
        self.flag = state[0]
        self.training = state[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :3] * 0.0 + 42.0


torch.jit.script(Evil()).save(sys.argv[1])
"""


# ---- the base bundle and the file system around it -------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle whose model.source and TorchScript artifact would both run code if opened."""
    work = tmp_path_factory.mktemp("untrusted")
    (work / "model.py").write_text(MODEL_PY)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        edgeport.export("model.py:make", ["x:batch=2x4"], out=work / "bundle")
    finally:
        os.chdir(cwd)
    (work / "SOURCE_IMPORTED").unlink()  # export itself imported it: the user's own command
    (work / "evil.py").write_text(EVIL_TS)
    subprocess.run(
        [sys.executable, "-W", "ignore", str(work / "evil.py"), str(work / "bundle/model.ts")],
        check=True,
        capture_output=True,
    )
    rehash(work / "bundle", "model.ts")  # the attacker rewrites the hash too
    return work


@pytest.fixture
def site(base: Path, tmp_path: Path) -> Path:
    """A fresh copy of the work dir: bundle/, model.py (its source), and an outside file."""
    shutil.copytree(base, tmp_path / "w", symlinks=True)
    root = tmp_path / "w"
    np.save(root / "outside.npy", np.ones((2, 3), np.float32))
    return root


def snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Path → sha256 (or link target) of everything under ``root``, except under ``skip``."""
    state = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        if path.is_symlink():
            state[str(path)] = "-> " + os.readlink(path)
        elif path.is_file():
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[str(path)] = "dir"
    return state


def edit(bundle: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    path = bundle / "manifest.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def rehash(bundle: Path, rel: str) -> None:
    """Rewrite every sha256 the manifest records for ``rel`` (what an attacker would do)."""
    digest = hashlib.sha256((bundle / rel).read_bytes()).hexdigest()

    def change(doc: dict[str, Any]) -> None:
        for entry in doc["artifacts"].values():
            if entry["path"] == rel:
                entry["sha256"] = digest
        for gset in doc["golden"]["sets"]:
            if rel in gset["sha256"]:
                gset["sha256"][rel] = digest

    edit(bundle, change)


def cli(*args: str, cwd: Path) -> tuple[int, str]:
    """Run the CLI in this process (in ``cwd``); returns the exit code and all output."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = main(list(args))
    finally:
        os.chdir(old)
    return code, ""


@dataclass(frozen=True)
class Case:
    """A crafted input: how to break the site, the command, and what must be said."""

    name: str
    craft: Callable[[Path], None]
    args: tuple[str, ...]
    code: int
    message: str
    cpp: bool = True  # edgeport-run verify sees the same bundle


def _set(path: str, value: Any) -> Callable[[Path], None]:
    """A craft that sets a manifest field (dotted path; [i] for list items)."""

    def craft(site: Path) -> None:
        def change(doc: dict[str, Any]) -> None:
            *parents, last = path.split(".")
            node: Any = doc
            for key in parents:
                node = node[int(key)] if key.isdigit() else node[key]
            if value is _DELETE:
                del node[int(last) if last.isdigit() else last]
            else:
                node[int(last) if last.isdigit() else last] = value

        edit(site / "bundle", change)

    return craft


_DELETE = object()


def _write_manifest(text: str) -> Callable[[Path], None]:
    def craft(site: Path) -> None:
        (site / "bundle/manifest.json").write_text(text)

    return craft


def _artifact_path(rel: str, source: str | None = None) -> Callable[[Path], None]:
    """Point onnx-fp32 at ``rel`` (its hash rewritten to the real file's, so a read passes)."""

    def craft(site: Path) -> None:
        target = site / (source or "bundle/model.onnx")
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        shutil.copy(site / "bundle/model.onnx", site / "stolen.onnx")
        _set("artifacts.onnx-fp32.path", rel.replace("SITE", str(site)))(site)
        _set("artifacts.onnx-fp32.sha256", digest)(site)

    return craft


def _symlink(link: str, target: str) -> Callable[[Path], None]:
    def craft(site: Path) -> None:
        dest = site / "bundle" / link
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        os.symlink(site / target, dest)

    return craft


def _golden_path(rel: str) -> Callable[[Path], None]:
    """Point golden set base's output at ``rel``, listing the outside file's real hash."""

    def craft(site: Path) -> None:
        out = np.load(site / "bundle/golden/outputs/output.npy")
        np.save(site / "outside.npy", out)
        digest = hashlib.sha256((site / "outside.npy").read_bytes()).hexdigest()

        def change(doc: dict[str, Any]) -> None:
            gset = doc["golden"]["sets"][0]
            gset["outputs"]["output"] = rel.replace("SITE", str(site))
            gset["sha256"][rel.replace("SITE", str(site))] = digest

        edit(site / "bundle", change)

    return craft


def _golden_output(array: np.ndarray, *, rewrite_hash: bool) -> Callable[[Path], None]:
    def craft(site: Path) -> None:
        for path in (site / "bundle/golden").rglob("outputs/output.npy"):
            rows = np.load(path).shape[0]
            np.save(path, np.broadcast_to(array, (rows, 3)).astype(np.float32))
            if rewrite_hash:
                rehash(site / "bundle", str(path.relative_to(site / "bundle")))

    return craft


def _raw_golden(data: bytes) -> Callable[[Path], None]:
    def craft(site: Path) -> None:
        (site / "bundle/golden/inputs/x.npy").write_bytes(data)
        rehash(site / "bundle", "golden/inputs/x.npy")

    return craft


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _chain(*crafts: Callable[[Path], None]) -> Callable[[Path], None]:
    def craft(site: Path) -> None:
        for c in crafts:
            c(site)

    return craft


def _batched_base(inputs: dict[str, np.ndarray]) -> Callable[[Path], None]:
    """Make golden set 'base' batched (batch 1) with these inputs, hashes rewritten."""

    def craft(site: Path) -> None:
        for name, array in inputs.items():
            np.save(site / f"bundle/golden/inputs/{name}.npy", array)
            rehash(site / "bundle", f"golden/inputs/{name}.npy")
        _set("golden.sets.0.batch", 1)(site)

    return craft


VERIFY = ("verify", "bundle")
CASES = [
    # -- the manifest: every field the runtimes rely on, checked once with the field named --
    Case("not-json", _write_manifest("{oops"), VERIFY, 2, "is not valid JSON"),
    Case("empty-file", _write_manifest(""), VERIFY, 2, "is not valid JSON"),
    Case("json-list", _write_manifest("[1, 2]"), VERIFY, 2, "the top level is a JSON list"),
    Case("no-schema", _set("schema", _DELETE), VERIFY, 2, "manifest.json: schema is missing"),
    Case("future-schema", _set("schema", "edgeport.bundle/99"), VERIFY, 2, "has schema"),
    Case("artifacts-list", _set("artifacts", []), VERIFY, 2, "artifacts is a JSON list"),
    Case("no-path", _set("artifacts.onnx-fp32.path", _DELETE), VERIFY, 2, "onnx-fp32.path is"),
    Case("no-format", _set("artifacts.onnx-fp32.format", _DELETE), VERIFY, 2, ".format is miss"),
    Case("format-pickle", _set("artifacts.onnx-fp32.format", "pickle"), VERIFY, 2, "'pickle'"),
    Case("precision-fp8", _set("artifacts.onnx-fp32.precision", "fp8"), VERIFY, 2, "precision"),
    Case("no-inputs", _set("inputs", _DELETE), VERIFY, 2, "manifest.json: inputs is missing"),
    Case("dtype-evil", _set("inputs.0.dtype", "evil"), VERIFY, 2, "inputs[0].dtype is 'evil'"),
    Case("dim-float", _set("inputs.0.shape", ["batch", 3.5]), VERIFY, 2, "inputs[0].shape[1]"),
    Case("no-sizes", _set("golden.sets.0.sizes", _DELETE), VERIFY, 2, "'base'.sizes is missing"),
    Case(
        "huge-example",
        _set("input_examples.batch", 10**12),
        VERIFY,
        2,
        "input_examples.batch is 1000000000000",
    ),
    Case(
        "huge-example-product",
        _chain(_set("inputs.0.shape", ["batch", 4096, 4096]), _set("input_examples.batch", 64)),
        VERIFY,
        2,
        "input_examples make input 'x' 1,073,741,824 elements",
    ),
    Case("batch-zero", _set("golden.sets.0.batch", 0), VERIFY, 2, "'base'.batch is 0"),
    Case("tolerance-text", _set("artifacts.onnx-fp32.tolerance.rtol", "lots"), VERIFY, 2, "rtol"),
    Case("sha-not-hex", _set("artifacts.onnx-fp32.sha256", "abc"), VERIFY, 2, "not a sha256"),
    # -- paths: relative, no '..', inside after symlinks; a read would have passed every hash --
    Case("artifact-dotdot", _artifact_path("../stolen.onnx"), VERIFY, 1, "outside the bundle"),
    Case("artifact-absolute", _artifact_path("SITE/stolen.onnx"), VERIFY, 1, "outside the bun"),
    Case(
        "artifact-symlink",
        _chain(_artifact_path("model.onnx"), _symlink("model.onnx", "stolen.onnx")),
        VERIFY,
        1,
        "resolves (through a symlink) outside the bundle",
    ),
    Case("golden-dotdot", _golden_path("../outside.npy"), VERIFY, 1, "outside the bundle"),
    Case("golden-absolute", _golden_path("SITE/outside.npy"), VERIFY, 1, "outside the bundle"),
    Case(
        "golden-dir-symlink",
        _chain(
            lambda s: shutil.copytree(s / "bundle/golden", s / "elsewhere"),
            _symlink("golden", "elsewhere"),
        ),
        VERIFY,
        1,
        "resolves (through a symlink) outside the bundle",
    ),
    Case(
        "external-data-dotdot",
        _set("artifacts.onnx-fp32.external_data", [{"path": "../x.data", "sha256": "0" * 64}]),
        VERIFY,
        1,
        "points at '../x.data', outside the bundle",
    ),
    Case(
        "inspect-artifact-dotdot",
        _artifact_path("../stolen.onnx"),
        ("inspect", "bundle"),
        1,
        "artifact 'onnx-fp32' points at '../stolen.onnx', outside the bundle",
    ),
    Case(
        "run-artifact-symlink",
        _chain(_artifact_path("model.onnx"), _symlink("model.onnx", "stolen.onnx")),
        ("run", "bundle"),
        1,
        "resolves (through a symlink) outside the bundle",
    ),
    Case(
        "bench-golden-dotdot",
        _golden_path("../outside.npy"),
        ("bench", "bundle", "--no-report"),
        1,
        "golden file of set 'base' points at '../outside.npy', outside the bundle",
    ),
    Case(
        "manifest-symlink",
        lambda s: (
            shutil.move(s / "bundle/manifest.json", s / "outside.json"),
            os.symlink(s / "outside.json", s / "bundle/manifest.json"),
        ),
        VERIFY,
        1,
        "the manifest 'manifest.json' resolves (through a symlink) outside the bundle",
    ),
    Case(
        "nul-in-path",
        _set("artifacts.onnx-fp32.path", "model\u0000.onnx"),
        VERIFY,
        1,
        "outside the bundle: paths in a bundle must be relative and stay inside it",
    ),
    Case(
        "weights-not-a-path",
        _set("model.weights", False),
        VERIFY,
        2,
        "model.weights is False, not a non-empty string",
        cpp=False,  # libedgeport never rebuilds the eager model, so it does not read the field
    ),
    # -- verify decides; the manifest only records --
    Case(
        "outputs-42-tolerance-1e9",
        _chain(
            _golden_output(np.full(3, 42.0), rewrite_hash=True),
            _set("artifacts.onnx-fp32.tolerance", {"rtol": 1e9, "atol": 1e9}),
        ),
        VERIFY,
        1,
        "exceeds tolerance atol 1e-05 + rtol 0.001",
    ),
    Case("no-golden-sets", _set("golden.sets", []), VERIFY, 1, "checked on no golden set"),
    Case(
        "artifact-golden-sets-empty",
        _set("artifacts.onnx-fp32.golden_sets", []),
        VERIFY,
        1,
        "artifact 'onnx-fp32' is checked on no golden set",
    ),
    Case(
        "golden-changed",
        _golden_output(np.zeros(3), rewrite_hash=False),
        VERIFY,
        1,
        "golden file: sha256 of 'golden/outputs/output.npy' is",
    ),
    Case(
        "golden-hash-missing",
        _set("golden.sets.0.sha256", {}),
        VERIFY,
        1,
        "golden file 'golden/inputs/x.npy' has no sha256 in the manifest",
    ),
    Case(
        "golden-no-reference",
        _set("golden.sets.0.outputs", {}),
        VERIFY,
        2,
        "golden set 'base' has no output ['output']",
    ),
    Case(
        "golden-no-input",
        _set("golden.sets.0.inputs", {}),
        VERIFY,
        2,
        "golden set 'base' has no input ['x']",
    ),
    # -- golden data that would crash or exhaust a reader --
    Case(
        "npy-4-tib",
        _raw_golden(_npy_header((1 << 40,)) + b"\0" * 64),
        VERIFY,
        2,
        "promises shape [1099511627776] of float32",
    ),
    Case(
        "npy-truncated",
        _raw_golden(_npy_header((2, 4)) + b"\0" * 16),
        VERIFY,
        2,
        "holds 16 bytes of data but its header promises 32",
    ),
    Case(
        "npy-pickle",
        _raw_golden(_npy_header((2,), "|O") + b"\0" * 16),
        VERIFY,
        2,
        "holds dtype '|O'",
    ),
    Case(
        "npy-negative-dims",
        _raw_golden(_npy_header((-2, -4)) + b"\0" * 32),
        VERIFY,
        2,
        "has shape [-2, -4]",
    ),
    Case(
        "golden-empty",
        _chain(
            _raw_golden(_npy_header((0, 4))),
            lambda s: (
                np.save(s / "bundle/golden/outputs/output.npy", np.zeros((0, 3), np.float32)),
                rehash(s / "bundle", "golden/outputs/output.npy"),
            ),
        ),
        VERIFY,
        2,
        "golden set 'base': reference output 'output' is empty: it checks nothing",
    ),
    Case(
        "batched-0d-input",
        _batched_base({"x": np.float32(1.0)}),
        VERIFY,
        2,
        "golden set 'base' is run in batches of 1, but input 'x' is 0-d",
    ),
    # -- signatures (authenticity): a key given means an unsigned bundle is refused --
    Case(
        "unsigned-with-key",
        lambda s: None,
        ("verify", "bundle", "--public-key", "KEY.pub"),
        1,
        "is not signed (no manifest.json.sig) and a public key was given",
        cpp=False,
    ),
]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeport.signing import generate_keypair

    root = tmp_path_factory.mktemp("keys")
    generate_keypair(root / "maker.key", root / "maker.pub")
    generate_keypair(root / "other.key", root / "other.pub")
    return root


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crafted_bundle_is_refused(
    case: Case, site: Path, keys: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    case.craft(site)
    before = snapshot(site, skip=site / "bundle")
    args = [a.replace("KEY", str(keys / "maker")) for a in case.args]
    code, _ = cli(*args, cwd=site)
    out, err = capfd.readouterr()
    assert code == case.code, (out, err)
    assert case.message in " ".join((out + err).split()), (out, err)
    assert "Traceback" not in out + err
    assert CODE_MARKER not in out + err  # the TorchScript artifact never loaded
    assert not (site / "SOURCE_IMPORTED").exists()  # model.source never imported
    assert snapshot(site, skip=site / "bundle") == before  # nothing outside written or deleted


@pytest.mark.cpp
@pytest.mark.parametrize("case", [c for c in CASES if c.cpp], ids=[c.name for c in CASES if c.cpp])
def test_cpp_gives_the_same_verdict(case: Case, site: Path) -> None:
    tool = _edgeport_run()
    case.craft(site)
    result = subprocess.run(
        [str(tool), "verify", str(site / "bundle")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert result.returncode > 0, f"edgeport-run crashed (signal {-result.returncode})"
    assert CODE_MARKER not in result.stdout + result.stderr


def _edgeport_run() -> Path:
    build = os.environ.get("EDGEPORT_CPP_BUILD")
    tool = Path(build) / "edgeport-run" if build else None
    if tool is None or not tool.exists():
        pytest.skip("the C++ build is not here (EDGEPORT_CPP_BUILD)")
    return tool


@pytest.mark.cpp
def test_cpp_accepts_the_untouched_bundle(site: Path) -> None:
    result = subprocess.run(
        [str(_edgeport_run()), "verify", str(site / "bundle")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout


# ---- code: nothing from the bundle runs without --trust-code; everything with it -------------


def test_verify_checks_onnx_and_skips_code_without_trust(
    site: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, _ = cli("verify", "bundle", cwd=site)
    out, err = capfd.readouterr()
    assert code == 0, out + err
    text = " ".join(out.split())
    assert (
        "skipped: torchscript-fp32: torchscript loads code from the bundle; pass --trust-code"
        in text
    )
    assert "every checked artifact passes parity (onnx-fp32)" in text
    assert CODE_MARKER not in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "bundle", "--artifact", "torchscript-fp32"), "opening torchscript artifact"),
        (("verify", "bundle", "--artifact", "torchscript-fp32"), "checking torchscript artifact"),
        (("verify", "bundle", "--sizes", "batch=3"), "model.source 'model.py:make' would run"),
        (("bench", "bundle", "--artifacts", "torchscript-fp32"), "timing torchscript artifact"),
        (("quantize", "bundle", "--calib", "random", "--torchscript"), "model.source"),
    ],
    ids=["run-ts", "verify-ts", "verify-sizes", "bench-ts", "quantize-torchscript"],
)
def test_code_is_refused_without_trust(
    site: Path, args: tuple[str, ...], message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(site)
    code, _ = cli(*args, cwd=site)
    out, err = capfd.readouterr()
    assert code == 2, out + err
    text = " ".join(err.split())
    assert message in text, text
    assert "pass --trust-code" in text
    assert CODE_MARKER not in out + err
    assert not (site / "SOURCE_IMPORTED").exists()
    assert snapshot(site) == before  # quantize refused before writing anything


def test_bench_times_onnx_and_skips_code_without_trust(
    site: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    args = ("bench", "bundle", "--duration", "0.05", "--blocks", "2", "--warmup", "1")
    code, _ = cli(*args, "--json", "--no-report", cwd=site)
    out, err = capfd.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert [r["variant"] for r in report["results"]] == ["onnx-fp32"]
    assert report["skipped"][0].startswith("torchscript-fp32: loading it runs code")
    assert report["skipped"][1].startswith("eager-fp32: rebuilding the eager model")
    assert CODE_MARKER not in out + err
    assert not (site / "SOURCE_IMPORTED").exists()


def test_trust_code_runs_the_code_and_says_so(
    site: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The positive control: with the opt-in the planted code does run, so the markers above
    # would have caught it.
    code, _ = cli("run", "bundle", "--artifact", "torchscript-fp32", "--trust-code", cwd=site)
    out, err = capfd.readouterr()
    assert CODE_MARKER in out
    assert "--trust-code: run may load and run code the bundle carries" in " ".join(err.split())
    assert code == 0, err
    code, _ = cli("verify", "bundle", "--sizes", "batch=3", "--trust-code", cwd=site)
    assert (site / "SOURCE_IMPORTED").exists()


def test_trust_code_verifies_fully(base: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(base, work)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        edgeport.export("model.py:make", ["x:batch=2x4"], out=work / "good")
        report = edgeport.verify_bundle(work / "good", eager_sizes=[{"batch": 5}], trust_code=True)
        bench = edgeport.run_bench(
            work / "good",
            edgeport.BenchOptions(duration=0.05, blocks=2, warmup=1, spread=0.0),
            trust_code=True,
        )
    finally:
        os.chdir(cwd)
    assert [r["variant"] for r in bench["results"]] == [
        "eager-fp32",
        "onnx-fp32",
        "torchscript-fp32",
    ]
    assert bench["skipped"] == []
    assert report.passed, report.problems
    assert set(report.artifacts) == {"onnx-fp32", "torchscript-fp32"}
    assert set(report.artifacts["torchscript-fp32"]) == {
        "base",
        "negated",
        "resized",
        "eager@batch=5",
    }
    assert report.skipped == {}


# ---- signatures --------------------------------------------------------------------------------


@pytest.fixture
def signed(site: Path, keys: Path) -> Path:
    from edgeport.bundle import sign_bundle

    # The crafted TorchScript artifact must not stop signing: sign a clean copy of the bundle.
    sign_bundle(site / "bundle", keys / "maker.key")
    return site / "bundle"


def test_signed_bundle_runs_with_the_right_key(signed: Path, keys: Path) -> None:
    session = edgeport.Session(signed, public_key=keys / "maker.pub")
    assert session.run({"x": np.ones((2, 4), np.float32)})["output"].shape == (2, 3)
    assert edgeport.verify_bundle(signed, public_key=keys / "maker.pub").passed


@pytest.mark.parametrize(
    ("tamper", "key", "message"),
    [
        ("manifest", "maker", "does not verify against public key"),
        ("artifact-rehashed", "maker", "does not verify against public key"),
        ("signature-removed", "maker", "is not signed (no manifest.json.sig)"),
        ("none", "other", "does not verify against public key"),
    ],
)
def test_signature_refuses_tampering(
    signed: Path, keys: Path, tamper: str, key: str, message: str
) -> None:
    from edgeport.signing import SignatureError

    if tamper == "manifest":
        edit(signed, lambda d: d["model"].update(parameters=1))
    elif tamper == "artifact-rehashed":
        with open(signed / "model.onnx", "ab") as f:
            f.write(b"\0")
        rehash(signed, "model.onnx")
        assert edgeport.load_bundle(signed).spec.artifacts  # without a key its hashes "match"
    elif tamper == "signature-removed":
        (signed / "manifest.json.sig").unlink()
    with pytest.raises(SignatureError, match=re.escape(message)):
        edgeport.Session(signed, public_key=keys / f"{key}.pub")
    with pytest.raises(SignatureError, match=re.escape(message)):
        edgeport.verify_bundle(signed, public_key=keys / f"{key}.pub")


def test_a_bad_key_file_is_a_clear_error(signed: Path, tmp_path: Path) -> None:
    (tmp_path / "junk.pub").write_text("-----BEGIN PUBLIC KEY-----\nnope\n")
    with pytest.raises(edgeport.EdgeportError, match="is not an Ed25519 public key in PEM"):
        edgeport.Session(signed, public_key=tmp_path / "junk.pub")


@pytest.mark.cpp
@pytest.mark.parametrize("tamper", ["none", "manifest", "signature-removed", "other-key"])
def test_cpp_checks_signatures_alike(signed: Path, keys: Path, tamper: str) -> None:
    tool = _edgeport_run()
    key = keys / ("other.pub" if tamper == "other-key" else "maker.pub")
    if tamper == "manifest":
        edit(signed, lambda d: d["model"].update(parameters=1))
    elif tamper == "signature-removed":
        (signed / "manifest.json.sig").unlink()
    result = subprocess.run(
        [str(tool), "verify", str(signed), "--public-key", str(key)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == (0 if tamper == "none" else 1), result.stdout + result.stderr


# ---- arguments and data files ----------------------------------------------------------------


def _zip_bomb(path: Path, megabytes: int) -> None:
    """An .npz whose one member inflates from a few hundred KiB to ``megabytes`` MiB."""
    header = _npy_header((megabytes << 18,))  # float32: 4 bytes each
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("x.npy", "w", force_zip64=True) as member,
    ):
        member.write(header)
        chunk = b"\0" * (1 << 20)
        for _ in range(megabytes):
            member.write(chunk)


def test_zip_bomb_is_refused_before_it_inflates(site: Path) -> None:
    _zip_bomb(site / "bomb.npz", 510)
    assert (site / "bomb.npz").stat().st_size < 1 << 20
    # VmHWM: this process's peak resident memory (ru_maxrss would include the parent's from
    # before exec).
    probe = (
        "import re, sys\n"
        "from edgeport.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "status = open('/proc/self/status').read()\n"
        "print('MAXRSS_MB', int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "run", "bundle", "--inputs", "bomb.npz"],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "input 'x' has samples of shape [133693440]" in " ".join(result.stderr.split())
    rss = int(result.stdout.split("MAXRSS_MB")[1])
    assert rss < 400, f"peak RSS {rss} MiB: the archive was inflated"


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            lambda s: (s / "x.npz").write_text("not a zip"),
            ("run", "bundle", "--inputs", "x.npz"),
            "cannot read 'x.npz' as an .npz archive",
        ),
        (
            lambda s: np.savez(s / "x.npz", y=np.ones((2, 4), np.float32)),
            ("run", "bundle", "--inputs", "x.npz"),
            "'x.npz' has no array for inputs ['x']",
        ),
        (
            lambda s: np.save(s / "x.npy", np.ones((2, 5), np.float32)),
            ("run", "bundle", "--inputs", "x.npy"),
            "input 'x' has samples of shape [2, 5]",
        ),
        (
            lambda s: (s / "r.json").write_text("{nope"),
            ("bench", "bundle", "--compare", "r.json"),
            "--compare 'r.json' is not JSON",
        ),
        (
            lambda s: (s / "r.json").write_text("[]"),
            ("bench", "bundle", "--compare", "r.json"),
            "is not an edgeport bench report",
        ),
        (
            lambda s: (s / "afile").write_text("x"),
            ("export", "model.py:make", "--input", "x:2x4", "--out", "afile/b"),
            "a parent of it is a file, not a directory",
        ),
        (
            lambda s: None,
            ("run", "bundle", "--out", "missing/y.npz"),
            "folder 'missing' does not exist",
        ),
        (
            lambda s: (s / "notes.npz").write_text("my notes"),
            ("run", "bundle", "--out", "notes.npz"),
            "exists and is not an .npz archive",
        ),
        (
            lambda s: None,
            ("run", "bundle", "--inputs", "nothing.npz"),
            "data file 'nothing.npz' does not exist",
        ),
        (lambda s: None, ("verify", "nowhere"), "'nowhere' is not an edgeport bundle"),
        (lambda s: None, ("keygen", "model"), None),  # model.py exists, model.key does not: ok
        (
            lambda s: (s / "k.key").write_text("x"),
            ("sign", "bundle", "--key", "k.key"),
            "private key 'k.key' is not an Ed25519 private key in PEM",
        ),
        (lambda s: None, ("verify", "bundle", "--sizes", "batch=x"), "cannot parse --sizes"),
        (
            lambda s: None,
            ("verify", "bundle", "--sizes", "seq=3", "--trust-code"),
            "--sizes names ['seq'], which are not symbolic dims of this model",
        ),
        (lambda s: None, ("verify", "bundle", "--rtol", "nan"), "--rtol nan is not a finite"),
        (lambda s: None, ("verify", "bundle", "--atol", "-1"), "--atol -1.0 is not a finite"),
        (_set("artifacts.onnx-fp32.size_bytes", _DELETE), ("inspect", "bundle"), None),
    ],
    ids=[
        "npz-not-zip",
        "npz-missing-array",
        "npy-wrong-shape",
        "compare-not-json",
        "compare-not-report",
        "out-under-file",
        "run-out-missing-folder",
        "run-out-over-user-file",
        "inputs-missing",
        "not-a-bundle",
        "keygen-ok",
        "sign-bad-key",
        "bad-sizes",
        "sizes-unknown-label",
        "rtol-nan",
        "atol-negative",
        "inspect-without-size-bytes",
    ],
)
def test_bad_arguments_get_one_message(
    site: Path,
    setup: Callable[[Path], Any],
    args: tuple[str, ...],
    message: str | None,
    capfd: pytest.CaptureFixture[str],
) -> None:
    setup(site)
    before = snapshot(site)
    code, _ = cli(*args, cwd=site)
    out, err = capfd.readouterr()
    if message is None:
        assert code == 0, err
        return
    assert code == 2, out + err
    assert message in " ".join(err.split()), err
    assert "Traceback" not in err
    assert snapshot(site) == before


def test_corrupt_calibration_image_is_named(site: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    folder = site / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    from edgeport.data import load_samples
    from edgeport.spec import TensorSpec

    with pytest.raises(edgeport.EdgeportError, match=r"image '.*b.png' cannot be read"):
        load_samples(str(folder), [TensorSpec("input", "float32", (1, 3, 8, 8))])


# ---- nothing destroyed that edgeport did not make ---------------------------------------------


def test_out_never_replaces_a_folder_edgeport_did_not_make(
    site: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    web = site / "web"
    (web / "src").mkdir(parents=True)
    (web / "index.html").write_text("<h1>mine</h1>")
    (web / "manifest.json").write_text('{"name": "my web app"}')
    before = snapshot(site)
    code, _ = cli("export", "model.py:make", "--input", "x:2x4", "--out", "web", cwd=site)
    err = capfd.readouterr().err
    assert code == 2
    assert "exists and is not an edgeport bundle" in " ".join(err.split())
    assert snapshot(site) == before


@pytest.mark.parametrize("out", [".", "..", "~"])
def test_out_never_replaces_the_current_directory_its_parents_or_home(
    site: Path, out: str, capfd: pytest.CaptureFixture[str]
) -> None:
    bundle = site / "bundle"
    before = snapshot(site)
    code, _ = cli(
        "export",
        str(site / "model.py") + ":make",
        "--input",
        "x:2x4",
        "--out",
        os.path.expanduser(out),
        cwd=bundle,
    )
    err = " ".join(capfd.readouterr().err.split())
    assert code == 2, err
    assert "refusing to write a bundle over" in err
    assert snapshot(site) == before


def test_quantize_in_the_bundle_directory_works(site: Path) -> None:
    code, _ = cli("quantize", ".", "--calib", "random", "--mode", "dynamic", cwd=site / "bundle")
    assert code == 0
    manifest = json.loads((site / "bundle/manifest.json").read_text())
    assert "onnx-int8-dynamic" in manifest["artifacts"]


def test_reports_replace_a_symlink_instead_of_writing_through_it(
    site: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    victim = site / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, site / "bundle/report.html")
    code, _ = cli(
        "bench", "bundle", "--duration", "0.05", "--blocks", "2", "--warmup", "1", cwd=site
    )
    assert code == 0, capfd.readouterr().err
    assert victim.read_text() == "precious"
    assert not (site / "bundle/report.html").is_symlink()
    assert "<html" in (site / "bundle/report.html").read_text()


@pytest.mark.parametrize(
    ("source", "weights", "code"),
    [
        ("torchvision:resnet18", None, False),
        ("torchvision:resnet18?num_classes=4", None, False),
        ("torchvision:lraspp_mobilenet_v3_large?weights_backbone='DEFAULT'", None, True),
        ("torchvision:lraspp_mobilenet_v3_large?num_classes=21&weights_backbone=None", None, False),
        ("torchvision:resnet18", "/home/me/w.safetensors", True),
        ("timm:resnet18", None, False),
        ("timm:resnet18", "/home/me/w.safetensors", True),
        ("hf:/home/me/bert-tiny", None, True),  # reads a directory outside the bundle
        ("model.py:make", None, True),
        ("package.module:factory", None, True),
        ("model.ts", None, True),
        (None, None, False),
    ],
)
def test_which_sources_count_as_code(source: str | None, weights: str | None, code: bool) -> None:
    from edgeport.trust import source_runs_code

    assert source_runs_code(source, weights) is code


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"0": {"forward": "x"}}, "sets 0.forward = 'x'"),
        ({"0": {"__class__": "x"}}, "sets 0.__class__"),
        ({"0": {"out_channels": "8"}}, "sets 0.out_channels = '8'"),
        ({"0": {"out_channels": -1}}, "sets 0.out_channels = -1"),
        ({"0": 5}, "entry for '0' is not a JSON object"),
        ([], "'modules' is not a JSON object"),
    ],
)
def test_a_pruning_plan_only_sets_sizes(modules: Any, message: str) -> None:
    import torch
    from torch import nn

    from edgeport.pruning.core import apply_plan

    model = nn.Sequential(nn.Conv2d(3, 8, 3))
    with pytest.raises(edgeport.EdgeportError, match=re.escape(message)):
        apply_plan(model, modules, {})
    assert model[0].forward.__self__ is model[0]  # nothing was set before the refusal
    assert model(torch.zeros(1, 3, 5, 5)).shape == (1, 8, 3, 3)
