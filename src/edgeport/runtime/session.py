"""`edgeport.Session`: run an artifact with validated inputs, a provider policy and monitoring.

A Session adds next to nothing to ONNX Runtime's own cost: input checks are precomputed per
input (dtype, rank, fixed dims), and monitoring is a lock and a few integer updates. ``run`` is
thread-safe: ONNX Runtime's ``InferenceSession.run`` is, and the counters take a lock.

This module needs onnxruntime and numpy, not torch (torch is imported only for TorchScript
artifacts or when torch tensors are passed in).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.bundle import Bundle, check_external_data, load_bundle
from edgeport.errors import EdgeportError
from edgeport.runtime.metrics import SessionMetrics
from edgeport.runtime.providers import Provider, ProviderPlan, check_used, resolve
from edgeport.spec import TensorSpec
from edgeport.trust import require_trust

log = logging.getLogger(__name__)

_MISSING = object()
GRAPH_OPTIMIZATION = ("disable", "basic", "extended", "all")
EXECUTION_MODES = ("sequential", "parallel")
INT8_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "MatMulInteger",
        "ConvInteger",
        "DynamicQuantizeLinear",
    }
)

# ONNX Runtime's type strings → numpy dtypes.
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


@dataclass(frozen=True)
class SessionOptions:
    """ONNX Runtime session settings.

    Attributes:
        threads: Intra-op threads (default: ONNX Runtime's choice, one per core).
        inter_threads: Inter-op threads, used with ``execution_mode="parallel"``.
        graph_optimization: ``disable``, ``basic``, ``extended`` or ``all`` (default).
        execution_mode: ``sequential`` (default) or ``parallel``.
        spinning: Let intra-op threads spin after a run (ONNX Runtime's default, True).
            Turn off when several sessions share the cores (docs/design.md §6).
        tf32: With the ONNX Runtime CUDA provider, allow TF32 matrix products and convolutions
            (faster on Ampere and newer, ~1e-3 relative error). Off by default, so that an fp32
            artifact runs at fp32 and keeps the parity it was verified with. TorchScript on CUDA
            runs with torch's own settings.
    """

    threads: int | None = None
    inter_threads: int | None = None
    graph_optimization: str = "all"
    execution_mode: str = "sequential"
    spinning: bool = True
    tf32: bool = False

    def __post_init__(self) -> None:
        if self.graph_optimization not in GRAPH_OPTIMIZATION:
            raise EdgeportError(
                f"unknown graph optimization level {self.graph_optimization!r}",
                available=", ".join(GRAPH_OPTIMIZATION),
            )
        if self.execution_mode not in EXECUTION_MODES:
            raise EdgeportError(
                f"unknown execution mode {self.execution_mode!r}",
                available=", ".join(EXECUTION_MODES),
            )
        for name in ("threads", "inter_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise EdgeportError(f"{name}={value} must be at least 1")

    def to_ort(self) -> Any:
        """The equivalent ``onnxruntime.SessionOptions``."""
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        if self.threads:
            so.intra_op_num_threads = self.threads
        if self.inter_threads:
            so.inter_op_num_threads = self.inter_threads
        level = ort.GraphOptimizationLevel
        so.graph_optimization_level = {
            "disable": level.ORT_DISABLE_ALL,
            "basic": level.ORT_ENABLE_BASIC,
            "extended": level.ORT_ENABLE_EXTENDED,
            "all": level.ORT_ENABLE_ALL,
        }[self.graph_optimization]
        so.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL
            if self.execution_mode == "parallel"
            else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        so.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if self.spinning else "0"
        )
        so.add_session_config_entry(
            "session.inter_op.allow_spinning", "1" if self.spinning else "0"
        )
        return so


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

    Args:
        model: Bundle directory, ``.onnx`` / ``.ts`` path, or serialized ONNX bytes.
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
        options = options or SessionOptions()
        if threads is not None:
            options = SessionOptions(**{**options.__dict__, "threads": threads})
        self.options = options
        self.cast = cast
        self.bundle: Bundle | None = None
        self.notes: list[str] = []
        source, fmt, specs, self.artifact = self._locate(model, artifact, trust_code, public_key)
        self.artifact_path = Path(source) if isinstance(source, str) else None
        plan = resolve(
            provider, allow_fallback=allow_fallback, device_id=device_id, tf32=options.tf32
        )
        if fmt == "torchscript":
            self._impl: _Impl = _TorchScriptImpl(source, plan, specs)
        else:
            self._impl = _OrtImpl(source, plan, options)
        self.provider = self._impl.provider
        # CUDA torch tensors stay on the device (IO binding) when the provider is a GPU one.
        self._device_inputs = fmt == "onnx" and self.provider in ("cuda", "tensorrt")
        self.inputs: list[TensorSpec] = specs[0] if specs else self._impl.input_specs()
        self.outputs: list[TensorSpec] = specs[1] if specs else self._impl.output_specs()
        self._impl.check_names(self.inputs, self.outputs)
        self._input_names = [s.name for s in self.inputs]
        self._output_names = [s.name for s in self.outputs]
        self._checks = [_make_check(s) for s in self.inputs]
        labels = [label for c in self._checks for _, label in c.symbolic]
        self._shared_labels = {label for label in labels if labels.count(label) > 1}
        self.metrics_ = SessionMetrics(
            {"artifact": self.artifact, "provider": self.provider}, self._input_names
        )
        if self.provider in ("cuda", "tensorrt") and fmt == "onnx" and self._impl.has_int8():
            self.notes.append(
                "int8 on the CUDA provider is a known slow path (QDQ ops run as float "
                "emulation or fall back to the CPU); time it against fp32 before shipping"
            )
            log.warning("%s: %s", self.artifact, self.notes[-1])

    # ---- opening ---------------------------------------------------------------------------

    def _locate(
        self, model: Any, artifact: str | None, trust_code: bool, public_key: Any
    ) -> tuple[Any, str, tuple[list[TensorSpec], list[TensorSpec]] | None, str]:
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
            check_external_data(path)
            return str(path), "onnx", None, path.name
        raise EdgeportError(
            f"{str(path)!r} is not an .onnx file",
            expected="a bundle directory, a .onnx file, or ONNX bytes",
            fix="a TorchScript file runs code when opened: open the bundle that holds it with "
            "trust_code=True",
        )

    def _from_bundle(
        self, root: Path, artifact: str | None, trust_code: bool, public_key: Any
    ) -> tuple[Any, str, tuple[list[TensorSpec], list[TensorSpec]], str]:
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
        if entry.format == "onnx":
            check_external_data(path)
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
            results = self._impl.run(prepared, self._output_names)
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
                _DeviceTensor(value)
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
        return self._impl.placement(self.inputs)

    @property
    def output_names(self) -> list[str]:
        """Output names, in the order the artifact returns them."""
        return list(self._output_names)

    def __repr__(self) -> str:
        return f"Session({self.artifact!r}, provider={self.provider!r})"


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


class _DeviceTensor:
    """A CUDA torch tensor seen as dtype/shape/pointer, bound to ONNX Runtime without a copy."""

    __slots__ = ("data_ptr", "device_id", "dtype", "shape", "tensor")

    def __init__(self, tensor: Any) -> None:
        self.tensor = tensor.contiguous()  # kept alive until the run ends
        self.dtype = np.dtype(str(tensor.dtype).removeprefix("torch."))
        self.shape = tuple(tensor.shape)
        self.device_id = tensor.device.index or 0
        self.data_ptr = self.tensor.data_ptr()

    def astype(self, dtype: np.dtype[Any]) -> _DeviceTensor:
        import torch

        return _DeviceTensor(self.tensor.to(getattr(torch, dtype.name)))


def _to_numpy(value: Any, name: str) -> np.ndarray:
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return np.asarray(value.detach().cpu().numpy())
    if isinstance(value, np.generic | int | float | bool | list):
        return np.asarray(value)
    raise EdgeportError(
        f"input {name!r} is a {type(value).__name__}",
        expected="a numpy array or a torch tensor",
    )


# ---- backends ------------------------------------------------------------------------------


class _Impl:
    provider: str

    def run(self, feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        raise NotImplementedError

    def input_specs(self) -> list[TensorSpec]:
        raise NotImplementedError

    def output_specs(self) -> list[TensorSpec]:
        raise NotImplementedError

    def check_names(self, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
        return None

    def has_int8(self) -> bool:
        return False

    def placement(self, inputs: list[TensorSpec]) -> dict[str, dict[str, int]]:
        raise NotImplementedError


class _OrtImpl(_Impl):
    def __init__(self, source: str | bytes, plan: ProviderPlan, options: SessionOptions) -> None:
        import onnxruntime as ort

        self._source = source
        self._plan = plan
        self._options = options
        try:
            self._session = ort.InferenceSession(
                source, options.to_ort(), providers=plan.ort_providers
            )
        except Exception as exc:
            where = "<bytes>" if isinstance(source, bytes) else repr(source)
            raise EdgeportError(
                f"ONNX Runtime cannot load {where}: {_first_line(exc)}",
                fix="the file may be corrupt or use ops this onnxruntime lacks; re-export it",
            ) from exc
        self.provider = check_used(plan, self._session.get_providers())
        self._iobinding = self.provider in ("cuda", "tensorrt")
        self._device_id = next(
            (p[1].get("device_id", 0) for p in plan.ort_providers if isinstance(p, tuple)), 0
        )

    def run(self, feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        if self._iobinding:
            return self._run_bound(feeds, outputs)
        return self._session.run(outputs, feeds)

    def _run_bound(self, feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        """CUDA: inputs copied to the device once, outputs kept there until the final copy."""
        binding = self._session.io_binding()
        for name, array in feeds.items():
            if isinstance(array, _DeviceTensor):
                binding.bind_input(
                    name, "cuda", array.device_id, array.dtype, array.shape, array.data_ptr
                )
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name in outputs:
            binding.bind_output(name, "cuda", self._device_id)
        self._session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    def input_specs(self) -> list[TensorSpec]:
        return [_ort_spec(v) for v in self._session.get_inputs()]

    def output_specs(self) -> list[TensorSpec]:
        return [_ort_spec(v) for v in self._session.get_outputs()]

    def check_names(self, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
        graph_in = [v.name for v in self._session.get_inputs()]
        graph_out = [v.name for v in self._session.get_outputs()]
        if graph_in != [s.name for s in inputs] or graph_out != [s.name for s in outputs]:
            raise EdgeportError(
                f"the manifest's IO names {[s.name for s in inputs]} → "
                f"{[s.name for s in outputs]} do not match the graph's {graph_in} → {graph_out}",
                fix="re-export the bundle",
            )

    def has_int8(self) -> bool:
        import onnx

        if isinstance(self._source, bytes):
            model = onnx.load_from_string(self._source)
        else:
            model = onnx.load(self._source, load_external_data=False)
        return any(n.op_type in INT8_OPS for n in model.graph.node)

    def placement(self, inputs: list[TensorSpec]) -> dict[str, dict[str, int]]:
        import onnxruntime as ort

        from edgeport.data import random_inputs

        so = self._options.to_ort()
        so.enable_profiling = True
        with tempfile.TemporaryDirectory() as tmp:
            so.profile_file_prefix = os.path.join(tmp, "placement")
            session = ort.InferenceSession(self._source, so, providers=self._plan.ort_providers)
            sizes = {k: v for s in inputs for k, v in s.examples.items()}
            tensors = [s for s in inputs if not s.dtype.startswith("non-tensor")]
            session.run(
                None, random_inputs(tensors, {k: sizes.get(k, 1) for k in _labels(tensors)}, seed=0)
            )
            events = json.loads(Path(session.end_profiling()).read_text())
        placement: dict[str, dict[str, int]] = {}
        for event in events:
            args = event.get("args", {})
            if (
                event.get("cat") == "Node"
                and "provider" in args
                and event["name"].endswith("_kernel_time")
            ):
                per = placement.setdefault(args["provider"], {})
                per[args.get("op_name", "?")] = per.get(args.get("op_name", "?"), 0) + 1
        return placement


def _labels(specs: Sequence[TensorSpec]) -> set[str]:
    return {d for s in specs for d in s.shape if isinstance(d, str)}


def _ort_spec(value: Any) -> TensorSpec:
    dtype = _ORT_DTYPES.get(value.type, f"non-tensor {value.type}")
    shape = tuple(d if isinstance(d, int | str) else None for d in (value.shape or []))
    return TensorSpec(value.name, dtype, shape)


class _TorchScriptImpl(_Impl):
    def __init__(
        self,
        path: str,
        plan: ProviderPlan,
        specs: tuple[list[TensorSpec], list[TensorSpec]] | None,
    ) -> None:
        import warnings

        import torch

        if plan.requested is Provider.TENSORRT:
            raise EdgeportError("TorchScript artifacts run on cpu or cuda, not tensorrt")
        cuda = plan.requested is Provider.CUDA and torch.cuda.is_available()
        if plan.requested is Provider.CUDA and not cuda and not plan.fallback:
            raise EdgeportError(
                "provider 'cuda' is not usable for TorchScript: torch.cuda.is_available() is "
                f"False (torch {torch.__version__})",
                fix="install a CUDA build of torch on a machine with an NVIDIA GPU, or pass "
                "allow_fallback=True",
            )
        self._device = torch.device("cuda", 0) if cuda else torch.device("cpu")
        self.provider = "cuda" if cuda else "cpu"
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            from edgeport.runtime.torchscript import load_torchscript

            self._module = load_torchscript(path, self._device)

    def run(self, feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        import torch

        from edgeport.runtime.torchscript import flatten_outputs

        with torch.inference_mode():
            result = self._module(
                *[torch.as_tensor(a, device=self._device) for a in feeds.values()]
            )
        return [t.detach().cpu().numpy() for t in flatten_outputs(result)]

    def placement(self, inputs: list[TensorSpec]) -> dict[str, dict[str, int]]:
        return {f"torch-{self.provider}": {"TorchScript graph": 1}}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:400]
