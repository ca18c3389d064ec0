from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import edgeport
from conftest import run_cli
from edgeport.demo import digits_16, train_digits_cnn
from edgeport.errors import CheckFailed, EdgeportError
from edgeport.quantization import QuantizeOptions, quantize
from edgeport.verify import verify_bundle


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A small CNN trained on scikit-learn's digits, its bundle, and calib/eval files."""
    root = tmp_path_factory.mktemp("digits")
    model, accuracy = train_digits_cnn()
    x_train, _, x_test, y_test = digits_16()
    np.savez(root / "calib.npz", image=x_train[:256])
    np.savez(root / "eval.npz", image=x_test, labels=y_test)
    edgeport.export(model, ["image:batch=1x1x16x16"], out=root / "fp32")
    return {"root": root, "model": model, "accuracy": accuracy}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_static_int8_on_digits_stays_within_half_a_point(
    digits: dict[str, object], tmp_path: Path
) -> None:
    root = Path(str(digits["root"]))
    assert float(str(digits["accuracy"])) > 0.95  # the CNN really learned the digits
    bundle_dir = _copy(root / "fp32", tmp_path / "b")
    options = QuantizeOptions(
        calib=str(root / "calib.npz"), eval=str(root / "eval.npz"), max_drop=0.5
    )
    bundle = quantize(bundle_dir, options)
    entry = bundle.artifact("onnx-int8-static")
    evaluation = entry["evaluation"]
    assert evaluation["samples"] == 450  # the whole test split
    assert evaluation["accuracy_fp32"] > 0.95
    assert evaluation["drop_pp"] <= 0.5
    assert evaluation["drop_pp"] == pytest.approx(
        (evaluation["accuracy_fp32"] - evaluation["accuracy_int8"]) * 100
    )
    assert entry["recipe"]["mode"] == "static"
    assert entry["recipe"]["mode_reason"].startswith("conv-heavy: Conv 90% of 3.0 M MACs")
    assert entry["recipe"]["format"] == "qdq"
    assert entry["recipe"]["per_channel"] is True
    assert set(entry["recipe"]["preprocess"]["measured"]) == {"preprocessed", "raw"}
    structure = entry["structure"]
    assert structure["quantize_linear"] >= 5
    assert structure["float_ops"] == {}
    assert structure["initializer_dtypes"]["int8"] == 4 * 2  # 4 weights + 4 weight zero points
    speed = entry["speed"]
    assert (speed["provider"], speed["batch"], speed["threads"], speed["spinning"]) == (
        "cpu", 1, 0, True,
    )  # fmt: skip
    assert speed["speedup_vs_fp32"] == pytest.approx(
        speed["fp32"]["p50_ms"] / speed["int8"]["p50_ms"]
    )
    low, high = speed["speedup_ci95"]
    assert low <= speed["speedup_vs_fp32"] <= high
    assert entry["kept_in_float"] == []
    assert verify_bundle(bundle.root).passed
    # The recommendation follows the one rule from the speed check's own numbers.
    clear = low > 1.0
    assert bundle.manifest["recommended"]["artifact"] == (
        "onnx-int8-static" if clear else "onnx-fp32"
    )
    if clear:
        assert "quantize's speed check, interleaved" in bundle.manifest["recommended"]["reason"]


def test_max_drop_reverts_the_sensitive_nodes(digits: dict[str, object], tmp_path: Path) -> None:
    """A function-preserving rescale (one channel ×1000, its consumer ÷1000) wrecks per-tensor
    activation ranges; the budget loop must find and keep those tensors in float."""
    root = Path(str(digits["root"]))
    model = digits["model"]
    assert isinstance(model, torch.nn.Sequential)
    outlier = copy.deepcopy(model)
    with torch.no_grad():
        outlier[0].weight[0] *= 1000
        outlier[0].bias[0] *= 1000
        outlier[2].weight[:, 0] /= 1000
    edgeport.export(outlier, ["image:batch=1x1x16x16"], out=tmp_path / "b")
    result = run_cli(
        "quantize",
        str(tmp_path / "b"),
        "--calib",
        str(root / "calib.npz"),
        "--eval",
        str(root / "eval.npz"),
        "--max-drop",
        "0.5",
        "--preprocess",
        "off",
    )
    assert result.returncode == 0, result.stderr
    print(result.stdout)
    entry = edgeport.load_bundle(tmp_path / "b").artifact("onnx-int8-static")
    kept = entry["kept_in_float"]
    assert len(kept) >= 1
    # The rescaled channel wrecks the range of the activation between the two convs: keeping
    # that tensor float (its producer and consumer unquantized) restores the output most.
    assert kept[0]["kind"] == "activation"
    assert kept[0]["tensor"] == "relu"
    assert kept[0]["nodes"] == ["node_conv2d", "node_conv2d_1"]
    assert kept[0]["cosine_gain"] > 0.1
    assert "kept in float: activation relu (alone it restores +0." in result.stdout
    assert entry["evaluation"]["drop_pp"] <= 0.5
    assert entry["speed"]["revert_latency_cost"] > 0
    # The report lists them too (report.json, report.md, report.html).
    from edgeport.benchmarks.harness import BenchOptions, run_bench
    from edgeport.benchmarks.report import html_report, markdown

    report = run_bench(tmp_path / "b", BenchOptions(duration=0.2, blocks=2, baselines=False))
    listed = report["kept_in_float"]["onnx-int8-static"]
    assert [t["tensor"] for t in listed["tensors"]] == [t["tensor"] for t in kept]
    assert listed["latency_cost"] == entry["speed"]["revert_latency_cost"]
    line = "onnx-int8-static: activation relu kept in float (alone it restores +0."
    assert line in markdown(report)
    page = html_report(report)
    assert 'id="kept-in-float"' in page
    assert line in page
    with pytest.raises(
        CheckFailed,
        match=r"misses the accuracy budget on 450 evaluation samples: "
        r"cosine 0\.\d+ < 0\.99.*accuracy drop \d+\.\d+ points > --max-drop 0\.5",
    ):
        quantize(
            tmp_path / "b",
            QuantizeOptions(
                calib=str(root / "calib.npz"),
                eval=str(root / "eval.npz"),
                max_drop=0.5,
                preprocess="off",
                max_reverts=0,
            ),
        )


def test_transformer_is_quantized_dynamically(exported: object, tmp_path: Path) -> None:
    from catalog import CATALOG

    entry = CATALOG["transformer_encoder"]
    bundle = edgeport.export(
        entry.source,
        list(entry.inputs),
        out=tmp_path / "b",
        options=edgeport.ExportOptions(formats=("onnx",)),
    )
    tokens = np.random.default_rng(0).integers(0, 10, size=(64, 12))
    np.savez(tmp_path / "eval.npz", tokens=tokens)
    bundle = quantize(bundle.root, QuantizeOptions(eval=str(tmp_path / "eval.npz")))
    art = bundle.artifact("onnx-int8-dynamic")
    assert art["recipe"]["mode_reason"].startswith("MatMul/attention-heavy: Conv 0%")
    assert art["evaluation"]["cosine"] >= 0.99
    assert (
        art["structure"]["integer_ops"].get("MatMulInteger", 0)
        + art["structure"]["integer_ops"].get("DynamicQuantizeMatMul", 0)
        > 0
    )
    assert art["structure"]["initializer_dtypes"]["int8"] > 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            {"image": np.full((8, 1, 16, 16), 0.5, np.float32)},
            r"--calib '.*', input 'image' is constant \(every value is 0\.5\).*--calib random",
        ),
        (
            {"image": np.array([np.nan] * 256, np.float32).reshape(1, 1, 16, 16)},
            r"input 'image' holds 256 NaN/Inf values",
        ),
        ({"image": np.zeros((0, 1, 16, 16), np.float32)}, r"input 'image' has no samples"),
        (
            {"img": np.ones((4, 1, 16, 16), np.float32)},
            r"has no array for inputs \['image'\].*Available: img",
        ),
        (
            {"image": np.ones((4, 3, 16, 16), np.float32)},
            r"has samples of shape \[4, 3, 16, 16\]. Expected samples along axis 0 of \['batch', 1",
        ),
    ],
    ids=["constant", "nan", "empty", "wrong-name", "wrong-shape"],
)
def test_bad_calibration_data(
    digits: dict[str, object], tmp_path: Path, data: dict[str, np.ndarray], match: str
) -> None:
    np.savez(tmp_path / "calib.npz", **data)
    bundle = Path(str(digits["root"])) / "fp32"
    with pytest.raises(EdgeportError, match=match):
        quantize(bundle, QuantizeOptions(mode="static", calib=str(tmp_path / "calib.npz")))


def test_static_without_calibration_and_auto_on_a_cnn(digits: dict[str, object]) -> None:
    bundle = str(Path(str(digits["root"])) / "fp32")
    result = run_cli("quantize", bundle, "--mode", "static")
    assert result.returncode == 2
    assert "--mode static needs calibration data, and none was given" in result.stderr
    assert "--mode dynamic, which needs no calibration" in result.stderr.replace("\n", " ")
    result = run_cli("quantize", bundle)
    assert result.returncode == 2
    assert "this model is conv-heavy (Conv 90% of 3.0 M MACs" in result.stderr.replace("\n", " ")


def test_model_with_no_quantizable_ops(tmp_path: Path) -> None:
    class Affine(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x * 2 + 1)

    edgeport.export(Affine(), ["x:batch=1x8"], out=tmp_path / "b")
    result = run_cli("quantize", str(tmp_path / "b"), "--mode", "dynamic")
    assert result.returncode == 2
    assert "the model has no quantizable ops" in result.stderr.replace("\n", " ")


def test_random_calibration_is_labeled(digits: dict[str, object], tmp_path: Path) -> None:
    bundle_dir = _copy(Path(str(digits["root"])) / "fp32", tmp_path / "b")
    from edgeport.parity import Tolerance

    bundle = quantize(
        bundle_dir, QuantizeOptions(calib="random", tolerance=Tolerance(min_cosine=0.9))
    )
    entry = bundle.artifact("onnx-int8-static")
    assert entry["calibration"] == {
        "source": "random",
        "samples": 32,
        "labels": False,
        "random": True,
    }
    assert entry["warnings"] == ["calibrated on random data: accuracy on real inputs is unknown"]
    assert entry["tolerance"] == {"atol": 0.0, "min_cosine": 0.9}


def test_bad_calibration_data_exits_2_from_the_cli(
    digits: dict[str, object], tmp_path: Path
) -> None:
    np.savez(tmp_path / "calib.npz", image=np.zeros((8, 1, 16, 16), np.float32))
    bundle = str(Path(str(digits["root"])) / "fp32")
    result = run_cli("quantize", bundle, "--calib", str(tmp_path / "calib.npz"))
    assert result.returncode == 2
    assert "is constant (every value is 0.0)" in result.stderr
    assert "Traceback" not in result.stderr


def test_image_folder_and_factory_calibration(digits: dict[str, object], tmp_path: Path) -> None:
    from PIL import Image

    from edgeport.data import load_samples

    bundle = edgeport.load_bundle(Path(str(digits["root"])) / "fp32")
    x_train, y_train, _, _ = digits_16()
    for i in range(20):
        folder = tmp_path / "images" / f"class{y_train[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = ((x_train[i, 0] * 0.4 + 0.3).clip(0, 1) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    images = load_samples(str(tmp_path / "images"), bundle.inputs)
    assert images.arrays["image"].shape == (20, 1, 16, 16)
    assert images.labels is not None
    assert len(set(images.labels.tolist())) == len(
        {p.name for p in (tmp_path / "images").iterdir()}
    )
    (tmp_path / "data.py").write_text(
        "import numpy as np\n"
        "def samples():\n"
        "    rng = np.random.default_rng(0)\n"
        "    while True:\n"
        "        yield {'image': rng.standard_normal((1, 1, 16, 16)).astype(np.float32)}\n"
    )
    streamed = load_samples(f"{tmp_path / 'data.py'}:samples", bundle.inputs, max_samples=40)
    assert streamed.arrays["image"].shape == (40, 1, 16, 16)  # an endless iterator, capped


def test_dynamic_on_a_cnn_is_warned(
    digits: dict[str, object], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle_dir = _copy(Path(str(digits["root"])) / "fp32", tmp_path / "b")
    with caplog.at_level("WARNING"):
        eval_data = str(Path(str(digits["root"])) / "eval.npz")
        bundle = quantize(bundle_dir, QuantizeOptions(mode="dynamic", eval=eval_data))
    assert "dynamic quantization leaves Conv in float" in caplog.text
    entry = bundle.artifact("onnx-int8-dynamic")
    assert "Conv" not in entry["recipe"]["op_types"]
    assert entry["structure"]["float_ops"]["Conv"] == 2


def test_torchscript_int8_artifact(exported: object, tmp_path: Path) -> None:
    from catalog import CATALOG

    entry = CATALOG["two_inputs_dict_output"]
    bundle = edgeport.export(entry.source, list(entry.inputs), out=tmp_path / "b")
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "eval.npz",
        image=rng.standard_normal((64, 3, 16, 16), np.float32),
        meta=rng.standard_normal((64, 4), np.float32),
    )
    result = run_cli(
        "quantize",
        str(bundle.root),
        "--mode",
        "dynamic",
        "--torchscript",
        "--trust-code",  # rebuilding the eager model imports tests/catalog.py
        "--eval",
        str(tmp_path / "eval.npz"),
        "--min-top1",
        "0",
    )
    assert result.returncode == 0, result.stderr
    bundle = edgeport.load_bundle(tmp_path / "b")
    art = bundle.artifact("torchscript-int8-dynamic")
    assert art["precision"] == "int8"
    assert art["recipe"]["dtype"] == "qint8"
    assert art["passed"] is True, art["warnings"]
    assert art["evaluation"]["cosine"] >= 0.99
    assert set(art["parity"]["sample"]) == {"scores", "boxes"}
    assert verify_bundle(bundle.root).passed
    assert bundle.manifest["recommended"]["artifact"].startswith("onnx-")  # ONNX only
