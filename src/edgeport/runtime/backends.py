"""Backends: one class per artifact format, each running that format's file for `Session`.

`Session` validates the feeds (names, dtypes, ranks, dims) and keeps the metrics; a `Backend`
loads one file in its runtime and runs it. `BACKENDS` maps the manifest's artifact format to its
class; adding a format is one `Backend` subclass and one `register_backend` call.

The ONNX Runtime backend needs onnxruntime and numpy only; the TorchScript one imports torch when
it is constructed.
"""

from __future__ import annotations

import abc
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgeport.bundle import check_external_data
from edgeport.errors import EdgeportError, InternalError
from edgeport.runtime.providers import Provider, ProviderPlan, check_used
from edgeport.spec import TensorSpec

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

IOSpecs = tuple[list[TensorSpec], list[TensorSpec]]


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


class DeviceTensor:
    """A CUDA torch tensor seen as dtype/shape/pointer, bound to ONNX Runtime without a copy.

    `Session` makes these from CUDA tensor feeds when its backend has ``device_tensors``.
    """

    __slots__ = ("data_ptr", "device_id", "dtype", "shape", "tensor")

    def __init__(self, tensor: Any) -> None:
        self.tensor = tensor.contiguous()  # kept alive until the run ends
        self.dtype = np.dtype(str(tensor.dtype).removeprefix("torch."))
        self.shape = tuple(tensor.shape)
        self.device_id = tensor.device.index or 0
        self.data_ptr = self.tensor.data_ptr()

    def astype(self, dtype: np.dtype[Any]) -> DeviceTensor:
        """The tensor cast to ``dtype`` (a new device tensor)."""
        import torch

        return DeviceTensor(self.tensor.to(getattr(torch, dtype.name)))


class Backend(abc.ABC):
    """One artifact file loaded in one runtime. `Session` validates feeds before `run`.

    Construction is ``cls(source, plan, options, specs)`` for every format. Subclasses set
    `format` (the manifest's artifact format) and `runs_code`, and implement `_run_impl`,
    `input_specs`, `output_specs` and `placement`.

    Args:
        source: The artifact file's path, or serialized bytes where the format allows.
        plan: The provider plan (`edgeport.runtime.providers.resolve`).
        options: Session settings (ONNX Runtime's; other runtimes may ignore them).
        specs: The IO specs the caller knows (a bundle's manifest), or None to read them from
            the file (formats that record them).

    Attributes:
        provider: The provider that really runs (``cpu``, ``cuda``, ``tensorrt``).
        device_tensors: True when `run` takes `DeviceTensor` feeds (CUDA IO binding).
    """

    format: ClassVar[str]
    runs_code: ClassVar[bool] = False
    provider: str
    device_tensors: bool = False

    def __init__(
        self,
        source: str | bytes,
        plan: ProviderPlan,
        options: SessionOptions,
        specs: IOSpecs | None,
    ) -> None:
        self._source = source
        self._plan = plan
        self._options = options
        self._specs = specs

    @classmethod
    def check_file(cls, path: Path) -> None:
        """Check ``path`` before anything opens it (default: nothing to check).

        Raises:
            EdgeportError: The file refers to something it may not (e.g. data outside its
                directory).
        """
        return None

    def run(self, feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        """Run on validated ``feeds`` (input name → array); the outputs named, in that order.

        Raises:
            EdgeportError: The artifact returned another number of outputs.
        """
        results = self._run_impl(feeds, outputs)
        if len(results) != len(outputs):
            raise EdgeportError(
                f"the {self.format} artifact returned {len(results)} outputs",
                expected=f"{len(outputs)} outputs named {outputs}",
                fix="re-export the bundle",
            )
        return results

    @abc.abstractmethod
    def _run_impl(self, feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        """Run; return the outputs in the order of ``outputs``."""

    @abc.abstractmethod
    def input_specs(self) -> list[TensorSpec]:
        """The inputs, in call order."""

    @abc.abstractmethod
    def output_specs(self) -> list[TensorSpec]:
        """The outputs, in the order the artifact returns them."""

    def check_names(self, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
        """Refuse IO specs whose names disagree with the file's own (default: nothing to check)."""
        return None

    def has_int8(self) -> bool:
        """True when the artifact holds int8 ops (a slow path on some providers)."""
        return False

    @abc.abstractmethod
    def placement(self, inputs: list[TensorSpec]) -> dict[str, dict[str, int]]:
        """Which provider runs each node: provider → op type → node count."""


BACKENDS: dict[str, type[Backend]] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Register ``cls`` under its `Backend.format`; a duplicate format is an internal error."""
    if cls.format in BACKENDS:
        raise InternalError(f"artifact format {cls.format!r} has two backends")
    BACKENDS[cls.format] = cls
    return cls


def backend_class(fmt: str) -> type[Backend]:
    """The backend that runs artifact format ``fmt``.

    Raises:
        EdgeportError: No backend runs ``fmt``; the message lists the formats that run.
    """
    if fmt not in BACKENDS:
        raise EdgeportError(
            f"no backend runs artifact format {fmt!r}",
            available=", ".join(BACKENDS),
            fix="export the model to one of these formats",
        )
    return BACKENDS[fmt]


# ---- ONNX Runtime ----------------------------------------------------------------------------


class OrtBackend(Backend):
    """An ONNX model (a file or bytes) in ONNX Runtime, with IO binding on CUDA providers."""

    format = "onnx"

    def __init__(
        self,
        source: str | bytes,
        plan: ProviderPlan,
        options: SessionOptions,
        specs: IOSpecs | None,
    ) -> None:
        import onnxruntime as ort

        super().__init__(source, plan, options, specs)
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
        # CUDA torch tensors stay on the device (IO binding) when the provider is a GPU one.
        self.device_tensors = self.provider in ("cuda", "tensorrt")
        self._device_id = next(
            (p[1].get("device_id", 0) for p in plan.ort_providers if isinstance(p, tuple)), 0
        )

    @classmethod
    def check_file(cls, path: Path) -> None:
        """External data must stay in the model's directory (`check_external_data`)."""
        check_external_data(path)

    def _run_impl(self, feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        if self.device_tensors:
            return self._run_bound(feeds, outputs)
        return self._session.run(outputs, feeds)

    def _run_bound(self, feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        """CUDA: inputs copied to the device once, outputs kept there until the final copy."""
        binding = self._session.io_binding()
        for name, array in feeds.items():
            if isinstance(array, DeviceTensor):
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
        """The graph's inputs."""
        return [_ort_spec(v) for v in self._session.get_inputs()]

    def output_specs(self) -> list[TensorSpec]:
        """The graph's outputs."""
        return [_ort_spec(v) for v in self._session.get_outputs()]

    def check_names(self, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
        """The given IO names must be the graph's, in the graph's order."""
        graph_in = [v.name for v in self._session.get_inputs()]
        graph_out = [v.name for v in self._session.get_outputs()]
        if graph_in != [s.name for s in inputs] or graph_out != [s.name for s in outputs]:
            raise EdgeportError(
                f"the manifest's IO names {[s.name for s in inputs]} → "
                f"{[s.name for s in outputs]} do not match the graph's {graph_in} → {graph_out}",
                fix="re-export the bundle",
            )

    def has_int8(self) -> bool:
        """True when a node is one of `INT8_OPS`."""
        import onnx

        if isinstance(self._source, bytes):
            model = onnx.load_from_string(self._source)
        else:
            model = onnx.load(self._source, load_external_data=False)
        return any(n.op_type in INT8_OPS for n in model.graph.node)

    def placement(self, inputs: list[TensorSpec]) -> dict[str, dict[str, int]]:
        """One profiled run on random inputs at the example sizes (1 where none is recorded)."""
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:400]


# ---- TorchScript -----------------------------------------------------------------------------


class TorchScriptBackend(Backend):
    """A TorchScript file in torch, on the CPU or CUDA. Loading it runs the file's code: the
    caller checks the user's trust first (`edgeport.trust.require_trust`). The file records no
    IO specs, so ``specs`` are required."""

    format = "torchscript"
    runs_code = True

    def __init__(
        self,
        source: str | bytes,
        plan: ProviderPlan,
        options: SessionOptions,
        specs: IOSpecs | None,
    ) -> None:
        import torch

        from edgeport.runtime.torchscript import load_torchscript

        super().__init__(source, plan, options, specs)
        if specs is None or isinstance(source, bytes):
            raise InternalError("a TorchScript backend needs a file path and its IO specs")
        self._input_names = [s.name for s in specs[0]]
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
            warnings.filterwarnings("ignore", category=FutureWarning)  # jit.load is deprecated
            self._module = load_torchscript(source, self._device)

    def _run_impl(self, feeds: dict[str, Any], outputs: list[str]) -> list[Any]:
        import torch

        from edgeport.runtime.torchscript import flatten_outputs

        with torch.inference_mode():
            # Positional call: in input order, whatever the order of the caller's dict.
            result = self._module(
                *[torch.as_tensor(feeds[n], device=self._device) for n in self._input_names]
            )
        return [t.detach().cpu().numpy() for t in flatten_outputs(result)]

    def input_specs(self) -> list[TensorSpec]:
        """The inputs given at construction."""
        return list(self._specs[0]) if self._specs else []

    def output_specs(self) -> list[TensorSpec]:
        """The outputs given at construction."""
        return list(self._specs[1]) if self._specs else []

    def placement(self, inputs: list[TensorSpec]) -> dict[str, dict[str, int]]:
        """The whole graph on torch's device: ``{"torch-cpu": {"TorchScript graph": 1}}``."""
        return {f"torch-{self.provider}": {"TorchScript graph": 1}}


register_backend(OrtBackend)
register_backend(TorchScriptBackend)
