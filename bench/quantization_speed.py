"""Benchmark: int8 from `edgeport quantize` against fp32 ONNX Runtime, on this machine.

Targets (issue 4): resnet18 static int8 ≥ 2.8× faster than fp32 at batch 1, mobilenet_v2 ≥ 1.8×,
both with cosine ≥ 0.99 against eager PyTorch on real inputs, and `--mode auto` choosing static
for both; a transformer encoder quantized dynamically keeps cosine ≥ 0.99 and is faster than fp32
at sequence length 128.

Weights (nothing is downloaded): resnet18 has random weights with BatchNorm statistics measured on
crops of the two photos scikit-learn ships (`recalibrate_batchnorm`). mobilenet_v2 is *trained*
(about 2 minutes) on scikit-learn's digits upsampled to 3×224×224 (`train_on_digits`), because its
random-weight version is chaotic: 0.1% input noise alone moves its logits to cosine ≈ 0.997, and
rounding the input to 8 bits costs more than the whole 0.99 budget, so no int8 scheme can meet
the target on it. That random-weight model is still measured and reported (no target), with the
input-noise figure that shows why; each case reports its own input-noise cosine.

Timing: interleaved blocks in one process, ONNX Runtime spinning off, a pause between blocks
(docs/design.md §6). Writes bench-results/quantization.json; exits 1 if a target is missed.

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
from edgeport.parity import Tolerance, compare
from edgeport.quantization import QuantizeOptions, quantize
from edgeport.runtime import Session, SessionOptions
from edgeport.timing import Schedule, time_interleaved


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
    schedule = Schedule(blocks=blocks, duration=0.15 * blocks, pause=0.3)
    timing = time_interleaved({k: partial(s.run, feeds) for k, s in sessions.items()}, schedule)
    return {
        "fp32_ms": timing.stats["fp32"]["p50_ms"],
        "int8_ms": timing.stats["int8"]["p50_ms"],
        "speedup": timing.speedup("fp32", "int8")["point"],
        "ci95_ms": {k: s["median_ci95_ms"] for k, s in timing.stats.items()},
    }


def digits_224(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as 3×224×224 images (bilinear upsampling), split 75/25."""
    from edgeport.demo import digits_16

    def grow(x: np.ndarray) -> np.ndarray:
        up = F.interpolate(torch.from_numpy(x), size=224, mode="bilinear")
        return up.repeat(1, 3, 1, 1).numpy()

    x_train, y_train, x_test, y_test = digits_16(seed)
    return grow(x_train), y_train, grow(x_test), y_test


def train_on_digits(name: str, seed: int = 0) -> torch.nn.Module:
    """Train torchvision's ``name`` (10 classes) on digits_224: 3 epochs at 112², 1 at 224².

    The last epoch runs at the benchmark's resolution, so BatchNorm statistics fit it.
    """
    import torchvision

    torch.manual_seed(seed)
    x_train, y_train, _, _ = digits_224(seed)
    xs, ys = torch.from_numpy(x_train), torch.from_numpy(y_train)
    model = torchvision.models.get_model(name, num_classes=10)
    schedule = [(112, 3), (224, 1)]
    steps = sum(epochs for _, epochs in schedule) * -(-len(xs) // 32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    lr = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for size, epochs in schedule:
        for _ in range(epochs):
            for idx in torch.randperm(len(xs), generator=generator).split(32):
                batch = xs[idx] if size == 224 else F.interpolate(xs[idx], size=size, mode="area")
                loss = F.cross_entropy(model(batch), ys[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                lr.step()
    return model.eval()


def input_noise_cosine(model: torch.nn.Module, images: np.ndarray, rel: float = 1e-3) -> float:
    """Cosine of the model's outputs on ``images`` vs images + Gaussian noise of ``rel``·std.

    A fixture sanity figure: int8 rounding of the input alone is noise of about 0.5% of its std,
    so a model that loses 0.01 cosine to 0.1% noise cannot meet 0.99 with any int8 scheme.
    """
    x = torch.from_numpy(images)
    noise = torch.from_numpy(
        np.random.default_rng(0).standard_normal(images.shape, dtype=np.float32)
    )
    with torch.inference_mode():
        clean = model(x).numpy()
        noisy = model(x + rel * float(x.std()) * noise).numpy()
    return float(compare("output", noisy, clean)["cosine"])


def cnn_case(
    model: torch.nn.Module,
    tmp: Path,
    calib: np.ndarray,
    evaluation: np.ndarray,
    blocks: int,
    labels: np.ndarray | None = None,
    floor: float = 0.99,
) -> dict[str, Any]:
    out = tmp / "bundle"
    edgeport.export(
        model,
        ["input:batch=1x3x224x224"],
        out=out,
        options=edgeport.ExportOptions(formats=("onnx",)),
    )
    np.savez(tmp / "calib.npz", input=calib)
    np.savez(tmp / "eval.npz", input=evaluation)
    # Logits of random-weight models are near ties, so top-1 agreement says little: cosine decides.
    options = QuantizeOptions(
        calib=str(tmp / "calib.npz"),
        eval=str(tmp / "eval.npz"),
        tolerance=Tolerance(min_cosine=floor),
    )
    bundle = quantize(out, options)
    (int8_name,) = [n for n in bundle.artifacts if n.startswith("onnx-int8")]
    entry = bundle.artifact(int8_name)
    with torch.inference_mode():
        eager = model(torch.from_numpy(evaluation)).numpy()
    int8 = Session(out, int8_name)
    got = np.concatenate(
        [int8.run(evaluation[i : i + 1])["output"] for i in range(len(evaluation))]
    )
    timing = time_pair(
        bundle.path_of("onnx-fp32"), bundle.path_of(int8_name), {"input": evaluation[:1]}, blocks
    )
    result = {
        "mode_chosen": entry["recipe"]["mode"],
        "mode_reason": entry["recipe"]["mode_reason"],
        "cosine_vs_eager": compare("output", got, eager)["cosine"],
        "top1_agreement_vs_eager": float(np.mean(got.argmax(1) == eager.argmax(1))),
        "input_noise_0.1%_cosine": input_noise_cosine(model, evaluation[:16]),
        "kept_in_float": [k["tensor"] for k in entry.get("kept_in_float", [])],
        "quantize_speedup_recorded": entry["speed"]["speedup_vs_fp32"],
        **timing,
    }
    if labels is not None:
        result["accuracy_fp32"] = float(np.mean(eager.argmax(1) == labels))
        result["accuracy_int8"] = float(np.mean(got.argmax(1) == labels))
    return result


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
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--out", default="bench-results/quantization.json")
    args = parser.parse_args()
    import torchvision

    images = photo_patches()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        resnet = recalibrate_batchnorm(torchvision.models.get_model("resnet18"), images[:64])
        (case := Path(tmp) / "resnet18").mkdir()
        results["resnet18"] = cnn_case(resnet, case, images[:64], images[64:], args.blocks)
        print("resnet18: done", flush=True)
        x_train, _, x_test, y_test = digits_224()
        mobilenet = train_on_digits("mobilenet_v2")
        (case := Path(tmp) / "mobilenet_v2").mkdir()
        results["mobilenet_v2"] = cnn_case(
            mobilenet, case, x_train[:64], x_test[:128], args.blocks, labels=y_test[:128]
        )
        print("mobilenet_v2 (trained on digits): done", flush=True)
        torch.manual_seed(0)
        random_mb2 = recalibrate_batchnorm(
            torchvision.models.get_model("mobilenet_v2"), images[:64]
        )
        (case := Path(tmp) / "mobilenet_v2_random").mkdir()
        # Accepted at 0.95 so that its speed and cosine are measured; no target (see above).
        results["mobilenet_v2_random_weights"] = cnn_case(
            random_mb2, case, images[:64], images[64:], args.blocks, floor=0.95
        )
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
        extra = ""
        if "input_noise_0.1%_cosine" in r:
            extra += f"  (0.1% input noise alone: cosine {r['input_noise_0.1%_cosine']:.5f})"
        if "accuracy_fp32" in r:
            extra += (
                f"  digits accuracy fp32 {r['accuracy_fp32']:.3f} int8 {r['accuracy_int8']:.3f}"
            )
        print(
            f"{name:28s} {r['mode_chosen']:8s} fp32 {r['fp32_ms']:8.3f} ms  int8 "
            f"{r['int8_ms']:8.3f} ms  speedup {r['speedup']:.2f}×  cosine {cos:.5f}{extra}"
        )
    return finish(results, targets, args.out)


if __name__ == "__main__":
    sys.exit(main())
