"""Models people ship: Hugging Face directories (``hf:DIR``), timm (``timm:NAME``) and every
torchvision builder, never touching the network (issue 17).

The Hugging Face models are tiny random-init configs saved with ``save_pretrained`` by the test:
the architectures are real, the weights are not, and the code path is the one a real checkpoint
directory takes. Each exports with dynamic dims and is checked against eager PyTorch at two
sizes it was not exported at.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgeport
from conftest import run_cli
from edgeport.verify import verify_bundle

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")

TEXT = {"vocab_size": 100, "max_position_embeddings": 64}
BERTISH = {**TEXT, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
           "intermediate_size": 37}  # fmt: skip


def _hf_configs() -> dict[str, tuple[str, Any]]:
    """name → (Auto class that makes the saved model, config)."""
    t = transformers
    return {
        "bert": ("AutoModelForSequenceClassification", t.BertConfig(**BERTISH, num_labels=3)),
        "distilbert": ("AutoModel", t.DistilBertConfig(
            **TEXT, dim=32, n_layers=2, n_heads=2, hidden_dim=37)),
        "roberta": ("AutoModelForTokenClassification", t.RobertaConfig(
            **{**BERTISH, "max_position_embeddings": 66}, pad_token_id=1, num_labels=5)),
        "albert": ("AutoModel", t.AlbertConfig(**BERTISH, embedding_size=16)),
        "electra": ("AutoModelForMaskedLM", t.ElectraConfig(**BERTISH, embedding_size=16)),
        "gpt2": ("AutoModelForCausalLM", t.GPT2Config(
            vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64)),
        "llama": ("AutoModelForCausalLM", t.LlamaConfig(
            **BERTISH, num_key_value_heads=1)),
        "t5-encoder": ("AutoModel", t.T5Config(
            vocab_size=100, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=2)),
        "vit": ("AutoModelForImageClassification", t.ViTConfig(
            image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=37, num_labels=4)),
        "wav2vec2": ("AutoModel", t.Wav2Vec2Config(
            vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=37, conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3),
            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)),
        "whisper-encoder": ("AutoModel", t.WhisperConfig(
            vocab_size=100, d_model=32, encoder_layers=2, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=37,
            decoder_ffn_dim=37, num_mel_bins=16, max_source_positions=32,
            max_target_positions=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            decoder_start_token_id=1, suppress_tokens=None, begin_suppress_tokens=None)),
    }  # fmt: skip


# What each architecture's export takes and where it is checked again (two other sizes).
HF_SIZES = {
    "text": [{"batch": 3, "seq": 7}, {"batch": 1, "seq": 23}],
    "image": [{"batch": 3}, {"batch": 5}],
    "audio": [{"batch": 3, "samples": 800}, {"batch": 1, "samples": 2400}],
    "mel": [{"batch": 3}, {"batch": 2}],
}
HF_KIND = {"vit": "image", "wav2vec2": "audio", "whisper-encoder": "mel"}
HF_XFAIL: dict[str, str] = {}


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    import torch

    root = tmp_path_factory.mktemp("hf")
    made: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in made:
            auto, config = _hf_configs()[name]
            torch.manual_seed(0)
            model = getattr(transformers, auto).from_config(config)
            made[name] = root / name
            model.save_pretrained(made[name])
        return made[name]

    return make


def _golden(bundle: edgeport.Bundle, name: str) -> dict[str, np.ndarray]:
    return next(g for g in bundle.golden_sets() if g.name == name).inputs


def _check_two_more_sizes(bundle: edgeport.Bundle, sizes: list[dict[str, int]]) -> None:
    report = verify_bundle(bundle.root, eager_sizes=sizes, trust_code=True)
    assert report.passed, report.problems
    checked = set(report.artifacts["onnx-fp32"])
    assert {"eager@" + ",".join(f"{k}={v}" for k, v in s.items()) for s in sizes} <= checked


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_hf_configs()))
def test_hugging_face_architecture_exports_with_dynamic_dims(
    name: str, hf_dirs: Callable[[str], Path], tmp_path: Path
) -> None:
    if name in HF_XFAIL:
        pytest.xfail(HF_XFAIL[name])
    bundle = edgeport.export(
        f"hf:{hf_dirs(name)}",
        [],
        out=tmp_path / "b",
        options=edgeport.ExportOptions(formats=("onnx",)),
    )
    kind = HF_KIND.get(name, "text")
    inputs = {s.name: s for s in bundle.inputs}
    if kind == "text":
        ids = inputs["input_ids"]
        assert ids.shape == ("batch", "seq")
        assert ids.values is not None
        assert (ids.values.low, ids.values.high) == (0, 100)
        assert inputs["attention_mask"].values is not None
        mask = _golden(bundle, "base")["attention_mask"]
        assert mask[0].all()
        assert not mask.all()
    _check_two_more_sizes(bundle, HF_SIZES[kind])
    details = bundle.manifest["model"]["source_details"]
    assert details["task"] in ("feature-extraction", "sequence-classification",
                               "token-classification", "masked-lm", "causal-lm",
                               "image-classification")  # fmt: skip


TIMM_MODELS = [
    "resnet10t",
    "mobilenetv3_small_050",
    "efficientnet_b0",
    "convnext_atto",
    "vit_tiny_patch16_224",
    "regnetx_002",
    "ghostnet_100",
    "mobilevitv2_050",
    "levit_128s",
    "edgenext_xx_small",
    "fastvit_t8",
    "rexnet_100",
]
TIMM_XFAIL: dict[str, str] = {}


@pytest.mark.slow
@pytest.mark.parametrize("name", TIMM_MODELS)
def test_timm_model_exports_with_dynamic_batch(name: str, tmp_path: Path) -> None:
    if name in TIMM_XFAIL:
        pytest.xfail(TIMM_XFAIL[name])
    bundle = edgeport.export(
        f"timm:{name}", [], out=tmp_path / "b", options=edgeport.ExportOptions(formats=("onnx",))
    )
    assert bundle.inputs[0].shape[0] == "batch"
    _check_two_more_sizes(bundle, [{"batch": 2}, {"batch": 3}])


@pytest.mark.slow
def test_hf_text_model_gets_inputs_it_can_take(
    hf_dirs: Callable[[str], Path], tmp_path: Path
) -> None:
    """Token ids inside the vocabulary, a padded mask, token types below type_vocab_size; the
    manifest records which values each input holds, so every later generator keeps to them."""
    bundle = edgeport.export(
        f"hf:{hf_dirs('bert')}", [], out=tmp_path / "b",
        options=edgeport.ExportOptions(formats=("onnx",)),
    )  # fmt: skip
    manifest = json.loads((bundle.root / "manifest.json").read_text())
    assert manifest["inputs"] == [
        {"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"],
         "values": {"kind": "range", "low": 0, "high": 100}},
        {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "seq"],
         "values": {"kind": "mask"}},
        {"name": "token_type_ids", "dtype": "int64", "shape": ["batch", "seq"],
         "values": {"kind": "range", "low": 0, "high": 2}},
    ]  # fmt: skip
    assert manifest["model"]["source_details"]["task"] == "sequence-classification"
    assert manifest["outputs"][0]["shape"] == ["batch", 3]
    resized = _golden(bundle, "resized")
    assert resized["input_ids"].shape == (3, 17)
    assert resized["input_ids"].max() < 100
    assert set(np.unique(resized["token_type_ids"])) <= {0, 1}
    session = edgeport.Session(bundle.root)
    ids = np.arange(10, dtype=np.int64).reshape(1, 10)
    out = session.run(
        {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}
    )
    assert out["output"].shape == (1, 3)


def test_hf_task_choice_and_binding(hf_dirs: Callable[[str], Path], tmp_path: Path) -> None:
    """?task= picks the head; --input may name a subset of what the model takes."""
    from edgeport.sources import load_model

    loaded = load_model(f"hf:{hf_dirs('bert')}?task=feature-extraction")
    assert loaded.details is not None
    assert loaded.details["output"] == "last_hidden_state"
    bundle = edgeport.export(
        loaded,
        ["input_ids:batch=2xseq=8:int64:0..100"],
        out=tmp_path / "b",
        options=edgeport.ExportOptions(formats=("onnx",)),
    )
    assert [s.name for s in bundle.inputs] == ["input_ids"]
    assert bundle.manifest["outputs"][0]["shape"] == ["batch", "seq", 32]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("hf:bert-base-uncased", "error: hf:bert-base-uncased is not a local directory; it looks "
         "like a Hugging Face Hub id. Fix: edgeport never downloads: save the model with "
         "save_pretrained and pass the directory"),
        ("hf:google/flan-t5-small", "it looks like a Hugging Face Hub id"),
        pytest.param("timm:resnet181", "error: timm has no model named 'resnet181'. Available: "
                     "near matches: resnet18, resnet18d, resnet101", marks=pytest.mark.slow),
        pytest.param("timm:resnet18?pretrained=true", "pretrained=True would download weights",
                     marks=pytest.mark.slow),
        pytest.param("torchvision:resnet18?weights=DEFAULT",
                     "weights='DEFAULT' would download them", marks=pytest.mark.slow),
    ],
)  # fmt: skip
def test_bad_hub_sources_are_one_message(source: str, message: str, tmp_path: Path) -> None:
    result = run_cli("export", source, "--out", str(tmp_path / "b"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_bad_hf_directories_are_one_message(hf_dirs: Callable[[str], Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "tokenizer.json").write_text("{}")
    result = run_cli("export", f"hf:{empty}", "--out", str(tmp_path / "b"))
    assert result.returncode == 2
    assert (
        f"error: hf:{empty} has no config.json, so it is not a save_pretrained directory "
        "(it holds: tokenizer.json)" in result.stderr
    )
    result = run_cli(
        "export", f"hf:{hf_dirs('bert')}?task=clasification", "--out", str(tmp_path / "c")
    )
    assert result.returncode == 2
    assert "unknown task 'clasification'. Available: near matches:" in result.stderr
    assert "sequence-classification" in result.stderr
    assert "Traceback" not in result.stderr


NO_NETWORK = textwrap.dedent(
    """
    import socket, sys
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(repr(args)[:80])
        raise OSError("networking is disabled for this process")
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.getaddrinfo = refuse
    import gc
    import torchvision
    from edgeport.errors import EdgeportError
    from edgeport.sources import load_model
    M = torchvision.models
    names = sys.argv[1].split(",") if len(sys.argv) > 1 else (
        M.list_models(module=M) + M.list_models(module=M.segmentation)
        + M.list_models(module=M.detection))
    failed = {}
    for name in names:
        try:
            load_model("torchvision:" + name)
        except EdgeportError as exc:
            failed[name] = str(exc)
        gc.collect()
    print(len(names), "built;", "failed:", failed, "network attempts:", attempts)
    """
)


def _build_without_network(names: list[str] | None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", NO_NETWORK, *([",".join(names)] if names else [])],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_torchvision_builders_that_default_to_pretrained_backbones_stay_offline() -> None:
    names = ["lraspp_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn", "resnet18"]
    assert _build_without_network(names) == ("3 built; failed: {} network attempts: []")


@pytest.mark.slow
def test_every_torchvision_builder_is_built_without_a_network_attempt() -> None:
    import torchvision

    m = torchvision.models
    count = sum(len(m.list_models(module=mod)) for mod in (m, m.segmentation, m.detection))
    assert _build_without_network(None) == f"{count} built; failed: {{}} network attempts: []"


@pytest.mark.slow
def test_a_download_attempt_is_one_message(tmp_path: Path) -> None:
    """A builder option that asks for pretrained backbones tries the network, which is refused
    at once and said plainly."""
    result = run_cli(
        "export",
        "torchvision:lraspp_mobilenet_v3_large?weights_backbone=DEFAULT",
        "--input", "input:1x3x64x64", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "error: torchvision:lraspp_mobilenet_v3_large?weights_backbone=DEFAULT tried to " \
        "download something (edgeport never downloads)" in result.stderr  # fmt: skip
    assert "Traceback" not in result.stderr


def _tokenizer_into(directory: Path) -> list[str]:
    """A WordPiece vocabulary of 100 entries (the test bert's vocab_size) saved as a tokenizer."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words += [f"w{i}" for i in range(100 - len(words))]
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(directory)
    return words


@pytest.mark.slow
def test_the_bundle_carries_the_tokenizer_and_calibrates_on_text(
    hf_dirs: Callable[[str], Path], tmp_path: Path
) -> None:
    import shutil

    directory = tmp_path / "bert"
    shutil.copytree(hf_dirs("bert"), directory)
    words = _tokenizer_into(directory)
    bundle = edgeport.export(
        f"hf:{directory}", [], out=tmp_path / "b", options=edgeport.ExportOptions(formats=("onnx",))
    )
    carried = {Path(r["path"]).name for r in bundle.manifest["tokenizer"]["files"]}
    assert {"tokenizer.json", "vocab.txt", "tokenizer_config.json"} <= carried
    assert bundle.tokenizer_dir == bundle.root / "tokenizer"
    texts = tmp_path / "texts.txt"
    lines = [" ".join(words[5 + (i * 7 + j) % 90] for j in range(3 + i % 9)) for i in range(40)]
    texts.write_text("\n".join(lines) + "\n\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_cli("quantize", str(bundle.root), "--calib", str(texts), "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    # ONNX Runtime's symbolic shape inference gives up on this graph and saves a temp model into
    # the working directory; quantize runs it elsewhere, so the user's directory stays as it was.
    assert sorted(cwd.iterdir()) == []
    entry = json.loads(result.stdout)
    assert entry["artifact"] == "onnx-int8-dynamic"
    assert entry["evaluation"]["samples"] == 40  # one per non-empty line
    assert entry["evaluation"]["data"]["source"] == str(texts)
    sample = next(g for g in edgeport.load_bundle(bundle.root).golden_sets() if g.name == "sample")
    ids = sample.inputs["input_ids"]
    assert ids.shape[1] == 2 + 11  # [CLS] + the longest line (11 words) + [SEP]
    assert (ids[:, 0] == words.index("[CLS]")).all()
    assert sample.inputs["attention_mask"].sum(axis=1).min() == 2 + 3  # the shortest line
    # The tokenizer is data the bundle vouches for: a changed vocabulary is caught.
    with (bundle.root / "tokenizer" / "vocab.txt").open("a") as f:
        f.write("extra\n")
    report = verify_bundle(bundle.root)
    assert not report.passed
    assert any(
        p.startswith("tokenizer file: sha256 of 'tokenizer/vocab.txt'") for p in report.problems
    )


@pytest.mark.slow
def test_text_calibration_needs_the_tokenizer(
    hf_dirs: Callable[[str], Path], tmp_path: Path
) -> None:
    bundle = edgeport.export(
        f"hf:{hf_dirs('bert')}", [], out=tmp_path / "b",
        options=edgeport.ExportOptions(formats=("onnx",)),
    )  # fmt: skip
    texts = tmp_path / "texts.txt"
    texts.write_text("hello world\n")
    result = run_cli("quantize", str(bundle.root), "--calib", str(texts))
    assert result.returncode == 2
    assert f"--calib {str(texts)!r} is text, and the bundle carries no tokenizer" in result.stderr
