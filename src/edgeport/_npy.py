"""Reading ``.npy`` / ``.npz`` files that may be hostile: sizes are checked before allocating.

``np.load`` trusts the header: a 128-byte ``.npy`` can promise 4 TiB, and a 255 KiB ``.npz`` can
inflate to 510 MiB before any shape is looked at. Here the header is parsed first; the array must
be a plain numeric or bool dtype, fit ``max_bytes``, and be exactly the data the file (or the zip
member's declared size, which `zipfile` enforces while inflating) holds. A caller-given ``check``
sees the shape and dtype before a byte of data is read, and ``rows`` reads only the first rows.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from edgeport.errors import EdgeportError, short_message

DEFAULT_MAX_BYTES = 2 << 30  # 2 GiB for one array
_KINDS = "biuf"  # bool, int, uint, float


@dataclass(frozen=True)
class NpyHeader:
    """What an ``.npy`` header promises: shape, dtype, order, and the data's byte count."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran: bool

    @property
    def nbytes(self) -> int:
        """Bytes of array data the header promises."""
        return math.prod(self.shape) * self.dtype.itemsize


Check = Callable[[str, NpyHeader], None]


def read_header(stream: IO[bytes], what: str, data_bytes: int, max_bytes: int) -> NpyHeader:
    """Parse the header at the stream's position; ``data_bytes``: bytes from there to the end.

    Raises:
        EdgeportError: Not ``.npy``, an object/structured dtype, over ``max_bytes``, or a
            header that promises more or less data than the file holds.
    """
    start = stream.tell()
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except Exception as exc:  # numpy parses the header text with ast/tokenize: any error
        raise EdgeportError(
            f"{what} is not a readable .npy array: {short_message(exc)}",
            expected="an array written by numpy.save (no pickled objects)",
        ) from exc
    dtype = np.dtype(dtype)
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise EdgeportError(f"{what} has shape {list(shape)}", expected="sizes of 0 or more")
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise EdgeportError(
            f"{what} holds dtype {dtype.str!r}",
            expected="a plain numeric or bool array (no objects, strings or records)",
        )
    header = NpyHeader(tuple(int(d) for d in shape), dtype, bool(fortran))
    if header.nbytes > max_bytes:
        raise EdgeportError(
            f"{what} promises shape {list(header.shape)} of {dtype} ({header.nbytes:,} bytes)",
            expected=f"at most {max_bytes:,} bytes per array",
        )
    held = data_bytes - (stream.tell() - start)
    if held != header.nbytes:
        raise EdgeportError(
            f"{what} holds {held:,} bytes of data but its header promises {header.nbytes:,} "
            f"(shape {list(header.shape)}, {dtype})",
            fix="the file is truncated or was not written by numpy.save; write it again",
        )
    return header


def read_body(stream: IO[bytes], header: NpyHeader, what: str, rows: int | None) -> np.ndarray:
    """The array data after `read_header`; only the first ``rows`` rows when given (C order)."""
    shape = header.shape
    if rows is not None and shape and not header.fortran and rows < shape[0]:
        shape = (rows, *shape[1:])
    count = math.prod(shape)
    data = stream.read(count * header.dtype.itemsize)
    if len(data) != count * header.dtype.itemsize:
        raise EdgeportError(f"{what} ended before its data did", fix="write the file again")
    array = np.frombuffer(data, dtype=header.dtype, count=count)
    array = array.reshape(shape, order="F" if header.fortran else "C")
    return np.array(array[:rows] if rows is not None else array)


def load_npy(
    path: Path,
    what: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    rows: int | None = None,
    check: Check | None = None,
    name: str = "",
) -> np.ndarray:
    """Read one ``.npy`` file after checking its header (see the module docstring)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            header = read_header(f, what, size, max_bytes)
            if check is not None:
                check(name, header)
            return read_body(f, header, what, rows)
    except OSError as exc:
        raise EdgeportError(f"cannot read {what}: {exc.strerror or exc}") from exc


def load_npz(
    path: Path,
    what: str,
    names: list[str],
    *,
    optional: tuple[str, ...] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    rows: int | None = None,
    check: Check | None = None,
) -> dict[str, np.ndarray]:
    """Arrays ``names`` (and those of ``optional`` that exist) from an ``.npz`` archive.

    Raises:
        EdgeportError: Not a zip of ``.npy`` members, a name missing (listing those present),
            or a member that fails `read_header` or ``check``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = {
                i.filename.removesuffix(".npy"): i
                for i in archive.infolist()
                if i.filename.endswith(".npy")
            }
            missing = [n for n in names if n not in members]
            if missing:
                raise EdgeportError(
                    f"{what} has no array for inputs {missing}",
                    expected=f"one array per input, keyed {names}",
                    available=", ".join(members) or "no arrays",
                )
            out = {}
            for name in [*names, *(n for n in optional if n in members)]:
                info = members[name]
                label = f"{what}, array {name!r}"
                if info.file_size > max_bytes + 4096:
                    raise EdgeportError(
                        f"{label} inflates to {info.file_size:,} bytes",
                        expected=f"at most {max_bytes:,} bytes per array",
                    )
                with archive.open(info) as f:
                    header = read_header(f, label, info.file_size, max_bytes)
                    if check is not None:
                        check(name, header)
                    out[name] = read_body(f, header, label, rows)
            return out
    except EdgeportError:
        raise
    except Exception as exc:  # zipfile/zlib raise many kinds on corrupt archives
        raise EdgeportError(
            f"cannot read {what} as an .npz archive: {short_message(exc)}",
            expected="a file written by numpy.savez (a zip of .npy arrays)",
        ) from exc
