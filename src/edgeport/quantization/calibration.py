"""Calibration for ONNX Runtime's static quantization: a ``CalibrationDataReader`` over samples.

The samples themselves (files, image folders, factories, random) are read and checked by
`edgeport.data.load_samples`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edgeport.data import SampleSet


class SampleReader:
    """An ONNX Runtime ``CalibrationDataReader`` over a `SampleSet`, one sample per feed."""

    def __init__(self, samples: SampleSet, batch: int = 1) -> None:
        self._samples = samples
        self._batch = batch
        self._iter: Iterator[dict[str, Any]] = samples.feeds(batch)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = self._samples.feeds(self._batch)

    def __len__(self) -> int:
        return len(self._samples)
