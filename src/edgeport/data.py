"""Sample data for golden IO: random-from-spec (seeded), or the user's own ``.npz`` samples.

Random data follows the spec: floats are standard normal, integers uniform in ``[0, int_high)``,
bools fair coin flips. The seed and the distribution are recorded in the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeport.errors import EdgeportError
from edgeport.spec import TensorSpec

INT_HIGH = 10


def random_inputs(
    specs: Sequence[TensorSpec], sizes: dict[str, int], *, seed: int
) -> dict[str, np.ndarray]:
    """One array per input, shaped by the spec with symbolic dims taken from ``sizes``."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = spec.concrete_shape(sizes)
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            out[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            out[spec.name] = rng.integers(0, INT_HIGH, size=shape).astype(dtype)
        elif dtype.kind == "b":
            out[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise EdgeportError(f"cannot make random data for input {spec.name!r} of {dtype}")
    return out


def load_npz(path: str | Path, specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Read an ``.npz`` (one array per input, keyed by name) or a ``.npy`` for one input."""
    return read_arrays(Path(path), specs)[0]


def read_arrays(
    path: Path, specs: Sequence[TensorSpec], cap: int | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Arrays for ``specs`` from an ``.npz``/``.npy`` (first ``cap`` samples), and ``labels``.

    ``.npy`` files are memory-mapped, so a cap reads only what it keeps.
    """
    if not path.is_file():
        raise EdgeportError(f"data file {str(path)!r} does not exist")
    names = [s.name for s in specs]
    try:
        if path.suffix == ".npy":
            if len(specs) != 1:
                raise EdgeportError(
                    f"{str(path)!r} is a single .npy but the model has inputs {names}",
                    fix="give an .npz with one array per input name",
                )
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            return {names[0]: np.array(array[:cap])}, None
        with np.load(path, allow_pickle=False) as archive:
            missing = [n for n in names if n not in archive.files]
            if missing:
                raise EdgeportError(
                    f"{str(path)!r} has no array for inputs {missing}",
                    expected=f"one array per input, keyed {names} (and optionally 'labels')",
                    available=", ".join(archive.files) or "no arrays",
                )
            arrays = {n: np.array(archive[n][:cap]) for n in names}
            labels = np.array(archive["labels"][:cap]) if "labels" in archive.files else None
    except (OSError, ValueError) as exc:
        raise EdgeportError(f"cannot read {str(path)!r} as numpy data: {exc}") from exc
    return arrays, labels
