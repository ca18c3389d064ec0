"""Write the C++ tests' fixture bundles (numpy + onnx only; no torch): a tiny two-input model,
and broken variants of it (tampered artifact, corrupt manifest, external data outside the bundle
or missing from the manifest), plus seed inputs for the fuzz target.

    python cpp/tests/make_fixtures.py OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)


def model(external: str | None = None) -> onnx.ModelProto:
    """y = relu(x @ W + b) * scale; x [batch, 4], scale [batch, 1]."""
    w = numpy_helper.from_array(W, "W")
    if external is not None:
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external), ("offset", "0"), ("length", str(W.nbytes))):
            entry = w.external_data.add()
            entry.key, entry.value = key, value
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["r"]),
            helper.make_node("Mul", ["r", "scale"], ["y"]),
        ],
        "tiny",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["batch", 1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [w, numpy_helper.from_array(B, "b")],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
        "inputs": [
            {"name": "x", "dtype": "float32", "shape": ["batch", 4]},
            {"name": "scale", "dtype": "float32", "shape": ["batch", 1]},
        ],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 3]}],
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
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


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
    seeds = out / "seeds"
    seeds.mkdir()
    for i, path in enumerate(sorted(out.glob("tiny/golden/*.npy"))):
        (seeds / f"npy{i}").write_bytes(b"\x00" + path.read_bytes())
    (seeds / "manifest").write_bytes(b"\x01" + (out / "tiny" / "manifest.json").read_bytes())
    (seeds / "onnx").write_bytes(b"\x02" + (out / "external_ok" / "model.onnx").read_bytes())
    print(f"fixtures written to {out}")


if __name__ == "__main__":
    main()
