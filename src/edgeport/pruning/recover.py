"""Recovering accuracy after pruning: fine-tuning on labels, or distilling from the unpruned
model on unlabeled data (soft targets at a temperature; Hinton et al., 2015)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeport.data import SampleSet
from edgeport.errors import EdgeportError

log = logging.getLogger(__name__)

METHODS = ("finetune", "distill")


@dataclass
class Recovery:
    """A recovery run: method, steps, and the loss after each step."""

    method: str
    steps: int
    batch: int
    lr: float
    temperature: float | None
    losses: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Manifest form (the loss curve thinned to at most 200 points)."""
        stride = max(1, len(self.losses) // 200)
        return {
            "method": self.method,
            "steps": self.steps,
            "batch": self.batch,
            "lr": self.lr,
            "temperature": self.temperature,
            "loss_first": self.losses[0] if self.losses else None,
            "loss_last": self.losses[-1] if self.losses else None,
            "loss_curve": self.losses[::stride],
        }


def _logits(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return next(iter(out.values()))
    return out[0]


def recover(
    student: nn.Module,
    teacher: nn.Module,
    data: SampleSet,
    *,
    method: str = "distill",
    steps: int = 200,
    batch: int = 32,
    lr: float = 1e-3,
    temperature: float = 4.0,
    seed: int = 0,
) -> Recovery:
    """Train ``student`` (in place) for ``steps`` batches drawn from ``data``.

    ``finetune`` minimises cross-entropy on ``data.labels``; ``distill`` minimises the KL
    divergence between the teacher's and the student's softened outputs (no labels needed).

    Raises:
        EdgeportError: Unknown method, or fine-tuning without labels.
    """
    from edgeport._progress import bar, step, update

    if method not in METHODS:
        raise EdgeportError(f"unknown recovery {method!r}", available=", ".join(METHODS))
    if method == "finetune" and data.labels is None:
        raise EdgeportError(
            "--recover finetune needs labels in the data",
            fix="add a `labels` array to the .npz, or use --recover distill (no labels needed)",
        )
    if steps < 1:
        raise EdgeportError(f"--steps {steps} must be at least 1")
    names = list(data.arrays)
    rng = np.random.default_rng(seed)
    record = Recovery(method, steps, batch, lr, temperature if method == "distill" else None)
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr)
    teacher.eval()
    student.train()
    label = f"recovering accuracy ({method}, {steps} steps)"
    every = max(1, steps // 100)
    with step(label):
        for i in range(steps):
            pick = rng.integers(0, len(data), size=min(batch, len(data)))
            inputs = [torch.from_numpy(np.ascontiguousarray(data.arrays[n][pick])) for n in names]
            out = _logits(student(*inputs))
            if method == "finetune":
                assert data.labels is not None
                target = torch.from_numpy(data.labels[pick].astype(np.int64))
                loss = nn.functional.cross_entropy(out, target)
            else:
                with torch.no_grad():
                    soft = _logits(teacher(*inputs))
                loss = nn.functional.kl_div(
                    nn.functional.log_softmax(out / temperature, dim=-1),
                    nn.functional.softmax(soft / temperature, dim=-1),
                    reduction="batchmean",
                ) * (temperature**2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            record.losses.append(float(loss.detach()))
            if (i + 1) % every == 0 or i + 1 == steps:
                update(f"{label} {bar(i + 1, steps)} loss {record.losses[-1]:.4f}")
    student.eval()
    log.info("recovery %s: loss %.4f → %.4f", method, record.losses[0], record.losses[-1])
    return record


def accuracy(model: nn.Module, data: SampleSet, batch: int = 256) -> float | None:
    """Top-1 accuracy on ``data`` (None without labels)."""
    if data.labels is None:
        return None
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(data), batch):
            inputs = [torch.from_numpy(v[start : start + batch]) for v in data.arrays.values()]
            pred = _logits(model(*inputs)).argmax(-1).numpy()
            correct += int((pred == data.labels[start : start + batch]).sum())
    return correct / len(data)
