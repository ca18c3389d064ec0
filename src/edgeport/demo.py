"""`edgeport demo`: the built-in example, a small CNN for 16×16 single-channel images.

The model is also a source for the CLI: ``edgeport export edgeport.demo:small_cnn --input
image:batch=1x1x16x16``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from edgeport.pipeline import BuildResult

DEMO_INPUT = "image:batch=1x1x16x16"


def small_cnn(num_classes: int = 10) -> torch.nn.Module:
    """conv(1→32,3) → conv(32→64,3) → maxpool(2) → flatten → fc(64·6·6→128) → fc(128→classes)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 6 * 6, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def digits_16(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits (real 8×8 scans), upsampled to 1×16×16, split 75/25.

    Returns:
        ``(x_train, y_train, x_test, y_test)``; images float32 scaled to about zero mean, unit
        variance; labels int64.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images.astype(np.float32) / 16.0, np.ones((2, 2), np.float32))
    images = ((images - 0.3) / 0.4)[:, None]
    order = np.random.default_rng(seed).permutation(len(images))
    split = int(len(images) * 0.75)
    train, test = order[:split], order[split:]
    labels = digits.target.astype(np.int64)
    return images[train], labels[train], images[test], labels[test]


def train_digits_cnn(epochs: int = 8, seed: int = 0) -> tuple[torch.nn.Module, float]:
    """Train `small_cnn` on digits (a few seconds on 2 cores); returns it and test accuracy."""
    import torch

    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = digits_16(seed)
    model = small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    xs, ys = torch.from_numpy(x_train), torch.from_numpy(y_train)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xs), generator=generator).split(64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
    return model, accuracy


def run_demo(out: str | Path) -> BuildResult:
    """Train `small_cnn` on digits, then `build` it with real calibration and evaluation data.

    The data files are written next to the bundle (``<out>-data/``) so that the commands in the
    manifest can be re-run.
    """
    from edgeport._progress import step
    from edgeport.benchmarks.harness import BenchOptions
    from edgeport.pipeline import BuildOptions, build

    with step("training a small CNN on scikit-learn's digits"):
        model, _ = train_digits_cnn()
    x_train, _, x_test, y_test = digits_16()
    data = Path(f"{Path(out).absolute()}-data")
    data.mkdir(parents=True, exist_ok=True)
    np.savez(data / "calib.npz", image=x_train[:256])
    np.savez(data / "eval.npz", image=x_test, labels=y_test)
    options = BuildOptions(
        inputs=(DEMO_INPUT,),
        calib=str(data / "calib.npz"),
        eval=str(data / "eval.npz"),
        max_drop=1.0,
        bench=BenchOptions(duration=1.0, batches=(1, 32)),
    )
    return build(model, out, options, eager_model=model)
