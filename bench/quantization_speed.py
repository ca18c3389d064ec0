"""Benchmark: int8 from `edgeport quantize` against fp32 ONNX Runtime, on this machine.

Models have random weights with BatchNorm statistics re-estimated on the images (see
`recalibrate_batchnorm`). Targets (issue 4): resnet18 static int8 ≥ 2.8× faster than fp32 at
batch 1, mobilenet_v2 ≥ 1.8×,
both with cosine ≥ 0.99 against eager PyTorch on real-looking inputs (crops of the two photos
scikit-learn ships), and `--mode auto` choosing static for both; a transformer encoder
quantized dynamically keeps cosine ≥ 0.99 and is faster than fp32 at sequence length 128.
Timing: interleaved blocks in one process, ONNX Runtime spinning off, a pause between blocks
(DESIGN.md §6). Writes bench-results/quantization.json; exits 1 if a target is missed.

    .venv/bin/python bench/quantization_speed.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

import edgeport
from _targets import finish
from edgeport.benchmarks.latency import ratio, time_interleaved
from edgeport.benchmarks.parity import Tolerance, compare
from edgeport.quantization import QuantizeOptions, quantize
from edgeport.runtime import Session, SessionOptions


def photo_patches(count: int = 96, size: int = 224, seed: int = 0) -> np.ndarray:
    """Random crops (with flips and rescales) of the two photos scikit-learn ships, normalised."""
    from sklearn.datasets import load_sample_images

    photos = [
        torch.from_numpy(p.astype(np.float32) / 255.0).permute(2, 0, 1)
        for p in load_sample_images().images
    ]
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        scale = rng.uniform(0.5, 1.0)
        side = int(min(photo.shape[1:]) * scale)
        top = rng.integers(0, photo.shape[1] - side + 1)
        left = rng.integers(0, photo.shape[2] - side + 1)
        crop = photo[:, top : top + side, left : left + side][None]
        crop = F.interpolate(crop, size=size, mode="bilinear", antialias=True)
        crops.append(crop.flip(-1) if rng.random() < 0.5 else crop)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return ((torch.cat(crops) - mean) / std).numpy()


def recalibrate_batchnorm(model: torch.nn.Module, images: np.ndarray) -> torch.nn.Module:
    """Re-estimate BatchNorm statistics on real images.

    torchvision's random init makes mobilenet_v2's activations vanish (logits ~1e-9), which no
    quantizer can represent; with BN statistics measured on data, activations are unit-scale as
    in a trained network, while the weights stay random (nothing is downloaded).
    """
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for start in range(0, len(images), 16):
            model(torch.from_numpy(images[start : start + 16]))
    return model.eval()


def time_pair(fp32: Path, int8: Path, feeds: dict[str, np.ndarray], blocks: int) -> dict[str, Any]:
    quiet = SessionOptions(spinning=False)
    sessions = {"fp32": Session(fp32, options=quiet), "int8": Session(int8, options=quiet)}
    stats = time_interleaved(
        {k: partial(s.run, feeds) for k, s in sessions.items()}, blocks=blocks, pause=0.3
    )
    return {
        "fp32_ms": stats["fp32"].median * 1e3,
        "int8_ms": stats["int8"].median * 1e3,
        "speedup": ratio(stats["fp32"], stats["int8"]),
        "ci95_ms": {k: [v * 1e3 for v in s.ci95] for k, s in stats.items()},
    }


def cnn_case(name: str, tmp: Path, images: np.ndarray, blocks: int) -> dict[str, Any]:
    import torchvision

    torch.manual_seed(0)
    model = recalibrate_batchnorm(torchvision.models.get_model(name), images[:64])
    out = tmp / name
    edgeport.export(
        model,
        ["input:batch=1x3x224x224"],
        out=out,
        options=edgeport.ExportOptions(formats=("onnx",)),
    )
    np.savez(tmp / "calib.npz", input=images[:64])
    np.savez(tmp / "eval.npz", input=images[64:])
    # Random weights: logits are near ties, so top-1 agreement says little; cosine decides.
    # mobilenet_v2 with random weights does not reach 0.99 even with 16-bit activations
    # (0.986 measured), nor with the 57 tensors whose float version helps the output at all kept
    # in float (0.9817): int8 noise compounds through its 52 random layers. Its artifact
    # is accepted at 0.95 here so that its speed can be measured; the 0.99 target is reported.
    floor = 0.99 if name == "resnet18" else 0.95
    options = QuantizeOptions(
        calib=str(tmp / "calib.npz"),
        eval=str(tmp / "eval.npz"),
        tolerance=Tolerance(min_cosine=floor),
    )
    bundle = quantize(out, options)
    print(f"{name}: quantized", flush=True)
    (int8_name,) = [n for n in bundle.artifacts if n.startswith("onnx-int8")]
    entry = bundle.artifact(int8_name)
    with torch.inference_mode():
        eager = model(torch.from_numpy(images[64:])).numpy()
    int8 = Session(out, int8_name)
    got = np.concatenate([int8.run(images[i : i + 1])["output"] for i in range(64, len(images))])
    timing = time_pair(
        bundle.path_of("onnx-fp32"), bundle.path_of(int8_name), {"input": images[:1]}, blocks
    )
    return {
        "mode_chosen": entry["recipe"]["mode"],
        "mode_reason": entry["recipe"]["mode_reason"],
        "cosine_vs_eager": compare("output", got, eager)["cosine"],
        "top1_agreement_vs_eager": float(np.mean(got.argmax(1) == eager.argmax(1))),
        "quantize_speedup_recorded": entry["speed"]["speedup_vs_fp32"],
        **timing,
    }


def transformer_case(tmp: Path, blocks: int) -> dict[str, Any]:
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layer = nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.encoder(x)

    torch.manual_seed(0)
    out = tmp / "encoder"
    edgeport.export(
        Encoder().eval(),
        ["x:batch=2xseq=128x256"],
        out=out,
        options=edgeport.ExportOptions(formats=("onnx",)),
    )
    x = np.random.default_rng(0).standard_normal((16, 128, 256), dtype=np.float32)
    np.savez(tmp / "enc_eval.npz", x=x)
    bundle = quantize(out, QuantizeOptions(mode="auto", eval=str(tmp / "enc_eval.npz")))
    entry = bundle.artifact("onnx-int8-dynamic")
    timing = time_pair(
        bundle.path_of("onnx-fp32"), bundle.path_of("onnx-int8-dynamic"), {"x": x[:1]}, blocks
    )
    return {
        "mode_chosen": entry["recipe"]["mode"],
        "cosine_vs_fp32": entry["evaluation"]["cosine"],
        "seq_len": 128,
        **timing,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--out", default="bench-results/quantization.json")
    args = parser.parse_args()
    images = photo_patches()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("resnet18", "mobilenet_v2"):
            results[name] = cnn_case(name, Path(tmp), images, args.blocks)
        results["transformer_encoder"] = transformer_case(Path(tmp), args.blocks)
    r18, mb2, enc = results["resnet18"], results["mobilenet_v2"], results["transformer_encoder"]
    targets = {
        "resnet18 static int8 ≥ 2.8× fp32": r18["speedup"] >= 2.8,
        "mobilenet_v2 static int8 ≥ 1.8× fp32": mb2["speedup"] >= 1.8,
        "resnet18 cosine vs eager ≥ 0.99": r18["cosine_vs_eager"] >= 0.99,
        "mobilenet_v2 cosine vs eager ≥ 0.99": mb2["cosine_vs_eager"] >= 0.99,
        "auto chose static for both CNNs": r18["mode_chosen"] == mb2["mode_chosen"] == "static",
        "encoder dynamic cosine ≥ 0.99": enc["cosine_vs_fp32"] >= 0.99,
        "encoder dynamic faster than fp32 at seq 128": enc["speedup"] > 1.0,
    }
    for name, r in results.items():
        cos = r.get("cosine_vs_eager", r.get("cosine_vs_fp32"))
        print(
            f"{name:20s} {r['mode_chosen']:8s} fp32 {r['fp32_ms']:8.3f} ms  int8 "
            f"{r['int8_ms']:8.3f} ms  speedup {r['speedup']:.2f}×  cosine {cos:.5f}"
        )
    return finish(results, targets, args.out)


if __name__ == "__main__":
    sys.exit(main())
