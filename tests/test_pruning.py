"""Structured pruning: real channel removal across torchvision architectures, export + parity of
the pruned model, save/reload without pickle, recovery by distillation on real data, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import edgeport
from conftest import run_cli
from edgeport.demo import digits_16, small_cnn, train_digits_cnn
from edgeport.errors import EdgeportError
from edgeport.pruning import PruneOptions, RecoverOptions, apply_plan, load_pruned, prune

MODELS = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "densenet121",
    "regnet_y_400mf",
    pytest.param(
        "shufflenet_v2_x1_0",
        marks=pytest.mark.xfail(
            strict=True,
            raises=EdgeportError,
            reason="Torch-Pruning's DependencyGraph cannot follow ShuffleNet's channel_shuffle "
            "(view → transpose → view): ZeroDivisionError in its reshape index mapping",
        ),
    ),
    "convnext_tiny",
    "vit_b_16",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_torchvision_models_prune_export_and_pass_parity(name: str, tmp_path: Path) -> None:
    shape = "1x3x224x224" if name.startswith("vit") else "1x3x64x64"
    bundle = prune(
        f"torchvision:{name}",
        [f"input:{shape}"],
        out=tmp_path / name,
        options=PruneOptions(ratio=0.3),
    )
    entry = bundle.manifest["pruning"]
    assert entry["params_after"] < 0.85 * entry["params_before"]
    assert entry["macs_after"] < 0.85 * entry["macs_before"]
    assert set(bundle.artifacts) == {"onnx-fp32", "torchscript-fp32"}
    for artifact in bundle.artifacts.values():
        assert artifact["passed"], artifact["parity"]  # against the pruned eager model
    assert bundle.manifest["model"]["parameters"] == entry["params_after"]


def test_default_ignores_first_conv_and_classifier(tmp_path: Path) -> None:
    bundle = prune("torchvision:resnet18", ["input:1x3x64x64"], out=tmp_path / "b")
    entry = bundle.manifest["pruning"]
    assert entry["ignored"] == ["conv1", "fc"]
    plan = json.loads((tmp_path / "b" / "pruning" / "plan.json").read_text())
    assert "conv1" not in plan["modules"]  # its 64 outputs stay
    assert plan["modules"]["layer2.0.conv1"] == {"out_channels": 64}  # 128 × (1 - 0.5)
    assert entry["options"]["round_to"] == 8
    assert entry["macs_ratio"] == pytest.approx(
        entry["macs_after"] / entry["macs_before"], rel=1e-9
    )


@pytest.mark.slow
def test_reload_in_a_fresh_process_gives_identical_outputs(tmp_path: Path) -> None:
    root = tmp_path / "b"
    prune(
        "torchvision:mobilenet_v3_small",
        ["input:batch=1x3x64x64"],
        out=root,
        options=PruneOptions(ratio=0.4, importance="l2"),
        formats=("onnx",),
    )
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    with torch.inference_mode():
        here = load_pruned(root).module(torch.from_numpy(x)).numpy()
    script = (
        "import sys, numpy as np, torch\n"
        "from edgeport.pruning import load_pruned\n"
        "m = load_pruned(sys.argv[1]).module\n"
        "with torch.inference_mode():\n"
        "    np.save(sys.argv[3], m(torch.from_numpy(np.load(sys.argv[2]))).numpy())\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(root), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        check=True,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), here)
    onnx_out = edgeport.Session(root).run({"input": x})["output"]
    np.testing.assert_allclose(onnx_out, here, rtol=1e-4, atol=1e-5)
    # The saved state dict is safetensors and the plan JSON: nothing is unpickled.
    assert (root / "pruning" / "state_dict.safetensors").read_bytes()[:8] != b"\x80\x04\x95"


def test_tampered_plan_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "b"
    prune("torchvision:resnet18", ["input:1x3x64x64"], out=root, formats=("onnx",))
    plan = root / "pruning" / "plan.json"
    plan.write_text(plan.read_text().replace('"out_channels": 64', '"out_channels": 96', 1))
    with pytest.raises(EdgeportError, match=r"sha256 of 'pruning/plan.json' is .*, manifest says"):
        load_pruned(root)


def test_plan_that_does_not_fit_is_an_error() -> None:
    with pytest.raises(EdgeportError, match=r"names module 'layer9', which this model does not"):
        apply_plan(small_cnn(), {"layer9": {"out_channels": 8}}, {})


def test_digits_distillation_recovers_accuracy(tmp_path: Path) -> None:
    """Real data: the digits CNN pruned 50%, then distilled from the unpruned model on the
    training images without their labels."""
    model, _ = train_digits_cnn()
    x_train, _, x_test, y_test = digits_16()
    np.savez(tmp_path / "train.npz", image=x_train)  # no labels: distillation needs none
    np.savez(tmp_path / "test.npz", image=x_test, labels=y_test)
    bundle = prune(
        model,
        ["image:batch=1x1x16x16"],
        out=tmp_path / "b",
        options=PruneOptions(ratio=0.5),
        recovery=RecoverOptions(method="distill", data=str(tmp_path / "train.npz"), steps=300),
        eval_data=str(tmp_path / "test.npz"),
    )
    entry = bundle.manifest["pruning"]
    unpruned, pruned, recovered = (
        entry["accuracy_unpruned"],
        entry["accuracy_pruned"],
        entry["accuracy_recovered"],
    )
    print(f"digits: unpruned {unpruned:.2%}, pruned {pruned:.2%}, distilled {recovered:.2%}")
    assert unpruned > 0.95
    assert recovered >= unpruned - 0.015
    assert recovered > pruned  # recovery did something measurable
    assert entry["params_ratio"] < 0.6
    curve = entry["recovery"]["loss_curve"]
    assert entry["recovery"]["method"] == "distill"
    assert np.mean(curve[-20:]) < np.mean(curve[:20])
    # The report shows the pruning figures and the recovery's loss curve.
    from edgeport.benchmarks.harness import BenchOptions, run_bench
    from edgeport.benchmarks.report import write_reports

    report = run_bench(bundle.root, BenchOptions(duration=0.2, blocks=2))
    page = write_reports(report, bundle.root)["html"].read_text()
    assert 'data-plot="recovery"' in page
    assert f"recovered {recovered:.2%}" in page


@pytest.mark.slow
def test_cli_prune_and_its_errors(tmp_path: Path) -> None:
    for flags, message in (
        (("--ratio", "1.5"), "error: pruning ratio 1.5 is out of range (--ratio, --prune)"),
        (("--recover", "distill"), "error: --recover distill needs --data"),
        (("--ignore", "conv9"), "error: no module named 'conv9' in the model"),
    ):
        result = run_cli(
            "prune", "torchvision:resnet18", "--input", "input:1x3x64x64", *flags,
            "--out", str(tmp_path / "b"),
        )  # fmt: skip
        assert result.returncode == 2
        assert message in result.stderr
    result = run_cli(
        "prune", "torchvision:resnet18", "--input", "input:batch=1x3x64x64", "--ratio", "0.25",
        "--format", "onnx", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "pruned torchvision:resnet18: params 11,689,512 → " in result.stdout
    assert "onnx-fp32: parity passed against the pruned eager model: True" in result.stdout
    verify = run_cli("verify", str(tmp_path / "b"), "--sizes", "batch=1")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_importance_criteria_choose_different_channels() -> None:
    """Every registered criterion prunes to the same widths; they disagree on which channels."""
    import torchvision

    from edgeport.pruning import IMPORTANCE, prune_model

    images = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    chosen = {}
    for importance in IMPORTANCE:
        torch.manual_seed(0)
        model = torchvision.models.resnet18().eval()
        original = model.layer1[0].conv1.weight.detach().clone().flatten(1)
        data = iter([(torch.from_numpy(images),)]) if importance == "taylor" else None
        result = prune_model(
            model, (torch.from_numpy(images[:1]),), PruneOptions(ratio=0.5, importance=importance),
            data=data,
        )  # fmt: skip
        assert result.plan["layer1.0.conv1"] == {"out_channels": 32}
        kept = model.layer1[0].conv1.weight.detach().flatten(1)  # input channels unchanged
        rows = [int((original == row).all(1).nonzero()[0]) for row in kept]
        assert len(set(rows)) == 32
        chosen[importance] = tuple(sorted(rows))
    assert chosen["l1"] != chosen["taylor"]
    assert len(set(chosen.values())) >= 3
    with pytest.raises(EdgeportError, match=r"importance 'taylor' needs data"):
        prune_model(
            torchvision.models.resnet18().eval(),
            (torch.from_numpy(images[:1]),),
            PruneOptions(importance="taylor"),
        )


def test_recovery_reports_progress_and_needs_labels_to_finetune() -> None:
    from edgeport import _progress
    from edgeport.data import SampleSet
    from edgeport.pruning import recover

    images = np.random.default_rng(0).standard_normal((8, 1, 16, 16)).astype(np.float32)
    data = SampleSet("test", {"image": images})
    seen: list[str] = []
    _progress.add_listener(seen.append)
    try:
        record = recover(small_cnn(), small_cnn(), data, method="distill", steps=10, batch=4)
    finally:
        _progress.remove_listener(seen.append)
    assert len(record.losses) == 10
    assert seen[-1].startswith("recovering accuracy (distill, 10 steps) [########")
    assert "100% loss " in seen[-1]
    with pytest.raises(EdgeportError, match=r"--recover finetune needs labels in the data"):
        recover(small_cnn(), small_cnn(), data, method="finetune", steps=1)
