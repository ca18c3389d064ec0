"""The bundle: one directory holding every artifact, golden IO and the manifest (docs/design.md §3).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeport._npy import load_npy
from edgeport.errors import EdgeportError, IntegrityError, short_message
from edgeport.manifest import (
    SCHEMA,
    SCHEMA_FAMILY,
    ArtifactEntry,
    FileRecord,
    GoldenEntry,
    Manifest,
    parse_manifest,
)
from edgeport.signing import SIGNATURE_FILE
from edgeport.spec import TensorSpec

log = logging.getLogger(__name__)

__all__ = ["SCHEMA", "Bundle", "BundleWriter", "GoldenSet", "load_bundle", "resolve_inside"]

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
    """A loaded bundle: its directory, its manifest (JSON-shaped dict) and the typed `spec`.

    Use `load_bundle` to get one; it has checked the schema, every field and (by default) every
    hash. Every path the manifest names is resolved with `resolve_inside`.
    """

    root: Path
    manifest: dict[str, Any]
    spec: Manifest = field(init=False)

    def __post_init__(self) -> None:
        self.spec = parse_manifest(self.manifest)

    @property
    def artifacts(self) -> dict[str, dict[str, Any]]:
        """Artifact name → manifest entry (validated: path, sha256, format, precision)."""
        return {name: entry.raw for name, entry in self.spec.artifacts.items()}

    @property
    def inputs(self) -> list[TensorSpec]:
        """Model input specs, in call order, with the example sizes they were exported at."""
        examples = self.spec.input_examples
        return [
            TensorSpec(
                s.name,
                s.dtype,
                s.shape,
                {k: v for k, v in examples.items() if k in s.shape},
                s.values,
            )
            for s in self.spec.inputs
        ]

    @property
    def outputs(self) -> list[TensorSpec]:
        """Model output specs, in order."""
        return list(self.spec.outputs)

    def entry(self, name: str) -> ArtifactEntry:
        """The typed manifest entry of artifact ``name``, or a clear error listing the others."""
        if name not in self.spec.artifacts:
            raise EdgeportError(
                f"bundle {str(self.root)!r} has no artifact named {name!r}",
                available=", ".join(self.spec.artifacts) or "no artifacts",
            )
        return self.spec.artifacts[name]

    def artifact(self, name: str) -> dict[str, Any]:
        """The manifest entry of artifact ``name`` as JSON, or a clear error listing the others."""
        return dict(self.entry(name).raw)

    def size_of(self, name: str) -> int:
        """Bytes of an artifact's main file: the manifest's record, or the file's size."""
        recorded = self.entry(name).raw.get("size_bytes")
        return int(recorded) if recorded is not None else self.path_of(name).stat().st_size

    @property
    def tokenizer_dir(self) -> Path | None:
        """The directory of the tokenizer files the bundle carries (from an ``hf:`` source), each
        checked to lie inside the bundle; None when it carries none."""
        if not self.spec.tokenizer:
            return None
        paths = [resolve_inside(self.root, r.path, "tokenizer file") for r in self.spec.tokenizer]
        return paths[0].parent

    def path_of(self, name: str) -> Path:
        """Absolute path of an artifact's main file (checked to lie inside the bundle)."""
        return resolve_inside(self.root, self.entry(name).path, f"artifact {name!r}")

    def golden_sets(self, *, check_hashes: bool = True) -> list[GoldenSet]:
        """Every golden set, each file's path and sha256 checked before its array is read.

        Raises:
            IntegrityError: A golden path leaves the bundle, or a hash is missing or differs.
            EdgeportError: A golden file is not a plain ``.npy`` array of a sane size.
        """
        sets = []
        for entry in self.spec.golden:
            arrays = {}
            for kind in ("inputs", "outputs"):
                arrays[kind] = {
                    k: self._golden_array(entry, rel, check_hashes)
                    for k, rel in getattr(entry, kind).items()
                }
            sets.append(
                GoldenSet(entry.name, entry.sizes, arrays["inputs"], arrays["outputs"], entry.batch)
            )
        return sets

    def _golden_array(self, entry: GoldenEntry, rel: str, check_hashes: bool) -> np.ndarray:
        path = resolve_inside(self.root, rel, f"golden file of set {entry.name!r}")
        if check_hashes:
            problem = _golden_hash_problem(path, rel, entry)
            if problem:
                raise IntegrityError(problem, fix=_TAMPERED)
        return load_npy(path, f"golden file {rel!r}", max_bytes=MAX_GOLDEN_BYTES)


_TAMPERED = "a file was modified or replaced after export; re-export the bundle"
MAX_GOLDEN_BYTES = 1 << 30
MAX_MANIFEST_BYTES = 64 << 20


def resolve_inside(root: Path, rel: str, what: str) -> Path:
    """``root / rel`` after checking it stays in the bundle: the one path rule (docs/design.md §7).

    ``rel`` must be relative, non-empty, free of ``..``, and still inside ``root`` once symlinks
    are resolved. libedgeport applies the same rule with the same messages.

    Raises:
        IntegrityError: The path leaves the bundle.
    """
    if not rel or "\0" in rel or os.path.isabs(rel) or ".." in Path(rel).parts:
        raise IntegrityError(
            f"{what} points at '{rel}', outside the bundle: paths in a bundle must be relative "
            "and stay inside it",
            fix="do not open this bundle; re-export it",
        )
    base = root.resolve()
    full = (base / rel).resolve()
    if not full.is_relative_to(base):
        raise IntegrityError(
            f"{what} '{rel}' resolves (through a symlink) outside the bundle, to '{full}'",
            fix="do not open this bundle; re-export it",
        )
    return root / rel


def load_bundle(
    path: str | Path, *, check_hashes: bool = True, public_key: str | Path | None = None
) -> Bundle:
    """Open a bundle directory: its signature (when a key is given), schema, fields and hashes.

    Args:
        path: The bundle directory.
        check_hashes: Check the sha256 of every artifact, external-data and golden file.
        public_key: A PEM Ed25519 public key: refuse the bundle unless ``manifest.json.sig``
            verifies the manifest with it.

    Raises:
        EdgeportError: Not a bundle, unknown schema, or a manifest field missing or wrong.
        IntegrityError: A path leaves the bundle, a file is missing or its hash differs, or the
            signature is missing or wrong.
    """
    root = Path(path).absolute()
    manifest_path = root / MANIFEST
    if manifest_path.is_symlink():
        resolve_inside(root, MANIFEST, "the manifest")  # a link out is refused like any path
    if not manifest_path.is_file():
        raise EdgeportError(
            f"{str(path)!r} is not an edgeport bundle (no {MANIFEST})",
            expected="a directory written by `edgeport export`",
        )
    text = _read_manifest(manifest_path)
    if public_key is not None:
        from edgeport.signing import check_signature

        check_signature(root, text, public_key)
    try:
        manifest = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise EdgeportError(
            f"{str(manifest_path)!r} is not valid JSON ({short_message(exc)})",
            fix="re-export the bundle; manifests are never edited by hand",
        ) from exc
    bundle = Bundle(root, manifest)
    if check_hashes:
        problems = hash_problems(bundle)
        if problems:
            raise IntegrityError(
                f"bundle {str(path)!r} failed its integrity check: " + "; ".join(problems),
                fix=_TAMPERED,
            )
    return bundle


def _read_manifest(path: Path) -> bytes:
    return read_capped(path, MAX_MANIFEST_BYTES, "the manifest")


def read_capped(path: str | Path, limit: int, what: str) -> bytes:
    """A file's bytes, refusing one longer than ``limit`` without reading past it."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise EdgeportError(
            f"{what} {str(path)!r} is over {limit:,} bytes", expected="a smaller file"
        )
    return data


def hash_problems(bundle: Bundle) -> list[str]:
    """Every file the manifest names that leaves the bundle, is missing or has another sha256.

    Covers artifacts, their external data, golden files, the pruning plan and weights, and the
    tokenizer's files.
    """
    problems = []
    records = []
    for name, entry in bundle.spec.artifacts.items():
        records.append((f"artifact {name!r}", FileRecord(entry.path, entry.sha256)))
        records += [(f"external data of {name!r}", r) for r in entry.external_data]
    records += [(f"pruning {key}", r) for key, r in bundle.spec.pruning.items()]
    records += [("tokenizer file", r) for r in bundle.spec.tokenizer]
    for what, record in records:
        try:
            path = resolve_inside(bundle.root, record.path, what)
        except IntegrityError as exc:
            problems.append(exc.what)
            continue
        if not path.is_file():
            problems.append(f"{what}: file {record.path!r} is missing")
            continue
        actual = sha256_file(path)
        if actual != record.sha256:
            problems.append(
                f"{what}: sha256 of {record.path!r} is {actual[:16]}…, "
                f"manifest says {record.sha256[:16]}…"
            )
    for gset in bundle.spec.golden:
        for rel in (*gset.inputs.values(), *gset.outputs.values()):
            try:
                path = resolve_inside(bundle.root, rel, f"golden file of set {gset.name!r}")
            except IntegrityError as exc:
                problems.append(exc.what)
                continue
            problem = _golden_hash_problem(path, rel, gset)
            if problem:
                problems.append(problem)
    return problems


def _golden_hash_problem(path: Path, rel: str, entry: GoldenEntry) -> str | None:
    expected = entry.sha256.get(rel)
    if expected is None:
        return f"golden file {rel!r} has no sha256 in the manifest"
    if not path.is_file():
        return f"golden file {rel!r} is missing"
    actual = sha256_file(path)
    if actual != expected:
        return f"golden file: sha256 of {rel!r} is {actual[:16]}…, manifest says {expected[:16]}…"
    return None


class BundleWriter:
    """Builds a bundle in a hidden sibling directory and swaps it into place on `commit`.

    Use as a context manager; leaving the block without `commit` (an exception) removes the
    temporary directory and leaves the final name untouched. Only an empty directory or an
    existing edgeport bundle is ever replaced (never ``.``, a parent of it, the home directory
    or ``/`` as a new ``--out``).

    Args:
        final: The bundle directory to create or replace.
        update: ``final`` is the bundle being updated in place (quantize, build's reports): it
            may be the current directory.
    """

    def __init__(self, final: str | Path, *, update: bool = False) -> None:
        self.final = Path(os.path.abspath(final))
        check_out_dir(self.final, update=update)
        self.final.parent.mkdir(parents=True, exist_ok=True)
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
        """Start from an existing bundle's regular files (hard links where possible, else copies).

        Symlinks are never followed or copied, and the signature is dropped: the new manifest
        differs from the one it signed.
        """
        if (bundle.root / SIGNATURE_FILE).exists():
            log.warning(
                "%s was signed; the signature covered the old manifest and is not carried over: "
                "sign the bundle again (edgeport sign)",
                bundle.root,
            )
        for dirpath, dirs, files in os.walk(bundle.root):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(dirpath, d))]
            for name in files:
                src = Path(dirpath, name)
                if src.is_symlink() or not src.is_file() or name in (MANIFEST, SIGNATURE_FILE):
                    continue
                dst = self.root / src.relative_to(bundle.root)
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)

    def golden_entry(
        self,
        set_dir: str,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        **fields: Any,
    ) -> dict[str, Any]:
        """Write one golden set under ``set_dir`` and return its manifest entry (with hashes)."""
        files = {
            kind: {k: self.save_golden(set_dir, kind, k, v) for k, v in arrays.items()}
            for kind, arrays in (("inputs", inputs), ("outputs", outputs))
        }
        rels = [*files["inputs"].values(), *files["outputs"].values()]
        return {**fields, **files, "sha256": {r: sha256_file(self.root / r) for r in rels}}

    def save_golden(self, set_dir: str, kind: str, name: str, array: np.ndarray) -> str:
        """Write a golden array under ``set_dir/kind/``, its file name safe for any tensor name."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.save_npy(f"{set_dir}/{kind}/{safe}.npy", array)

    def save_npy(self, rel: str, array: np.ndarray) -> str:
        """Write ``array`` to ``rel`` (no pickle) and return ``rel``."""
        np.save(self.fresh(rel), np.ascontiguousarray(array), allow_pickle=False)
        return rel

    def fresh(self, rel: str) -> Path:
        """The path of ``rel`` in the new bundle, ready to be written.

        A file carried over by `copy_from` is a hard link to the old bundle's file: it is
        unlinked first, so that writing never changes the bundle being replaced.
        """
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        return path

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Write the manifest, fsync everything and swap the bundle into place."""
        manifest = {"schema": SCHEMA, **{k: v for k, v in manifest.items() if k != "schema"}}
        parse_manifest(json.loads(dumps_strict(manifest)))  # never write what we cannot read
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


def check_out_dir(out: str | Path, *, update: bool = False) -> None:
    """Refuse to replace anything edgeport did not make (docs/design.md §7).

    Commands call it before any work, so that a refused ``--out`` costs nothing; `BundleWriter`
    calls it again before it writes.
    """
    final = Path(os.path.abspath(out))
    cwd = Path(os.getcwd())
    if final.is_symlink():
        raise EdgeportError(
            f"{str(final)!r} is a symlink",
            expected="a new path, or an existing bundle directory (not a link to one)",
        )
    protected = {Path(final.anchor), Path.home()}
    if final in protected or (not update and cwd.is_relative_to(final)):
        raise EdgeportError(
            f"refusing to write a bundle over {str(final)!r}: it is the current directory, a "
            "parent of it, the home directory or the file system root",
            fix="give --out a new directory, e.g. --out my-bundle",
        )
    existing = next(p for p in final.parents if p.exists() or p == Path(final.anchor))
    if not existing.is_dir():
        raise EdgeportError(
            f"cannot create {str(final)!r}: a parent of it is a file, not a directory",
            fix="choose an --out path whose parents are directories",
        )
    if final.exists() and not _replaceable(final):
        raise EdgeportError(
            f"{str(final)!r} exists and is not an edgeport bundle",
            expected="a new path, an empty directory, or an existing bundle to replace",
            fix="choose another --out directory, or remove this one yourself",
        )


def _replaceable(path: Path) -> bool:
    """An empty directory, or one whose manifest.json is an ``edgeport.bundle/*`` manifest."""
    if not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    manifest = path / MANIFEST
    if manifest.is_symlink() or not manifest.is_file():
        return False
    try:
        if manifest.stat().st_size > MAX_MANIFEST_BYTES:
            return False
        doc = json.loads(manifest.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    schema = doc.get("schema") if isinstance(doc, dict) else None
    return isinstance(schema, str) and schema.startswith(SCHEMA_FAMILY)


def write_file_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync, and rename it over ``path``.

    A symlink at ``path`` is replaced, never written through; a crash leaves the old file.

    Raises:
        EdgeportError: The folder does not exist, or ``path`` is a directory.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise EdgeportError(
            f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist",
            fix="create the folder first, or write somewhere else",
        )
    if path.is_dir() and not path.is_symlink():
        raise EdgeportError(f"cannot write {str(path)!r}: it is a directory")
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


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
    leaves the directory (docs/design.md §7).

    Raises:
        EdgeportError: A location escapes the model directory, or the file is not ONNX.
    """
    import onnx

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:
        raise EdgeportError(
            f"{str(model_path)!r} is not a readable ONNX model: {short_message(exc)}",
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
            raise IntegrityError(
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


def sign_bundle(path: str | Path, private_key: str | Path) -> Path:
    """Write ``manifest.json.sig``: an Ed25519 signature over the manifest's exact bytes.

    The bundle is checked first (schema, fields, every hash): edgeport never signs a bundle
    whose files do not match its manifest.

    Returns:
        The signature file's path.
    """
    from edgeport.signing import sign_manifest

    bundle = load_bundle(path)
    text = _read_manifest(bundle.root / MANIFEST)
    if json.loads(text) != bundle.manifest:  # sign only the manifest that was just checked
        raise EdgeportError(f"{str(path)!r} changed while it was being signed; sign it again")
    return write_file_atomic(bundle.root / SIGNATURE_FILE, sign_manifest(text, private_key))
