"""Sample, calibration and evaluation data (docs/design.md §9).

Sources: ``.npz`` (one array per model input, keyed by name, samples along axis 0; evaluation data
may add integer ``labels``), ``.npy`` for a one-input model, an image folder (``folder/*.png`` or
``folder/<class>/*.png``), a Python iterable factory (``file.py:fn``), or ``random`` drawn from the
spec (only when asked for: accuracy is then unknown).

Random data follows the spec: floats are standard normal, integers uniform in ``[0, int_high)``,
bools fair coin flips. Whatever the source, at most ``max_samples`` samples are read (``.npy``
files are memory-mapped, iterables are read one sample at a time), and degenerate data is refused
before it can produce a broken model: no samples, NaN/Inf, or an input that is constant (unless it
is a categorical integer input with declared values, such as ``token_type_ids``).
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import EdgeportError
from edgeport.spec import TensorSpec

log = logging.getLogger(__name__)

INT_HIGH = 10
MAX_RANDOM_ELEMENTS = 1 << 28


def random_inputs(
    specs: Sequence[TensorSpec], sizes: dict[str, int], *, seed: int
) -> dict[str, np.ndarray]:
    """One array per input, shaped by the spec with symbolic dims taken from ``sizes``."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = spec.concrete_shape(sizes)
        if math.prod(shape) > MAX_RANDOM_ELEMENTS:
            raise EdgeportError(
                f"input {spec.name!r} at sizes {sizes} would be {list(shape)} "
                f"({math.prod(shape):,} elements)",
                expected=f"at most {MAX_RANDOM_ELEMENTS:,} elements for generated inputs",
                fix="use smaller sizes",
            )
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            out[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu" and spec.values is not None and spec.values.kind == "mask":
            out[spec.name] = padding_mask(shape, rng).astype(dtype)
        elif dtype.kind in "iu":
            low, high = (spec.values.low, spec.values.high) if spec.values else (0, INT_HIGH)
            info = np.iinfo(dtype)
            if low < info.min or high - 1 > info.max:
                raise EdgeportError(
                    f"input {spec.name!r} holds values {low}..{high}, outside {dtype}",
                    expected=f"a range inside [{info.min}, {info.max}]",
                )
            out[spec.name] = rng.integers(low, high, size=shape).astype(dtype)
        elif dtype.kind == "b":
            out[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise EdgeportError(f"cannot make random data for input {spec.name!r} of {dtype}")
    return out


def padding_mask(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """An attention mask of ``shape``: along the last axis, 1s then 0s of padding. The first
    row is full and each other row loses 1 to half its length, so masks really mask."""
    mask = np.ones(shape, dtype=np.int64)
    if not shape or shape[-1] < 2:
        return mask
    rows = mask.reshape(-1, shape[-1])
    for row in rows[1:]:
        row[shape[-1] - int(rng.integers(1, shape[-1] // 2 + 1)) :] = 0
    return mask


def load_npz(path: str | Path, specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Read an ``.npz`` (one array per input, keyed by name) or a ``.npy`` for one input."""
    return read_arrays(Path(path), specs)[0]


def read_arrays(
    path: Path, specs: Sequence[TensorSpec], cap: int | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Arrays for ``specs`` from an ``.npz``/``.npy`` (first ``cap`` samples), and ``labels``.

    Each array's header is checked against its spec (dtype kind, rank, fixed dims) and a size
    cap before any data is read, and only the first ``cap`` samples are read.
    """
    from edgeport._npy import load_npy, load_npz

    if not path.is_file():
        raise EdgeportError(f"data file {str(path)!r} does not exist")
    names = [s.name for s in specs]
    check = _header_check(specs, str(path))
    if path.suffix == ".npy":
        if len(specs) != 1:
            raise EdgeportError(
                f"{str(path)!r} is a single .npy but the model has inputs {names}",
                fix="give an .npz with one array per input name",
            )
        array = load_npy(path, repr(str(path)), rows=cap, check=check, name=names[0])
        return {names[0]: array}, None
    arrays = load_npz(path, repr(str(path)), names, optional=("labels",), rows=cap, check=check)
    labels = arrays.pop("labels", None)
    return arrays, labels


def _header_check(specs: Sequence[TensorSpec], where: str) -> Any:
    """A check for `edgeport._npy` that refuses an array its input cannot take, before reading."""
    by_name = {s.name: s for s in specs}

    def check(name: str, header: Any) -> None:
        spec = by_name.get(name)
        if spec is None:  # labels
            if len(header.shape) != 1 or header.dtype.kind not in "iu":
                raise EdgeportError(
                    f"{where}: 'labels' is {header.dtype}{list(header.shape)}",
                    expected="one integer class id per sample",
                )
            return
        if len(header.shape) != len(spec.shape) or any(
            isinstance(d, int) and d != a
            for d, a in zip(spec.shape[1:], header.shape[1:], strict=True)
        ):
            raise EdgeportError(
                f"{where}, input {name!r} has samples of shape {list(header.shape)}",
                expected=f"samples along axis 0 of {list(spec.shape)}",
            )

    return check


DEFAULT_MAX_SAMPLES = 256
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp")
# Standard ImageNet normalisation for image folders.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass
class SampleSet:
    """Samples along the first axis, one array per model input, optional integer labels.

    Attributes:
        source: Where the samples came from (recorded in the manifest).
        arrays: Input name → array with samples along axis 0.
        labels: Class ids, one per sample, or None.
        random: True when drawn at random from the spec (accuracy unknown).
    """

    source: str
    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    random: bool = False

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def feeds(self, batch: int = 1) -> Iterator[dict[str, np.ndarray]]:
        """Feeds of ``batch`` samples each (the last one may be smaller)."""
        for start in range(0, len(self), batch):
            yield {k: v[start : start + batch] for k, v in self.arrays.items()}

    def describe(self) -> dict[str, Any]:
        """Manifest form: source, sample count, labels present, random or real."""
        return {
            "source": self.source,
            "samples": len(self),
            "labels": self.labels is not None,
            "random": self.random,
        }


def load_samples(
    spec: str,
    inputs: Sequence[TensorSpec],
    *,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    purpose: str = "--calib",
    seed: int = 0,
    tokenizer: Path | None = None,
) -> SampleSet:
    """Read samples for ``inputs`` from ``spec`` and check they are usable.

    Args:
        spec: ``file.npz``, ``file.npy``, an image folder, ``file.py:factory`` (an iterable of
            dicts or arrays), ``texts.txt`` (one text per line, for a model with a tokenizer),
            or ``random``.
        inputs: The model's input specs (names, dtypes, shapes).
        max_samples: Read at most this many samples.
        purpose: The option name, for messages.
        seed: Seed for ``random``.
        tokenizer: The directory of the model's tokenizer (a bundle's ``tokenizer/``), for
            ``.txt``.

    Raises:
        EdgeportError: Unreadable, mismatched or degenerate data.
    """
    if spec == "random":
        log.warning(
            "%s random: calibrating on random data; the int8 model's accuracy on real inputs "
            "is UNKNOWN",
            purpose,
        )
        return _random_samples(inputs, min(max_samples, 32), seed)
    file_part, sep, _ = spec.rpartition(":")
    path = Path(spec)
    if sep and file_part.endswith(".py"):
        samples = _from_factory(spec, inputs, max_samples)
    elif path.is_dir():
        samples = _from_image_folder(path, inputs, max_samples)
    elif path.suffix in (".npz", ".npy"):
        samples = _from_numpy(path, inputs, max_samples)
    elif path.suffix == ".txt":
        samples = _from_texts(path, inputs, max_samples, tokenizer, purpose)
    else:
        raise EdgeportError(
            f"{purpose} {spec!r} is not a data source edgeport reads",
            expected="an .npz (one array per input name, samples along axis 0), an .npy for a "
            "one-input model, an image folder, texts.txt, file.py:factory, or 'random'",
        )
    check_samples(samples, inputs, purpose)
    return samples


MAX_TEXT_TOKENS = 512  # a text is cut at this many tokens (or the model's own limit)
MAX_TEXT_BYTES = 64 << 20
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _from_texts(
    path: Path, inputs: Sequence[TensorSpec], cap: int, tokenizer: Path | None, purpose: str
) -> SampleSet:
    """One sample per non-empty line, tokenized with the model's own tokenizer and padded to the
    longest (a symbolic sequence) or to the model's fixed length."""
    names = [s.name for s in inputs]
    if "input_ids" not in names or any(n not in TEXT_INPUTS for n in names):
        raise EdgeportError(
            f"{purpose} {str(path)!r} is text, and this model does not take token ids",
            expected=f"a model whose inputs are among {', '.join(TEXT_INPUTS)} (hf: text "
            f"models); this one takes {', '.join(names)}",
        )
    if tokenizer is None:
        raise EdgeportError(
            f"{purpose} {str(path)!r} is text, and the bundle carries no tokenizer",
            fix="export the model from an hf: directory that holds its tokenizer "
            "(tokenizer.save_pretrained(DIR)), or pass token ids in an .npz",
        )
    if not path.is_file():
        raise EdgeportError(f"{purpose} {str(path)!r} does not exist")
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise EdgeportError(f"{purpose} {str(path)!r} is over {MAX_TEXT_BYTES >> 20} MiB of text")
    texts = [t.strip() for t in path.read_text(errors="replace").splitlines() if t.strip()][:cap]
    if not texts:
        raise EdgeportError(f"{purpose} {str(path)!r} holds no text (one text per line)")
    encoded = _tokenize(tokenizer, texts, inputs)
    arrays = {
        s.name: encoded.get(s.name, np.zeros_like(encoded["input_ids"])).astype(s.dtype)
        for s in inputs
    }
    return SampleSet(str(path), arrays)


def _tokenize(
    tokenizer: Path, texts: list[str], inputs: Sequence[TensorSpec]
) -> dict[str, np.ndarray]:
    from transformers import AutoTokenizer

    from edgeport.sources.network import first_line, offline

    ids = next(s for s in inputs if s.name == "input_ids")
    fixed = ids.shape[-1] if ids.shape and isinstance(ids.shape[-1], int) else None
    try:
        with offline("the bundle's tokenizer", fix="the tokenizer must be in the bundle"):
            tok = AutoTokenizer.from_pretrained(
                str(tokenizer), local_files_only=True, trust_remote_code=False
            )
    except EdgeportError:
        raise
    except Exception as exc:
        raise EdgeportError(
            f"cannot load the bundle's tokenizer ({tokenizer}): {first_line(exc)}"
        ) from exc
    limit = min(MAX_TEXT_TOKENS, int(getattr(tok, "model_max_length", MAX_TEXT_TOKENS)))
    encoded = tok(
        texts,
        padding="max_length" if fixed else "longest",
        truncation=True,
        max_length=fixed or limit,
        return_tensors="np",
    )
    return {k: np.asarray(v) for k, v in encoded.items() if k in TEXT_INPUTS}


def _random_samples(inputs: Sequence[TensorSpec], count: int, seed: int) -> SampleSet:
    """``count`` samples of batch 1 (other symbolic dims at their example size)."""
    sizes = {label: size for s in inputs for label, size in s.examples.items()}
    sizes.update({s.shape[0]: 1 for s in inputs if s.shape and isinstance(s.shape[0], str)})
    draws = [random_inputs(inputs, sizes, seed=seed + i) for i in range(count)]
    arrays = {s.name: np.concatenate([d[s.name] for d in draws]) for s in inputs}
    return SampleSet("random", arrays, random=True)


def _from_numpy(path: Path, inputs: Sequence[TensorSpec], cap: int) -> SampleSet:
    arrays, labels = read_arrays(path, inputs, cap)
    return SampleSet(str(path), arrays, labels)


def _from_image_folder(path: Path, inputs: Sequence[TensorSpec], cap: int) -> SampleSet:
    """Images (``folder/*.png`` or ``folder/<class>/*.png``): resize, scale, normalise."""

    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise EdgeportError(
            f"an image folder feeds one NCHW input; this model has {[s.name for s in inputs]}",
            fix="give an .npz with one array per input",
        )
    spec = inputs[0]
    channels, height, width = (d if isinstance(d, int) else None for d in spec.shape[1:])
    if not (channels in (1, 3) and height and width):
        raise EdgeportError(
            f"input {spec.name!r} {list(spec.shape)} is not a fixed-size 1- or 3-channel image",
            fix="declare the image size, e.g. --input input:batch=1x3x224x224",
        )
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:cap]
    classes = sorted({p.parent.name for p in files if p.parent != path})
    images, labels = [], []
    for file in files:
        array = _read_image(file, "RGB" if channels == 3 else "L", (width, height))
        if channels == 3:
            array = ((array - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
        else:
            array = array[None]
        images.append(array)
        if classes:
            labels.append(classes.index(file.parent.name))
    arrays = (
        {spec.name: np.stack(images).astype(spec.dtype)}
        if images
        else {spec.name: np.zeros((0, channels, height, width), spec.dtype)}
    )
    return SampleSet(str(path), arrays, np.array(labels) if classes and labels else None)


MAX_IMAGE_PIXELS = 64_000_000


def _read_image(file: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image as float32 in [0, 1], resized; a corrupt or huge file is a clear error."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as opened:
                if opened.width * opened.height > MAX_IMAGE_PIXELS:
                    raise EdgeportError(
                        f"image {str(file)!r} is {opened.width}×{opened.height} pixels",
                        expected=f"at most {MAX_IMAGE_PIXELS:,} pixels per image",
                    )
                img = opened.convert(mode).resize(size)
    except EdgeportError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning) as exc:
        raise EdgeportError(
            f"image {str(file)!r} cannot be read: {str(exc)[:200] or type(exc).__name__}",
            fix="remove or replace the file; every image in the folder is used",
        ) from exc
    return np.asarray(img, dtype=np.float32) / 255.0


def _from_factory(spec: str, inputs: Sequence[TensorSpec], cap: int) -> SampleSet:
    file, _, name = spec.rpartition(":")
    module_spec = importlib.util.spec_from_file_location("edgeport_user_data", file)
    if not Path(file).is_file() or module_spec is None or module_spec.loader is None:
        raise EdgeportError(f"data factory file {file!r} does not exist")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise EdgeportError(f"{file!r} has no callable {name!r}")
    names = [s.name for s in inputs]
    columns: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for item in itertools.islice(factory(), cap):
        sample = item if isinstance(item, dict) else dict(zip(names, _as_tuple(item), strict=False))
        for n in names:
            if n not in sample:
                raise EdgeportError(f"{spec!r} yielded a sample without input {n!r}")
            columns[n].append(np.asarray(sample[n]))
    arrays = {n: np.concatenate(v) if v else np.zeros((0,)) for n, v in columns.items()}
    return SampleSet(spec, arrays)


def _as_tuple(item: Any) -> tuple[Any, ...]:
    return tuple(item) if isinstance(item, list | tuple) else (item,)


def check_samples(samples: SampleSet, inputs: Sequence[TensorSpec], purpose: str) -> None:
    """Refuse empty, non-finite or constant data, and arrays that do not fit the inputs."""
    for spec in inputs:
        array = samples.arrays[spec.name]
        where = f"{purpose} {samples.source!r}, input {spec.name!r}"
        if array.ndim == 0 or array.shape[0] == 0:
            raise EdgeportError(
                f"{where} has no samples",
                expected="at least one sample along axis 0 (a few hundred calibrate well)",
            )
        if array.ndim != len(spec.shape) or any(
            isinstance(d, int) and d != a
            for d, a in zip(spec.shape[1:], array.shape[1:], strict=False)
        ):
            raise EdgeportError(
                f"{where} has samples of shape {list(array.shape)}",
                expected=f"samples along axis 0 of {list(spec.shape)}",
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise EdgeportError(
                f"{where} holds {bad} NaN/Inf values",
                fix="clean the data; calibrating on non-finite values gives meaningless ranges",
            )
        # A categorical integer input (token types, ids in a range) may be constant in real
        # data: all single-segment texts have token_type_ids 0. Calibration ranges come from
        # float activations, which such inputs do not clip.
        categorical = array.dtype.kind in "iu" and spec.values is not None
        if np.ptp(array) == 0 and not categorical:
            raise EdgeportError(
                f"{where} is constant (every value is {array.flat[0].item()!r})",
                expected="real samples that vary; calibration ranges from constant data clip "
                "every real input",
                fix="pass real data, or --calib random if you accept unknown accuracy",
            )
    if samples.labels is not None and len(samples.labels) != len(samples):
        raise EdgeportError(
            f"{purpose} {samples.source!r} has {len(samples.labels)} labels for "
            f"{len(samples)} samples",
            expected="one integer label per sample",
        )
