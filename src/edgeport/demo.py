"""`edgeport demo`: the built-in example, a small CNN for 16×16 single-channel images.

The model is also a source for the CLI: ``edgeport export edgeport.demo:small_cnn --input
image:batch=1x1x16x16``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from edgeport.bundle import Bundle

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


def run_demo(out: str | Path) -> Bundle:
    """Export the small CNN with a dynamic batch into ``out`` and verify it."""
    from edgeport.exporter.flow import export

    return export("edgeport.demo:small_cnn", [DEMO_INPUT], out=out)
