"""Write the C++ tests' fixture bundles (numpy + onnx only; no torch, no cryptography).

- ``tiny``: a two-input model with golden sets (every golden file hashed in the manifest), and
  broken variants of it (tampered artifact, corrupt manifest, external data outside the bundle
  or missing from the manifest);
- ``crafted/<case>``: bundles a reviewer would craft: paths that leave the bundle, mistyped
  manifest fields, a loose tolerance, no golden set, changed or unhashed golden files, and the
  golden sets that crashed ``edgeport-run verify`` (0-d inputs and outputs in batched sets,
  inputs that disagree on the number of samples);
- ``keys/`` and ``signed*``: Ed25519 public keys (PEM SubjectPublicKeyInfo) and signed copies
  of ``tiny`` (manifest.json.sig), signed here with the RFC 8032 reference algorithm;
- ``seeds/``: seed inputs for the fuzz target (the first byte picks the reader).

    python cpp/tests/make_fixtures.py OUT_DIR
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)
Manifest = dict[str, Any]


# The tiny model's IO as every fixture manifest records it.
IO = {
    "inputs": [
        {"name": "x", "dtype": "float32", "shape": ["batch", 4]},
        {"name": "scale", "dtype": "float32", "shape": ["batch", 1]},
    ],
    "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 3]}],
    "input_examples": {"batch": 2},
}


def model(external: str | None = None, kind: str = "tiny") -> onnx.ModelProto:
    """y = relu(x @ W + b) * scale; x [batch, 4], scale [batch, 1].

    kind "all42": y is 42 everywhere; kind "scalar": y = sum(x * scale), a 0-d output.
    """
    w = numpy_helper.from_array(W, "W")
    if external is not None:
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external), ("offset", "0"), ("length", str(W.nbytes))):
            entry = w.external_data.add()
            entry.key, entry.value = key, value
    constants = [w, numpy_helper.from_array(B, "b")]
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["z"]),
        helper.make_node("Relu", ["z"], ["r"]),
    ]
    y_shape: list[str | int] = ["batch", 3]
    if kind == "tiny":
        nodes.append(helper.make_node("Mul", ["r", "scale"], ["y"]))
    elif kind == "all42":
        constants += [
            numpy_helper.from_array(np.float32(0), "zero"),
            numpy_helper.from_array(np.float32(42), "c42"),
        ]
        nodes += [
            helper.make_node("Mul", ["r", "scale"], ["rs"]),
            helper.make_node("Mul", ["rs", "zero"], ["z0"]),
            helper.make_node("Add", ["z0", "c42"], ["y"]),
        ]
    else:
        nodes += [
            helper.make_node("Mul", ["x", "scale"], ["xs"]),
            helper.make_node("ReduceSum", ["xs"], ["y"], keepdims=0),
        ]
        y_shape = []
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["batch", 1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        constants,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(root: Path) -> Manifest:
    return json.loads((root / "manifest.json").read_text())


def save(root: Path, manifest: Manifest) -> None:
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


def rehash_golden(root: Path, manifest: Manifest) -> None:
    """Every golden set's sha256 map: each file its inputs and outputs name (that exists)."""
    for gset in manifest.get("golden", {}).get("sets", []):
        names = {*gset["inputs"].values(), *gset["outputs"].values()}
        gset["sha256"] = {rel: sha(root / rel) for rel in sorted(names) if (root / rel).exists()}


def set_model(root: Path, manifest: Manifest, proto: onnx.ModelProto) -> None:
    """Replace model.onnx, with its sha256 and size in the manifest."""
    onnx.save(proto, str(root / "model.onnx"))
    for entry in manifest["artifacts"].values():
        entry["sha256"] = sha(root / "model.onnx")
        entry["size_bytes"] = (root / "model.onnx").stat().st_size


def bundle(root: Path, external: str | None = None, listed: bool = True) -> None:
    root.mkdir(parents=True)
    (root / "golden").mkdir()
    onnx.save(model(external), str(root / "model.onnx"))
    records = []
    if external is not None:
        data = (root / external).resolve()
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_bytes(W.tobytes())
        if listed:
            records.append({"path": external, "sha256": sha(data)})
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    scale = np.array([[1.0], [2.0]], np.float32)
    y = (np.maximum(x @ W + B, 0) * scale).astype(np.float32)
    np.save(root / "golden" / "x.npy", x)
    np.save(root / "golden" / "scale.npy", scale)
    np.save(root / "golden" / "y.npy", y)
    manifest = {
        "schema": "edgeport.bundle/1",
        **IO,
        "golden": {
            "sets": [
                {
                    "name": "base",
                    "sizes": {"batch": 2},
                    "inputs": {"x": "golden/x.npy", "scale": "golden/scale.npy"},
                    "outputs": {"y": "golden/y.npy"},
                },
                {
                    "name": "samples",
                    "sizes": {},
                    "batch": 1,
                    "inputs": {"x": "golden/x.npy", "scale": "golden/scale.npy"},
                    "outputs": {"y": "golden/y.npy"},
                },
            ]
        },
        "artifacts": {
            "onnx-fp32": {
                "path": "model.onnx",
                "sha256": sha(root / "model.onnx"),
                "size_bytes": (root / "model.onnx").stat().st_size,
                "format": "onnx",
                "precision": "fp32",
                "tolerance": {"rtol": 1e-3, "atol": 1e-5},
                "golden_sets": ["base", "samples"],
                "external_data": records,
            }
        },
        "recommended": {"artifact": "onnx-fp32", "reason": "fixture"},
    }
    rehash_golden(root, manifest)
    save(root, manifest)


# ---- crafted bundles: each case changes a copy of tiny (or of external_ok) -------------------

Craft = Callable[[Path, Manifest], None]
CASES: dict[str, tuple[str, bool, Craft]] = {}


def case(name: str, base: str = "tiny", rehash: bool = True) -> Callable[[Craft], Craft]:
    """Register a crafted bundle: a copy of ``base`` changed by the function; ``rehash``: the
    golden sets' sha256 are recomputed after the change (else they stay as the change left them).
    """

    def register(craft: Craft) -> Craft:
        assert name not in CASES, name
        CASES[name] = (base, rehash, craft)
        return craft

    return register


def artifact(manifest: Manifest) -> dict[str, Any]:
    return manifest["artifacts"]["onnx-fp32"]


def golden_set(manifest: Manifest, name: str) -> dict[str, Any]:
    return next(s for s in manifest["golden"]["sets"] if s["name"] == name)


def only_samples(manifest: Manifest, **files: str) -> dict[str, Any]:
    """Keep the batched set only (the artifact is checked on it alone), its files replaced."""
    samples = golden_set(manifest, "samples")
    for key, rel in files.items():
        (samples["outputs"] if key == "y" else samples["inputs"])[key] = rel
    manifest["golden"]["sets"] = [samples]
    artifact(manifest)["golden_sets"] = ["samples"]
    return samples


@case("artifact_dotdot")
def craft_artifact_dotdot(root: Path, m: Manifest) -> None:
    artifact(m)["path"] = "../../tiny/model.onnx"


@case("artifact_absolute")
def craft_artifact_absolute(root: Path, m: Manifest) -> None:
    artifact(m)["path"] = str((root / ".." / ".." / "tiny" / "model.onnx").resolve())


@case("artifact_symlink")
def craft_artifact_symlink(root: Path, m: Manifest) -> None:
    (root / "model.onnx").unlink()
    (root / "model.onnx").symlink_to((root / ".." / ".." / "tiny" / "model.onnx").resolve())


@case("external_dotdot")
def craft_external_dotdot(root: Path, m: Manifest) -> None:
    weights = root / ".." / ".." / "external_ok" / "weights.bin"
    artifact(m)["external_data"] = [
        {"path": "../../external_ok/weights.bin", "sha256": sha(weights)}
    ]


@case("external_absolute")
def craft_external_absolute(root: Path, m: Manifest) -> None:
    weights = (root / ".." / ".." / "external_ok" / "weights.bin").resolve()
    artifact(m)["external_data"] = [{"path": str(weights), "sha256": sha(weights)}]


@case("external_symlink", base="external_ok")
def craft_external_symlink(root: Path, m: Manifest) -> None:
    outside = root.parent / "outside_weights.bin"
    shutil.copy(root / "weights.bin", outside)
    (root / "weights.bin").unlink()
    (root / "weights.bin").symlink_to(outside.resolve())


@case("golden_dotdot")
def craft_golden_dotdot(root: Path, m: Manifest) -> None:
    golden_set(m, "base")["inputs"]["x"] = "../../tiny/golden/x.npy"


@case("golden_absolute")
def craft_golden_absolute(root: Path, m: Manifest) -> None:
    golden_set(m, "base")["inputs"]["x"] = str((root / "golden" / "x.npy").resolve())


@case("golden_symlink")
def craft_golden_symlink(root: Path, m: Manifest) -> None:
    (root / "golden" / "x.npy").unlink()
    (root / "golden" / "x.npy").symlink_to(
        (root / ".." / ".." / "tiny" / "golden" / "x.npy").resolve()
    )


@case("no_precision")
def craft_no_precision(root: Path, m: Manifest) -> None:
    del artifact(m)["precision"]


@case("unknown_precision")
def craft_unknown_precision(root: Path, m: Manifest) -> None:
    artifact(m)["precision"] = "fp16"


@case("path_not_string")
def craft_path_not_string(root: Path, m: Manifest) -> None:
    artifact(m)["path"] = 7


@case("golden_sets_not_list")
def craft_golden_sets_not_list(root: Path, m: Manifest) -> None:
    artifact(m)["golden_sets"] = "base"


@case("golden_sha_not_object", rehash=False)
def craft_golden_sha_not_object(root: Path, m: Manifest) -> None:
    golden_set(m, "base")["sha256"] = "abc"


@case("golden_sha_not_string", rehash=False)
def craft_golden_sha_not_string(root: Path, m: Manifest) -> None:
    golden_set(m, "base")["sha256"]["golden/x.npy"] = 5


@case("loose_tolerance")
def craft_loose_tolerance(root: Path, m: Manifest) -> None:
    """A model whose outputs are all 42, with a manifest that would pass anything."""
    set_model(root, m, model(kind="all42"))
    np.save(root / "golden" / "y.npy", np.array([[1, -5, 0.5], [-3, 0.25, 4]], np.float32))
    loose = {"rtol": 1e9, "atol": 1e9, "min_cosine": -1.0, "min_top1": 0.0}
    artifact(m)["tolerance"] = loose
    m["artifacts"]["onnx-int8"] = {**artifact(m), "precision": "int8", "tolerance": loose}


@case("empty_golden_sets")
def craft_empty_golden_sets(root: Path, m: Manifest) -> None:
    artifact(m)["golden_sets"] = []


@case("no_golden")
def craft_no_golden(root: Path, m: Manifest) -> None:
    del m["golden"]
    del artifact(m)["golden_sets"]


@case("dangling_golden_set")
def craft_dangling_golden_set(root: Path, m: Manifest) -> None:
    artifact(m)["golden_sets"] = ["base", "nope"]


@case("no_onnx_artifact")
def craft_no_onnx_artifact(root: Path, m: Manifest) -> None:
    artifact(m)["format"] = "torchscript"


@case("golden_changed", rehash=False)
def craft_golden_changed(root: Path, m: Manifest) -> None:
    y = np.load(root / "golden" / "y.npy")
    np.save(root / "golden" / "y.npy", y + np.float32(1))


@case("golden_unhashed", rehash=False)
def craft_golden_unhashed(root: Path, m: Manifest) -> None:
    del golden_set(m, "base")["sha256"]["golden/y.npy"]


@case("scalar_input_batched")
def craft_scalar_input_batched(root: Path, m: Manifest) -> None:
    np.save(root / "golden" / "x0.npy", np.float32(1))
    only_samples(m, x="golden/x0.npy")


@case("scalar_output_batched")
def craft_scalar_output_batched(root: Path, m: Manifest) -> None:
    set_model(root, m, model(kind="scalar"))
    np.save(root / "golden" / "y0.npy", np.float32(0))
    only_samples(m, y="golden/y0.npy")


@case("scalar_output_one_batch")
def craft_scalar_output_one_batch(root: Path, m: Manifest) -> None:
    """A 0-d output of a batched set that fits one run: nothing to join, so it is checked."""
    set_model(root, m, model(kind="scalar"))
    x = np.load(root / "golden" / "x.npy")[:1]
    scale = np.load(root / "golden" / "scale.npy")[:1]
    np.save(root / "golden" / "x1.npy", x)
    np.save(root / "golden" / "scale1.npy", scale)
    np.save(root / "golden" / "y0.npy", np.float32((x * scale).sum()))
    only_samples(m, x="golden/x1.npy", scale="golden/scale1.npy", y="golden/y0.npy")


@case("samples_disagree")
def craft_samples_disagree(root: Path, m: Manifest) -> None:
    """scale (the first input by name) has more samples than x: slicing x read past its end."""
    np.save(root / "golden" / "x3.npy", RNG.standard_normal((3, 4)).astype(np.float32))
    np.save(root / "golden" / "scale5.npy", np.ones((5, 1), np.float32))
    only_samples(m, x="golden/x3.npy", scale="golden/scale5.npy")["batch"] = 2


# The fields edgeport.manifest refuses and libedgeport once ignored.
@case("no_inputs")
def craft_no_inputs(root: Path, m: Manifest) -> None:
    del m["inputs"]


@case("dtype_evil")
def craft_dtype_evil(root: Path, m: Manifest) -> None:
    m["inputs"][0]["dtype"] = "evil"


@case("dim_float")
def craft_dim_float(root: Path, m: Manifest) -> None:
    m["inputs"][0]["shape"][1] = 3.5


@case("golden_no_sizes")
def craft_golden_no_sizes(root: Path, m: Manifest) -> None:
    del golden_set(m, "base")["sizes"]


@case("example_huge")
def craft_example_huge(root: Path, m: Manifest) -> None:
    m["input_examples"]["batch"] = 10**12


@case("example_too_many_elements")
def craft_example_too_many_elements(root: Path, m: Manifest) -> None:
    """Each size in range, but x at its example would be 2^24 x 64 = 2^30 elements."""
    m["input_examples"]["batch"] = 2**24
    m["inputs"][0]["shape"] = ["batch", 64]


def crafted(out: Path) -> None:
    for name, (base, rehash, craft) in CASES.items():
        root = out / "crafted" / name
        shutil.copytree(out / base, root, symlinks=True)
        manifest = load(root)
        craft(root, manifest)
        if rehash:
            rehash_golden(root, manifest)
        save(root, manifest)


# ---- Ed25519 (RFC 8032 §6 reference algorithm; fixtures only: slow, not constant-time) --------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")  # SubjectPublicKeyInfo, OID 1.3.101.112
SPKI_X25519 = bytes.fromhex("302a300506032b656e032100")  # OID 1.3.101.110: not a signing key
Point = tuple[int, int, int, int]


def _add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s: int, p: Point) -> Point:
    q: Point = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _encode(p: Point) -> bytes:
    zinv = pow(p[2], P - 2, P)
    x, y = p[0] * zinv % P, p[1] * zinv % P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _base() -> Point:
    y = 4 * pow(5, P - 2, P) % P
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    if x & 1:
        x = P - x
    return (x, y, 1, x * y % P)


G = _base()


def _expand(secret: bytes) -> tuple[int, bytes]:
    h = hashlib.sha512(secret).digest()
    a = int.from_bytes(h[:32], "little")
    return (a & ((1 << 254) - 8)) | (1 << 254), h[32:]


def public_key(secret: bytes) -> bytes:
    return _encode(_mul(_expand(secret)[0], G))


def sign(secret: bytes, message: bytes) -> bytes:
    a, prefix = _expand(secret)
    public = _encode(_mul(a, G))
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % L
    big_r = _encode(_mul(r, G))
    h = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    return big_r + int.to_bytes((r + h * a) % L, 32, "little")


def pem(der: bytes) -> str:
    return (
        f"-----BEGIN PUBLIC KEY-----\n{base64.b64encode(der).decode()}\n-----END PUBLIC KEY-----\n"
    )


def signed(out: Path) -> None:
    # RFC 8032 §7.1, test 1: the algorithm above is the standard one.
    rfc = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert public_key(rfc).hex().startswith("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af02")
    assert sign(rfc, b"").hex().startswith("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e0")
    signer = hashlib.sha256(b"edgeport fixture signer").digest()
    other = hashlib.sha256(b"edgeport fixture other key").digest()
    keys = out / "keys"
    keys.mkdir()
    (keys / "signer.pub").write_text(pem(SPKI_ED25519 + public_key(signer)))
    (keys / "other.pub").write_text(pem(SPKI_ED25519 + public_key(other)))
    (keys / "x25519.pub").write_text(pem(SPKI_X25519 + public_key(signer)))
    (keys / "garbage.pub").write_text(
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
    )

    def copy(name: str) -> Path:
        root = out / name
        shutil.copytree(out / "tiny", root)
        (root / "manifest.json.sig").write_bytes(
            sign(signer, (root / "manifest.json").read_bytes())
        )
        return root

    copy("signed")
    root = copy("signed_manifest_changed")  # one byte of the manifest, after signing
    text = (root / "manifest.json").read_bytes()
    (root / "manifest.json").write_bytes(text.replace(b'"fixture"', b'"fixturf"'))
    root = copy("signed_artifact_swapped")  # another model, its sha256 rewritten, not re-signed
    manifest = load(root)
    set_model(root, manifest, model(kind="all42"))
    save(root, manifest)
    root = copy("signed_short_signature")
    (root / "manifest.json.sig").write_bytes((root / "manifest.json.sig").read_bytes()[:63])


# ---- fuzz seeds ---------------------------------------------------------------------------


def zeros_npy(shape: str, elements: int) -> bytes:
    """The bytes fuzz_readers.cpp writes into its bundle directory (zeros_npy there)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return (
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", len(header))
        + header.encode()
        + bytes(4 * elements)
    )


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def batching_seed(batch: int, *arrays: np.ndarray) -> bytes:
    body = bytes([3, batch])
    for array in arrays:
        data = npy_bytes(array)
        body += struct.pack("<H", len(data)) + data
    return body


def fuzz_manifest() -> bytes:
    """A manifest naming the fuzz target's files (hashes included), for case 4."""
    files = {
        "golden/x.npy": zeros_npy("(2, 4)", 8),
        "golden/scale.npy": zeros_npy("(2, 1)", 2),
        "golden/y.npy": zeros_npy("(2, 3)", 6),
        "golden/short.npy": zeros_npy("(3, 1)", 3),
        "golden/scalar.npy": zeros_npy("()", 1),
    }
    hashes = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    entry = {"path": "model.onnx", "sha256": "0" * 64, "format": "onnx", "precision": "fp32"}
    manifest = {
        "schema": "edgeport.bundle/1",
        **IO,
        "artifacts": {
            "onnx-fp32": {
                **entry,
                "tolerance": {"rtol": 1e-2, "atol": 1e-9},
                "external_data": [{"path": "out/etc/passwd", "sha256": "0" * 64}],
            },
            "onnx-int8": {**entry, "precision": "int8", "golden_sets": ["batched", "odd"]},
        },
        "golden": {
            "sets": [
                {
                    "name": "whole",
                    "sizes": {"batch": 2},
                    "inputs": {"x": "golden/x.npy", "scale": "golden/scale.npy"},
                    "outputs": {"y": "golden/y.npy"},
                    "sha256": hashes,
                },
                {
                    "name": "batched",
                    "sizes": {"batch": 2},
                    "batch": 1,
                    "inputs": {"x": "golden/x.npy", "scale": "golden/short.npy"},
                    "outputs": {"y": "golden/scalar.npy"},
                    "sha256": hashes,
                },
                {
                    "name": "odd",
                    "sizes": {},
                    "batch": 2,
                    "inputs": {"x": "golden/scalar.npy", "scale": "../escape.npy"},
                    "outputs": {"y": "out/etc/hostname"},
                    "sha256": {"golden/scalar.npy": hashes["golden/scalar.npy"]},
                },
            ]
        },
        "recommended": {"artifact": "onnx-int8"},
    }
    return json.dumps(manifest).encode()


def seeds(out: Path) -> None:
    seeds = out / "seeds"
    seeds.mkdir()
    for i, path in enumerate(sorted(out.glob("tiny/golden/*.npy"))):
        (seeds / f"npy{i}").write_bytes(b"\x00" + path.read_bytes())
    (seeds / "manifest").write_bytes(b"\x01" + (out / "tiny" / "manifest.json").read_bytes())
    (seeds / "onnx").write_bytes(b"\x02" + (out / "external_ok" / "model.onnx").read_bytes())
    x = np.load(out / "tiny" / "golden" / "x.npy")
    scale = np.load(out / "tiny" / "golden" / "scale.npy")
    (seeds / "batch_whole").write_bytes(batching_seed(0, x, scale))
    (seeds / "batch_one").write_bytes(batching_seed(1, x, scale))
    (seeds / "batch_disagree").write_bytes(batching_seed(1, x, np.ones((3, 1), np.float32)))
    (seeds / "batch_scalar").write_bytes(batching_seed(2, np.float32(1), x))
    (seeds / "batch_empty").write_bytes(batching_seed(3, np.zeros((0, 4), np.float32)))
    (seeds / "run_fuzz_root").write_bytes(b"\x04" + fuzz_manifest())
    (seeds / "run_tiny").write_bytes(b"\x04" + (out / "tiny" / "manifest.json").read_bytes())
    for path in sorted(out.glob("crafted/*/manifest.json")):
        (seeds / f"run_{path.parent.name}").write_bytes(b"\x04" + path.read_bytes())


def main() -> None:
    out = Path(sys.argv[1])
    shutil.rmtree(out, ignore_errors=True)
    bundle(out / "tiny")
    shutil.copytree(out / "tiny", out / "tampered")
    data = bytearray((out / "tampered" / "model.onnx").read_bytes())
    data[-20] ^= 0x01
    (out / "tampered" / "model.onnx").write_bytes(bytes(data))
    shutil.copytree(out / "tiny", out / "corrupt_manifest")
    (out / "corrupt_manifest" / "manifest.json").write_text(
        '{"schema": "edgeport.bundle/1", "artif'
    )
    shutil.copytree(out / "tiny", out / "wrong_schema")
    text = (out / "tiny" / "manifest.json").read_text()
    (out / "wrong_schema" / "manifest.json").write_text(text.replace("bundle/1", "bundle/9"))
    bundle(out / "external_ok", external="weights.bin")
    bundle(out / "escape" / "b", external="../outside.bin", listed=False)
    bundle(out / "unlisted", external="weights.bin", listed=False)
    evil = model()
    evil.graph.node[-1].output[0] = "../../evil"
    evil.graph.output[0].name = "../../evil"
    (out / "evil").mkdir()
    onnx.save(evil, str(out / "evil" / "model.onnx"))
    crafted(out)
    signed(out)
    seeds(out)
    print(f"fixtures written to {out} ({len(CASES)} crafted bundles)")


if __name__ == "__main__":
    main()
