"""A catalog of small test models, each with the inputs it is exported with.

Used as a model source in tests: ``tests/catalog.py:transformer_encoder`` etc.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from edgeport.demo import small_cnn


class TransformerClassifier(nn.Module):
    """Token embedding → 2-layer TransformerEncoder → mean pool → linear."""

    def __init__(self, vocab: int = 50, d_model: int = 32, classes: int = 5) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(self.embed(tokens))
        return self.head(hidden.mean(dim=1))


class TwoInputsDictOutput(nn.Module):
    """Image + metadata vector in, a dict of two heads out."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.meta = nn.Linear(4, 8)
        self.cls = nn.Linear(8, 3)
        self.box = nn.Linear(8, 4)

    def forward(self, image: torch.Tensor, meta: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.conv(image).mean(dim=(2, 3)) + self.meta(meta)
        return {"scores": self.cls(feats), "boxes": self.box(feats).sigmoid()}


class DataDependent(nn.Module):
    """Branches on a tensor value: tracing records only one branch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x) * 2
        return self.fc(x) - 1


class AlwaysTrueBranch(nn.Module):
    """Branches on a value that is always positive: dynamo refuses, tracing is right anyway."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() >= 0:
            return self.fc(x)
        return -self.fc(x)


class LstmTagger(nn.Module):
    """Token embedding → 2-layer LSTM → linear: one tag's logits per token."""

    def __init__(self, vocab: int = 100, embed: int = 16, hidden: int = 32, tags: int = 10) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, tags)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.embed(ids))
        return self.head(hidden)


class NumpyLength(nn.Module):
    """Reads the sequence length through numpy: no exporter can keep it symbolic.

    dynamo pins the length to the example size (a guard on this line) and refuses the dynamic
    dim; the tracer records it as a constant in a Reshape. Eager runs at any length.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = int(np.int64(x.shape[1]))
        return self.fc(x).reshape(-1, seq, 4)


def always_true_branch() -> nn.Module:
    return AlwaysTrueBranch()


def transformer_encoder() -> nn.Module:
    return TransformerClassifier()


def two_inputs_dict_output() -> nn.Module:
    return TwoInputsDictOutput()


def data_dependent() -> nn.Module:
    return DataDependent()


def lstm_tagger() -> nn.Module:
    return LstmTagger()


def numpy_length() -> nn.Module:
    return NumpyLength()


def cnn() -> nn.Module:
    return small_cnn()


@dataclass(frozen=True)
class CatalogEntry:
    """A model source plus its export inputs."""

    source: str
    inputs: tuple[str, ...]
    dynamic: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ("output",)
    marks: tuple[str, ...] = field(default=())


HERE = __file__
CATALOG = {
    "resnet18": CatalogEntry("torchvision:resnet18", ("input:1x3x224x224",), ("input:0=batch",)),
    "mobilenet_v3_small": CatalogEntry(
        "torchvision:mobilenet_v3_small", ("input:batch=1x3x224x224",)
    ),
    "transformer_encoder": CatalogEntry(
        f"{HERE}:transformer_encoder", ("tokens:batch=2xseq=12:int64",)
    ),
    "two_inputs_dict_output": CatalogEntry(
        f"{HERE}:two_inputs_dict_output",
        ("meta:batch=1x4", "image:batch=1x3x16x16"),
        outputs=("scores", "boxes"),
    ),
    "small_cnn": CatalogEntry(f"{HERE}:cnn", ("input:1x1x16x16",)),
}
