from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import edgeport
from edgeport.errors import EdgeportError
from edgeport.runtime import Session, SessionOptions, available_providers
from edgeport.runtime.providers import resolve

Exported = Callable[[str], edgeport.Bundle]
HAS_CUDA_EP = "CUDAExecutionProvider" in available_providers()


def test_opens_the_recommended_artifact_and_matches_golden(exported: Exported) -> None:
    bundle = exported("small_cnn")
    session = Session(bundle.root)
    assert session.artifact == "onnx-fp32"
    assert session.provider == "cpu"
    assert [(s.name, s.dtype, s.shape) for s in session.inputs] == [
        ("input", "float32", (1, 1, 16, 16))
    ]
    gset = bundle.golden_sets()[0]
    out = session.run(gset.inputs)
    assert out.provider == "cpu"
    np.testing.assert_allclose(out["output"], gset.outputs["output"], rtol=1e-4, atol=1e-6)


def test_positional_single_array_and_torch_tensor_feeds(exported: Exported) -> None:
    session = Session(exported("small_cnn").root)
    x = np.random.default_rng(0).standard_normal((1, 1, 16, 16), dtype=np.float32)
    by_name = session.run({"input": x})["output"]
    np.testing.assert_array_equal(session.run([x])["output"], by_name)
    np.testing.assert_array_equal(session.run(x)["output"], by_name)
    np.testing.assert_array_equal(session.run(torch.from_numpy(x))["output"], by_name)


@pytest.mark.parametrize(
    ("feeds", "match"),
    [
        (
            {"imgae": np.zeros((1, 3, 16, 16), np.float32), "meta": np.zeros((1, 4), np.float32)},
            r"unknown input 'imgae' \(did you mean 'image'\?\); missing input 'image' for "
            r"onnx-fp32. Expected exactly these inputs: image float32\[batch, 3, 16, 16\], "
            r"meta float32\[batch, 4\]",
        ),
        (
            {"image": np.zeros((1, 3, 16, 16), np.float32)},
            r"missing input 'meta' for onnx-fp32",
        ),
        (
            {
                "image": np.zeros((1, 3, 16, 16), np.float32),
                "meta": np.zeros((1, 4), np.float32),
                "extra": np.zeros(1),
            },
            r"unknown input 'extra' for onnx-fp32",
        ),
        (
            {"image": np.zeros((1, 3, 16, 16), np.float64), "meta": np.zeros((1, 4), np.float32)},
            r"input 'image' has dtype float64. Expected float32 \(image float32\[batch, 3, 16, "
            r"16\]\). Fix: convert it \(x.astype\(np.float32\)\) or open the session with "
            r"cast=True; edgeport never casts silently",
        ),
        (
            {"image": np.zeros((3, 16, 16), np.float32), "meta": np.zeros((1, 4), np.float32)},
            r"input 'image' has rank 3 \(shape \[3, 16, 16\]\). Expected rank 4: image "
            r"float32\[batch, 3, 16, 16\] \(add a batch dim: x\[None\]\)",
        ),
        (
            {"image": np.zeros((1, 1, 16, 16), np.float32), "meta": np.zeros((1, 4), np.float32)},
            r"input 'image' has size 1 at axis 1 \(shape \[1, 1, 16, 16\]\). Expected 3 at axis 1",
        ),
        (
            {"image": np.zeros((2, 3, 16, 16), np.float32), "meta": np.zeros((3, 4), np.float32)},
            r"symbolic dim 'batch' is 2 in input 'image' but 3 in input 'meta'",
        ),
    ],
    ids=["misspelled", "missing", "extra", "dtype", "rank", "fixed-dim", "symbolic-mismatch"],
)
def test_validation_errors(exported: Exported, feeds: dict[str, np.ndarray], match: str) -> None:
    session = Session(exported("two_inputs_dict_output").root)
    with pytest.raises(EdgeportError, match=match):
        session.run(feeds)
    assert session.metrics()["errors"] == 1
    assert session.metrics()["runs"] == 0


def test_cast_is_explicit(exported: Exported) -> None:
    root = exported("small_cnn").root
    x = np.ones((1, 1, 16, 16), np.float64)
    out = Session(root, cast=True).run({"input": x})["output"]
    ref = Session(root).run({"input": x.astype(np.float32)})["output"]
    np.testing.assert_array_equal(out, ref)


@pytest.mark.skipif(HAS_CUDA_EP, reason="checks the CPU-only build's refusal")
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_provider_fails_closed_on_a_cpu_only_build(exported: Exported, provider: str) -> None:
    ort_name = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
    with pytest.raises(
        EdgeportError,
        match=rf"provider '{provider}' \({ort_name[provider]}\) is not usable: this onnxruntime "
        r"build has .*cpu.*Available: .*CPUExecutionProvider.*install onnxruntime-gpu.*"
        r"allow_fallback=True",
    ):
        Session(exported("small_cnn").root, provider=provider)


@pytest.mark.skipif(HAS_CUDA_EP, reason="checks the CPU-only build's fallback")
def test_fallback_is_explicit_and_labeled(exported: Exported) -> None:
    session = Session(exported("small_cnn").root, provider="cuda", allow_fallback=True)
    assert session.provider == "cpu"
    out = session.run(np.zeros((1, 1, 16, 16), np.float32))
    assert out.provider == "cpu"
    assert session.metrics()["labels"] == {"artifact": "onnx-fp32", "provider": "cpu"}


def test_unknown_provider() -> None:
    with pytest.raises(EdgeportError, match=r"unknown provider 'npu'. Available: cpu, cuda, "):
        resolve("npu")


def test_provider_plan_for_cuda_build() -> None:
    have = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    plan = resolve("tensorrt", available=have, device_id=1)
    assert [p if isinstance(p, str) else p[0] for p in plan.ort_providers] == have
    assert plan.ort_providers[1] == ("CUDAExecutionProvider", {"device_id": 1, "use_tf32": 0})
    tf32 = resolve("cuda", available=have, tf32=True)
    assert tf32.ort_providers[0] == ("CUDAExecutionProvider", {"device_id": 0, "use_tf32": 1})


def test_torchscript_needs_trust(exported: Exported) -> None:
    bundle = exported("small_cnn")
    with pytest.raises(
        EdgeportError,
        match=r"opening torchscript artifact 'torchscript-fp32' \(model.ts\) would run",
    ):
        Session(bundle.root, "torchscript-fp32")
    session = Session(bundle.root, "torchscript-fp32", trust_code=True)
    gset = bundle.golden_sets()[0]
    np.testing.assert_array_equal(session.run(gset.inputs)["output"], gset.outputs["output"])


def test_placement_report(exported: Exported) -> None:
    placement = Session(exported("small_cnn").root).placement()
    assert list(placement) == ["CPUExecutionProvider"]
    assert placement["CPUExecutionProvider"]["Conv"] == 2


def test_metrics_and_prometheus(exported: Exported) -> None:
    session = Session(exported("transformer_encoder").root)
    for batch, seq in [(1, 5), (1, 5), (2, 9)]:
        session.run({"tokens": np.zeros((batch, seq), np.int64)})
    with pytest.raises(EdgeportError):
        session.run({"tokens": np.zeros((2, 9), np.int32)})
    snap = session.metrics()
    assert (snap["runs"], snap["errors"]) == (3, 1)
    assert snap["input_shapes"] == {"tokens:1x5": 2, "tokens:2x9": 1}
    latency = snap["latency_seconds"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"] < 1.0
    text = session.prometheus()
    labels = 'artifact="onnx-fp32",provider="cpu"'
    assert f"edgeport_session_runs_total{{{labels}}} 3\n" in text
    assert f"edgeport_session_errors_total{{{labels}}} 1\n" in text
    assert f'edgeport_session_latency_seconds_bucket{{{labels},le="+Inf"}} 3\n' in text
    assert f'edgeport_session_input_shape_total{{{labels},input="tokens",shape="1x5"}} 2' in text


def test_session_options_are_validated() -> None:
    with pytest.raises(EdgeportError, match=r"unknown graph optimization level 'max'"):
        SessionOptions(graph_optimization="max")
    with pytest.raises(EdgeportError, match=r"threads=0 must be at least 1"):
        SessionOptions(threads=0)


def test_concurrent_runs_match_single_threaded(exported: Exported) -> None:
    session = Session(exported("transformer_encoder").root, options=SessionOptions(spinning=False))
    rng = np.random.default_rng(0)
    shapes = [(1, 7), (2, 12), (3, 5), (4, 16), (8, 3)]
    inputs = [rng.integers(0, 10, size=shapes[i % len(shapes)]) for i in range(32)]
    expected = [session.run({"tokens": x})["output"] for x in inputs]
    mismatches: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def worker(tid: int) -> None:
        try:
            for i in range(200):
                k = (tid * 7 + i) % len(inputs)
                if not np.array_equal(session.run({"tokens": inputs[k]})["output"], expected[k]):
                    mismatches.append((tid, i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert mismatches == []
    assert session.metrics()["runs"] == len(inputs) + 16 * 200


def test_missing_path_and_bare_onnx(exported: Exported, tmp_path: Path) -> None:
    with pytest.raises(EdgeportError, match=r"'nope.onnx' does not exist"):
        Session("nope.onnx")
    session = Session(exported("small_cnn").path_of("onnx-fp32"))
    assert session.artifact == "model.onnx"
    assert [s.shape for s in session.inputs] == [(1, 1, 16, 16)]


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA_EP, reason="needs onnxruntime-gpu with a usable CUDA provider")
def test_cuda_provider_matches_cpu(exported: Exported) -> None:
    root = exported("resnet18").root
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32)
    gpu = Session(root, provider="cuda")
    assert gpu.provider == "cuda"
    got = gpu.run(x)
    assert got.provider == "cuda"
    cpu = Session(root).run(x)["output"]
    # TF32 is off by default, so CUDA keeps fp32 parity (with TF32 the logits differ by ~2e-3).
    np.testing.assert_allclose(got["output"], cpu, rtol=1e-3, atol=1e-4)
    assert "CUDAExecutionProvider" in gpu.placement()
    tf32 = Session(root, provider="cuda", options=SessionOptions(tf32=True)).run(x)["output"]
    assert 1e-5 < np.abs(tf32 - cpu).max() < 2e-2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU for torch")
def test_torchscript_cuda_matches_cpu(exported: Exported) -> None:
    root = exported("resnet18").root
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32)
    gpu = Session(root, "torchscript-fp32", provider="cuda", trust_code=True)
    cpu = Session(root, "torchscript-fp32", trust_code=True)
    assert gpu.provider == "cuda"
    # torch's CUDA kernels differ from its CPU ones by up to 2e-3 on these logits (H100,
    # torch 2.11), with cuDNN's TF32 on or off and even with cuDNN disabled.
    np.testing.assert_allclose(gpu.run(x)["output"], cpu.run(x)["output"], rtol=1e-2, atol=1e-3)


@pytest.mark.cuda
@pytest.mark.skipif(
    not (HAS_CUDA_EP and torch.cuda.is_available()),
    reason="needs onnxruntime-gpu and a CUDA build of torch on a GPU",
)
def test_cuda_tensors_are_bound_without_a_host_copy(exported: Exported) -> None:
    root = exported("small_cnn").root
    x = torch.randn(1, 1, 16, 16, device="cuda")
    out = Session(root, provider="cuda").run({"input": x})
    ref = Session(root).run({"input": x.cpu().numpy()})
    np.testing.assert_allclose(out["output"], ref["output"], rtol=1e-3, atol=1e-4)
