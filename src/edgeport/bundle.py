"""The bundle: one directory holding every artifact, golden IO and the manifest (DESIGN.md §3).

Writing is atomic: a bundle is built in a hidden sibling directory, every file is fsynced, and the
directory is swapped into place with one ``renameat2(RENAME_EXCHANGE)`` (or ``rename`` when the
final name is free). A crash leaves at most a hidden ``.NAME.tmp-PID-*`` directory, which the next
write removes; it never leaves a half bundle under the final name.

Loading checks the schema and the sha256 of every artifact (and its external data) before use.
This module needs neither torch nor onnxruntime.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import CheckFailed, EdgeportError
from edgeport.spec import TensorSpec

log = logging.getLogger(__name__)

SCHEMA = "edgeport.bundle/1"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def strict_json(value: Any) -> Any:
    """``value`` with non-finite floats as the strings "Infinity", "-Infinity", "NaN".

    Python's json writes bare ``Infinity``/``NaN``, which is not JSON: C++ (nlohmann-json), jq
    and browsers refuse the file. Metrics such as the SQNR of an exact match are infinite.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def dumps_strict(value: Any) -> str:
    """JSON text that every JSON parser accepts (see `strict_json`)."""
    return json.dumps(strict_json(value), indent=2, allow_nan=False)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(root: Path, rel: str) -> dict[str, Any]:
    """``{path, sha256, size_bytes}`` of a file inside ``root``."""
    path = root / rel
    return {"path": rel, "sha256": sha256_file(path), "size_bytes": path.stat().st_size}


@dataclass(frozen=True)
class GoldenSet:
    """One set of golden inputs and the eager PyTorch outputs for them.

    Attributes:
        name: Set name (``b1``, ``b2``: the batch / symbolic sizes used).
        sizes: Symbolic dim label → size used for this set.
        inputs: Input name → array.
        outputs: Output name → reference array (eager PyTorch, eval mode).
    """

    name: str
    sizes: dict[str, int]
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    batch: int | None = None  # samples per run when the set holds many samples; None: one run


@dataclass
class Bundle:
    """A loaded bundle: its directory and its manifest (a JSON-shaped dict).

    Use `load_bundle` to get one; it has checked the schema and the hashes.
    """

    root: Path
    manifest: dict[str, Any]

    @property
    def artifacts(self) -> dict[str, dict[str, Any]]:
        """Artifact name → manifest entry."""
        return dict(self.manifest.get("artifacts", {}))

    @property
    def inputs(self) -> list[TensorSpec]:
        """Model input specs, in call order, with the example sizes they were exported at."""
        examples = dict(self.manifest.get("input_examples", {}))
        specs = [TensorSpec.from_json(d) for d in self.manifest["inputs"]]
        return [
            TensorSpec(
                s.name, s.dtype, s.shape, {k: v for k, v in examples.items() if k in s.shape}
            )
            for s in specs
        ]

    @property
    def outputs(self) -> list[TensorSpec]:
        """Model output specs, in order."""
        return [TensorSpec.from_json(d) for d in self.manifest["outputs"]]

    def artifact(self, name: str) -> dict[str, Any]:
        """The manifest entry of artifact ``name``, or a clear error listing the others."""
        if name not in self.manifest.get("artifacts", {}):
            raise EdgeportError(
                f"bundle {str(self.root)!r} has no artifact named {name!r}",
                available=", ".join(self.manifest.get("artifacts", {})) or "no artifacts",
            )
        return dict(self.manifest["artifacts"][name])

    def path_of(self, name: str) -> Path:
        """Absolute path of an artifact's main file."""
        return self.root / self.artifact(name)["path"]

    def golden_sets(self) -> list[GoldenSet]:
        """Every golden set, arrays loaded from ``golden/``."""
        sets = []
        for entry in self.manifest.get("golden", {}).get("sets", []):
            sets.append(
                GoldenSet(
                    name=entry["name"],
                    sizes=dict(entry["sizes"]),
                    inputs={k: _load_npy(self.root / p) for k, p in entry["inputs"].items()},
                    outputs={k: _load_npy(self.root / p) for k, p in entry["outputs"].items()},
                    batch=entry.get("batch"),
                )
            )
        return sets


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise CheckFailed(f"golden file {str(path)!r} cannot be read: {exc}") from exc


def load_bundle(path: str | Path, *, check_hashes: bool = True) -> Bundle:
    """Open a bundle directory, check its schema and (by default) every artifact's sha256.

    Raises:
        EdgeportError: Not a bundle, unknown schema, or unreadable manifest.
        CheckFailed: An artifact or golden file is missing or its hash does not match.
    """
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise EdgeportError(
            f"{str(root)!r} is not an edgeport bundle (no {MANIFEST})",
            expected="a directory written by `edgeport export`",
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgeportError(
            f"{str(manifest_path)!r} is not valid JSON ({exc})",
            fix="re-export the bundle; manifests are never edited by hand",
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        got = manifest.get("schema") if isinstance(manifest, dict) else type(manifest).__name__
        raise EdgeportError(
            f"{str(manifest_path)!r} has schema {got!r}",
            expected=f"schema {SCHEMA!r}",
            fix="re-export the bundle with this edgeport version",
        )
    bundle = Bundle(root, manifest)
    if check_hashes:
        problems = hash_problems(bundle)
        if problems:
            raise CheckFailed(
                f"bundle {str(root)!r} failed its integrity check: " + "; ".join(problems),
                fix="an artifact was modified or replaced after export; re-export the bundle",
            )
    return bundle


def hash_problems(bundle: Bundle) -> list[str]:
    """Every artifact (and external-data file) whose sha256 differs from the manifest."""
    problems = []
    for name, entry in bundle.artifacts.items():
        for record in [entry, *entry.get("external_data", [])]:
            path = bundle.root / record["path"]
            if not path.is_file():
                problems.append(f"artifact {name!r}: file {record['path']!r} is missing")
                continue
            actual = sha256_file(path)
            if actual != record["sha256"]:
                problems.append(
                    f"artifact {name!r}: sha256 of {record['path']!r} is {actual[:16]}…, "
                    f"manifest says {record['sha256'][:16]}…"
                )
    return problems


class BundleWriter:
    """Builds a bundle in a hidden sibling directory and swaps it into place on `commit`.

    Use as a context manager; leaving the block without `commit` (an exception) removes the
    temporary directory and leaves the final name untouched.

    Args:
        final: The bundle directory to create or replace.
    """

    def __init__(self, final: str | Path) -> None:
        self.final = Path(final).absolute()
        self.final.parent.mkdir(parents=True, exist_ok=True)
        if self.final.exists() and not _replaceable(self.final):
            raise EdgeportError(
                f"{str(self.final)!r} exists and is not an edgeport bundle",
                expected="a new path, or an existing bundle to replace",
                fix="choose another --out directory, or remove this one yourself",
            )
        _remove_stale_temps(self.final)
        prefix = f".{self.final.name}.tmp-{os.getpid()}-"
        self.root = Path(tempfile.mkdtemp(prefix=prefix, dir=self.final.parent))
        self._committed = False

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            shutil.rmtree(self.root, ignore_errors=True)

    def copy_from(self, bundle: Bundle) -> None:
        """Start from an existing bundle's files (hard links where possible, else copies)."""
        for src in bundle.root.rglob("*"):
            if src.is_file() and src.name != MANIFEST:
                dst = self.root / src.relative_to(bundle.root)
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)

    def save_golden(self, set_dir: str, kind: str, name: str, array: np.ndarray) -> str:
        """Write a golden array under ``set_dir/kind/``, its file name safe for any tensor name."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.save_npy(f"{set_dir}/{kind}/{safe}.npy", array)

    def save_npy(self, rel: str, array: np.ndarray) -> str:
        """Write ``array`` to ``rel`` (no pickle) and return ``rel``."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        return rel

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Write the manifest, fsync everything and swap the bundle into place."""
        manifest = {"schema": SCHEMA, **{k: v for k, v in manifest.items() if k != "schema"}}
        (self.root / MANIFEST).write_text(dumps_strict(manifest) + "\n")
        _fsync_tree(self.root)
        if self.final.exists():
            _exchange(self.root, self.final)
            shutil.rmtree(self.root, ignore_errors=True)  # now holds the old bundle
        else:
            os.rename(self.root, self.final)
        _fsync_dir(self.final.parent)
        self._committed = True
        return self.final


def _replaceable(path: Path) -> bool:
    return path.is_dir() and ((path / MANIFEST).is_file() or not any(path.iterdir()))


def _remove_stale_temps(final: Path) -> None:
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        pid_text = stale.name.removeprefix(f".{final.name}.tmp-").split("-")[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            log.info("removing %s, left by an interrupted write", stale)
            shutil.rmtree(stale, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> None:
    """Atomically swap two directories (Linux renameat2); two renames elsewhere."""
    libc_name = ctypes.util.find_library("c")
    renameat2 = getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None)
    if renameat2 is not None:
        rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        if rc == 0:
            return
        log.debug("renameat2 failed (errno %d); using two renames", ctypes.get_errno())
    aside = b.with_name(f".{b.name}.old-{os.getpid()}")
    os.rename(b, aside)
    os.rename(a, b)
    with contextlib.suppress(OSError):
        os.rename(aside, a)


def check_external_data(model_path: Path) -> list[str]:
    """Paths of an ONNX model's external data, after checking each stays in the model's directory.

    Checked before any external file is opened: no absolute paths, no ``..``, no symlink that
    leaves the directory (DESIGN.md §7).

    Raises:
        EdgeportError: A location escapes the model directory, or the file is not ONNX.
    """
    import onnx

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:
        raise EdgeportError(
            f"{str(model_path)!r} is not a readable ONNX model: {_short(exc)}",
            expected="a complete .onnx file",
            fix="the file may be truncated or corrupt; re-export it",
        ) from exc
    base = model_path.parent.resolve()
    locations = []
    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        resolved = (base / location).resolve()
        if (
            not location
            or os.path.isabs(location)
            or ".." in Path(location).parts
            or not resolved.is_relative_to(base)
        ):
            raise EdgeportError(
                f"{str(model_path)!r}: tensor {tensor.name!r} points its external data at "
                f"{location!r}, outside the model's directory",
                expected="a relative path inside the model's directory",
                fix="re-export the model; never load ONNX files whose data lives elsewhere",
            )
        if location not in locations:
            locations.append(location)
    return locations


def _all_tensors(model: Any) -> list[Any]:
    from onnx.external_data_helper import _get_all_tensors

    return list(_get_all_tensors(model))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
