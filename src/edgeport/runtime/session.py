"""`edgeport.Session`: run an artifact with validated inputs, a provider policy and monitoring.

A Session adds next to nothing to ONNX Runtime's own cost: input checks are precomputed per
input (dtype, rank, fixed dims), and monitoring is a lock and a few integer updates. ``run`` is
thread-safe: ONNX Runtime's ``InferenceSession.run`` is, and the counters take a lock.

The artifact itself runs in its format's `Backend` (`edgeport.runtime.backends`, one class per
format, looked up in `BACKENDS` by the manifest's format). This module needs onnxruntime and
numpy, not torch (torch is imported only for TorchScript artifacts or when torch tensors are
passed in).
"""

from __future__ import annotations

import difflib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.bundle import Bundle, load_bundle
from edgeport.errors import EdgeportError
from edgeport.runtime.backends import Backend, DeviceTensor, IOSpecs, backend_class
from edgeport.runtime.backends import SessionOptions as SessionOptions
from edgeport.runtime.metrics import SessionMetrics
from edgeport.runtime.providers import Provider, ProviderPlan, resolve
from edgeport.spec import TensorSpec
from edgeport.trust import require_trust

log = logging.getLogger(__name__)

_MISSING = object()


class Outputs(dict[str, Any]):
    """Output name → array, labeled with the provider that really ran (``.provider``)."""

    __slots__ = ("provider",)

    def __init__(self, items: Any, provider: str) -> None:
        super().__init__(items)
        self.provider = provider


@dataclass(frozen=True)
class _InputCheck:
    name: str
    dtype: np.dtype[Any] | None  # None: not a tensor (sequence, optional, map)
    rank: int | None  # None: unknown rank
    fixed: tuple[tuple[int, int], ...]
    symbolic: tuple[tuple[int, str], ...]
    spec: TensorSpec


class Session:
    """Run one artifact: a bundle's (by name, or the recommended one), a bare ``.onnx`` or ONNX
    bytes. A TorchScript artifact opens only with ``trust_code=True``: loading it runs its code.
    An artifact file outside a bundle, with its IO specs given, opens with `Session.for_file`.

    Args:
        model: Bundle directory, ``.onnx`` path, or serialized ONNX bytes.
        artifact: Artifact name in a bundle (default: the manifest's recommended ONNX artifact,
            else ``onnx-fp32``).
        provider: ``cpu`` (default), ``cuda`` or ``tensorrt``.
        threads: Intra-op threads (shortcut for ``options.threads``).
        allow_fallback: Run on the CPU if the provider is unusable; outputs and metrics are
            then labeled ``cpu``. Off by default: asking for CUDA never silently gives CPU.
        options: ONNX Runtime settings.
        cast: Cast inputs of the wrong dtype instead of refusing them (off by default).
        trust_code: Allow opening a TorchScript artifact (it runs code from the file); logged.
        public_key: A PEM Ed25519 public key file: refuse a bundle that is unsigned or whose
            ``manifest.json.sig`` does not verify with it.
        device_id: GPU index for ``cuda`` / ``tensorrt``.

    Raises:
        EdgeportError: Missing/corrupt model, unknown artifact, unusable provider.
        CodeNotTrusted: A TorchScript artifact without ``trust_code=True``.
        IntegrityError: A hash, path or signature check failed.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        artifact: str | None = None,
        provider: str | Provider = "cpu",
        *,
        threads: int | None = None,
        allow_fallback: bool = False,
        options: SessionOptions | None = None,
        cast: bool = False,
        trust_code: bool = False,
        public_key: str | os.PathLike[str] | None = None,
        device_id: int = 0,
    ) -> None:
        self.bundle: Bundle | None = None
        options = _with_threads(options, threads)
        source, fmt, specs, name = self._locate(model, artifact, trust_code, public_key)
        plan = resolve(
            provider, allow_fallback=allow_fallback, device_id=device_id, tf32=options.tf32
        )
        self._open(source, fmt, specs, name, plan, options, cast)

    # ---- opening ---------------------------------------------------------------------------

    @classmethod
    def for_file(
        cls,
        path: str | os.PathLike[str],
        fmt: str,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        *,
        trust_code: bool = False,
        options: SessionOptions | None = None,
        threads: int | None = None,
        name: str | None = None,
    ) -> Session:
        """Open an artifact file that is not (yet) in a committed bundle, on the CPU.

        The exporter checks each artifact it writes this way before the bundle is committed,
        and `verify` each artifact of a bundle it has already checked. The given IO specs
        validate the feeds as a bundle's manifest would; an ONNX graph's own IO names must
        agree with them. Opening a format whose backend runs code (TorchScript) needs
        ``trust_code``; ONNX external data must stay in the model's directory.

        Args:
            path: The artifact file.
            fmt: Its format, a key of `edgeport.runtime.backends.BACKENDS` (``onnx``,
                ``torchscript``).
            inputs: Input specs, in call order.
            outputs: Output specs, in the order the artifact returns them.
            trust_code: Allow opening a format that runs code from the file; logged.
            options: ONNX Runtime settings.
            threads: Intra-op threads (shortcut for ``options.threads``; default: ONNX
                Runtime's choice).
            name: How messages, metrics and the trust log name the artifact (default: the
                file name).

        Raises:
            EdgeportError: An unknown format, a missing or corrupt file, IO names that are
                not the graph's.
            CodeNotTrusted: A format that runs code, without ``trust_code=True``.
            IntegrityError: ONNX external data that leaves the model's directory.
        """
        backend = backend_class(fmt)
        file = Path(path)
        label = name or file.name
        if not file.is_file():
            raise EdgeportError(
                f"{str(file)!r} does not exist", expected=f"an artifact file of format {fmt!r}"
            )
        if backend.runs_code:
            require_trust(trust_code, f"opening {fmt} artifact {label!r} ({file.name})")
        backend.check_file(file)
        options = _with_threads(options, threads)
        session = cls.__new__(cls)
        session.bundle = None
        specs = (list(inputs), list(outputs))
        session._open(str(file), fmt, specs, label, resolve("cpu"), options, cast=False)
        return session

    def _open(
        self,
        source: str | bytes,
        fmt: str,
        specs: IOSpecs | None,
        name: str,
        plan: ProviderPlan,
        options: SessionOptions,
        cast: bool,
    ) -> None:
        """Load ``source`` in its format's backend and precompute the input checks."""
        self.options = options
        self.cast = cast
        self.notes: list[str] = []
        self.artifact = name
        self.artifact_path = Path(source) if isinstance(source, str) else None
        self._backend: Backend = backend_class(fmt)(source, plan, options, specs)
        self.provider = self._backend.provider
        self._device_inputs = self._backend.device_tensors
        self.inputs: list[TensorSpec] = specs[0] if specs else self._backend.input_specs()
        self.outputs: list[TensorSpec] = specs[1] if specs else self._backend.output_specs()
        self._backend.check_names(self.inputs, self.outputs)
        self._input_names = [s.name for s in self.inputs]
        self._output_names = [s.name for s in self.outputs]
        self._checks = [_make_check(s) for s in self.inputs]
        labels = [label for c in self._checks for _, label in c.symbolic]
        self._shared_labels = {label for label in labels if labels.count(label) > 1}
        self.metrics_ = SessionMetrics(
            {"artifact": self.artifact, "provider": self.provider}, self._input_names
        )
        if self.provider in ("cuda", "tensorrt") and self._backend.has_int8():
            self.notes.append(
                "int8 on the CUDA provider is a known slow path (QDQ ops run as float "
                "emulation or fall back to the CPU); time it against fp32 before shipping"
            )
            log.warning("%s: %s", self.artifact, self.notes[-1])

    def _locate(
        self, model: Any, artifact: str | None, trust_code: bool, public_key: Any
    ) -> tuple[Any, str, IOSpecs | None, str]:
        if isinstance(model, bytes | bytearray):
            return bytes(model), "onnx", None, "<onnx bytes>"
        path = Path(model)
        if path.is_dir():
            return self._from_bundle(path, artifact, trust_code, public_key)
        if public_key is not None:
            raise EdgeportError(
                f"public_key applies to a signed bundle directory; {str(path)!r} is not one",
                fix="open the bundle directory that holds the file",
            )
        if not path.is_file():
            raise EdgeportError(
                f"{str(path)!r} does not exist",
                expected="a bundle directory, a .onnx file, or a TorchScript file",
            )
        if artifact is not None:
            raise EdgeportError(
                f"artifact={artifact!r} only applies to a bundle directory; {str(path)!r} is a file"
            )
        if path.suffix == ".onnx":
            backend_class("onnx").check_file(path)
            return str(path), "onnx", None, path.name
        raise EdgeportError(
            f"{str(path)!r} is not an .onnx file",
            expected="a bundle directory, a .onnx file, or ONNX bytes",
            fix="a TorchScript file runs code when opened: open the bundle that holds it with "
            "trust_code=True, or the file with Session.for_file(..., trust_code=True)",
        )

    def _from_bundle(
        self, root: Path, artifact: str | None, trust_code: bool, public_key: Any
    ) -> tuple[Any, str, IOSpecs, str]:
        bundle = load_bundle(root, public_key=public_key)
        self.bundle = bundle
        name = artifact or _default_artifact(bundle)
        entry = bundle.entry(name)
        path = bundle.path_of(name)
        if entry.runs_code:
            require_trust(
                trust_code,
                f"opening {entry.format} artifact {name!r} ({entry.path})",
                alternative="pick an ONNX artifact: "
                + ", ".join(n for n, e in bundle.spec.artifacts.items() if not e.runs_code),
            )
        backend_class(entry.format).check_file(path)
        return str(path), entry.format, (bundle.inputs, bundle.outputs), name

    # ---- running ---------------------------------------------------------------------------

    def run(self, feeds: Mapping[str, Any] | Sequence[Any] | Any) -> Outputs:
        """Run the model.

        Args:
            feeds: ``{name: array}``, a list/tuple of arrays in input order, or one array for a
                one-input model. numpy arrays or torch tensors.

        Returns:
            Output name → numpy array, with ``.provider`` naming the provider that ran.

        Raises:
            EdgeportError: An input is missing, unknown, or has the wrong dtype, rank or size.
        """
        start = time.perf_counter_ns()
        try:
            prepared = self._prepare(feeds)
            results = self._backend.run(prepared, self._output_names)
        except EdgeportError:
            self.metrics_.record_error()
            raise
        except Exception as exc:
            self.metrics_.record_error()
            raise EdgeportError(
                f"{self.artifact} failed at run time on {self.provider}: "
                f"{str(exc).strip().splitlines()[0][:400] if str(exc).strip() else exc!r}",
            ) from exc
        self.metrics_.record(
            time.perf_counter_ns() - start,
            tuple(getattr(a, "shape", ()) for a in prepared.values()),
        )
        return Outputs(zip(self._output_names, results, strict=True), self.provider)

    __call__ = run

    def _prepare(self, feeds: Any) -> dict[str, Any]:
        """Validated feeds in input order; the caller's dict itself when nothing changed."""
        if type(feeds) is dict and len(feeds) == len(self._checks):
            fast = self._prepare_dict(feeds)
            if fast is not None:
                return fast
        if isinstance(feeds, Mapping):
            if len(feeds) != len(self._checks) or any(n not in feeds for n in self._input_names):
                raise self._name_error(feeds)
            values = [feeds[n] for n in self._input_names]
        elif isinstance(feeds, list | tuple):
            if len(feeds) != len(self._checks):
                raise EdgeportError(
                    f"got {len(feeds)} positional inputs for {self.artifact}",
                    expected=f"{len(self._checks)}: {self._describe_inputs()}",
                )
            values = list(feeds)
        elif len(self._checks) == 1:
            values = [feeds]
        else:
            raise EdgeportError(
                f"got one {type(feeds).__name__} for {self.artifact}, which has "
                f"{len(self._checks)} inputs",
                expected=f"a dict or a list: {self._describe_inputs()}",
            )
        arrays = [self._check(c, v) for c, v in zip(self._checks, values, strict=True)]
        if self._shared_labels:
            self._check_symbolic(arrays)
        if type(feeds) is dict and all(a is v for a, v in zip(arrays, values, strict=True)):
            return feeds
        return dict(zip(self._input_names, arrays, strict=True))

    def _prepare_dict(self, feeds: dict[str, Any]) -> dict[str, Any] | None:
        """The common case, kept lean: a dict of the right names. None: take the slow path."""
        arrays = []
        unchanged = True
        for check in self._checks:
            value = feeds.get(check.name, _MISSING)
            if value is _MISSING:
                return None
            array = self._check(check, value)
            unchanged = unchanged and array is value
            arrays.append(array)
        if self._shared_labels:
            self._check_symbolic(arrays)
        return feeds if unchanged else dict(zip(self._input_names, arrays, strict=True))

    def _check(self, check: _InputCheck, value: Any) -> Any:
        if check.dtype is None:
            return value  # sequences, optionals, maps: ONNX Runtime checks them
        if type(value) is not np.ndarray:
            value = (
                DeviceTensor(value)
                if self._device_inputs and _is_cuda_tensor(value)
                else _to_numpy(value, check.name)
            )
        if value.dtype != check.dtype:
            if not self.cast:
                raise EdgeportError(
                    f"input {check.name!r} has dtype {value.dtype}",
                    expected=f"{check.dtype} ({_spec_text(check.spec)})",
                    fix=f"convert it (x.astype(np.{check.dtype})) or open the session with "
                    "cast=True; edgeport never casts silently",
                )
            value = value.astype(check.dtype)
        shape = value.shape
        if check.rank is not None and len(shape) != check.rank:
            hint = " (add a batch dim: x[None])" if len(shape) == check.rank - 1 else ""
            raise EdgeportError(
                f"input {check.name!r} has rank {len(shape)} (shape {list(shape)})",
                expected=f"rank {check.rank}: {_spec_text(check.spec)}{hint}",
            )
        for axis, size in check.fixed:
            if shape[axis] != size:
                raise EdgeportError(
                    f"input {check.name!r} has size {shape[axis]} at axis {axis} "
                    f"(shape {list(shape)})",
                    expected=f"{size} at axis {axis}: {_spec_text(check.spec)}",
                    fix="resize or reshape the input to the model's shape",
                )
        return value

    def _check_symbolic(self, arrays: list[Any]) -> None:
        seen: dict[str, tuple[int, str]] = {}
        for check, value in zip(self._checks, arrays, strict=True):
            for axis, label in check.symbolic:
                size = value.shape[axis]
                first = seen.setdefault(label, (size, check.name))
                if first[0] != size:
                    raise EdgeportError(
                        f"symbolic dim {label!r} is {first[0]} in input {first[1]!r} but {size} "
                        f"in input {check.name!r}",
                        expected="one size per symbolic dim across all inputs",
                    )

    def _name_error(self, feeds: Mapping[str, Any]) -> EdgeportError:
        missing = [n for n in self._input_names if n not in feeds]
        unknown = [str(n) for n in feeds if n not in self._input_names]
        parts = []
        for name in unknown:
            near = difflib.get_close_matches(name, missing, n=1)
            parts.append(
                f"unknown input {name!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
            )
        if missing:
            parts.append(
                "missing input"
                + ("s " if len(missing) > 1 else " ")
                + ", ".join(repr(m) for m in missing)
            )
        return EdgeportError(
            "; ".join(parts) + f" for {self.artifact}",
            expected=f"exactly these inputs: {self._describe_inputs()}",
        )

    def _describe_inputs(self) -> str:
        return ", ".join(_spec_text(s) for s in self.inputs)

    # ---- introspection ---------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """Snapshot: runs, errors, latency p50/p90/p99 (seconds), input shape counts."""
        return self.metrics_.snapshot()

    def prometheus(self) -> str:
        """The metrics in Prometheus text exposition format."""
        return self.metrics_.prometheus()

    def placement(self) -> dict[str, dict[str, int]]:
        """Which provider ran each node: provider → op type → node count (one profiled run)."""
        return self._backend.placement(self.inputs)

    @property
    def output_names(self) -> list[str]:
        """Output names, in the order the artifact returns them."""
        return list(self._output_names)

    def __repr__(self) -> str:
        return f"Session({self.artifact!r}, provider={self.provider!r})"


def _with_threads(options: SessionOptions | None, threads: int | None) -> SessionOptions:
    options = options or SessionOptions()
    if threads is not None:
        options = SessionOptions(**{**options.__dict__, "threads": threads})
    return options


def _default_artifact(bundle: Bundle) -> str:
    recommended = bundle.manifest.get("recommended", {}).get("artifact")
    artifacts = bundle.artifacts
    if recommended in artifacts and artifacts[recommended]["format"] == "onnx":
        return str(recommended)
    if "onnx-fp32" in artifacts:
        return "onnx-fp32"
    raise EdgeportError(
        f"bundle {str(bundle.root)!r} has no ONNX artifact to open by default",
        available=", ".join(artifacts) or "no artifacts",
        fix="name one with artifact=...",
    )


def _make_check(spec: TensorSpec) -> _InputCheck:
    if spec.dtype == "object" and not spec.shape:
        return _InputCheck(spec.name, None, None, (), (), spec)
    dtype = None if spec.dtype.startswith("non-tensor") else np.dtype(spec.dtype)
    rank = None if spec.dtype.startswith("non-tensor") or spec.shape is None else len(spec.shape)
    fixed = tuple((i, d) for i, d in enumerate(spec.shape) if isinstance(d, int))
    symbolic = tuple((i, d) for i, d in enumerate(spec.shape) if isinstance(d, str))
    return _InputCheck(spec.name, dtype, rank, fixed, symbolic, spec)


def _spec_text(spec: TensorSpec) -> str:
    dims = ", ".join("?" if d is None else str(d) for d in spec.shape)
    return f"{spec.name} {spec.dtype}[{dims}]"


def _is_cuda_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and getattr(value, "is_cuda", False)


def _to_numpy(value: Any, name: str) -> np.ndarray:
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return np.asarray(value.detach().cpu().numpy())
    if isinstance(value, np.generic | int | float | bool | list):
        return np.asarray(value)
    raise EdgeportError(
        f"input {name!r} is a {type(value).__name__}",
        expected="a numpy array or a torch tensor",
    )
