"""Model sources: where the nn.Module comes from.

Accepted forms (docs/design.md §2):

* ``torchvision:NAME`` with optional keyword arguments ``torchvision:resnet18?num_classes=10``;
  weights are random (seeded, so the same spec gives the same model) unless ``weights`` is given,
  and so are backbones (``weights_backbone=None`` unless the options say otherwise);
* ``timm:NAME[?k=v]`` — a timm model, random unless ``weights`` is given (`timm_models`);
* ``hf:DIR[?task=TASK]`` — a Hugging Face directory written by ``save_pretrained``
  (`huggingface`);
* ``path/to/file.py:factory`` — a Python file and a callable in it returning an ``nn.Module``;
* ``package.module:factory`` — an importable module and a callable;
* ``path/to/model.ts`` / ``.pt`` / ``.torchscript``, or ``torchscript:PATH`` — a TorchScript
  archive. TorchScript is code: loading one only ever happens because the user named it.

``weights`` is a safetensors file or a state dict saved with ``torch.save``; the latter is read
with ``torch.load(weights_only=True)`` and never retried unsafely.

Nothing is downloaded: torchvision, timm and Hugging Face models are built with the network
refused (`edgeport.sources.network`), and a builder that tries is one clear error.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.errors import EdgeportError
from edgeport.sources.network import offline
from edgeport.spec import TensorSpec

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SEED = 0
TORCHSCRIPT_SUFFIXES = (".ts", ".pt", ".pth", ".torchscript", ".jit")


@dataclass
class LoadedModel:
    """A model ready for export.

    Attributes:
        module: The model in ``eval()`` mode (an ``nn.Module`` or a ``ScriptModule``).
        source: The source spec as given.
        class_name: Qualified class name of the model.
        is_torchscript: True when the source was a TorchScript archive.
        weights: Path of the weights file that was loaded, if any.
        inputs: The inputs the source knows the model takes (Hugging Face, timm), used when
            none are declared.
        details: What else the source knows (a Hugging Face task and output), recorded in the
            manifest's ``model.source_details``.
        tokenizer_files: The tokenizer saved beside a Hugging Face model; export copies them
            into the bundle's ``tokenizer/`` (text calibration reads them from there).
    """

    module: torch.nn.Module
    source: str
    class_name: str
    is_torchscript: bool = False
    weights: str | None = None
    inputs: list[TensorSpec] | None = None
    details: dict[str, Any] | None = None
    tokenizer_files: list[Path] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """The manifest's `model` entry (parameter count and state-dict hash)."""
        entry = {
            "source": self.source,
            "class": self.class_name,
            "torchscript": self.is_torchscript,
            "weights": self.weights,
            "parameters": int(sum(p.numel() for p in self.module.parameters())),
            "state_dict_sha256": state_dict_sha256(self.module),
        }
        if self.details:
            entry["source_details"] = self.details
        return entry

    def bind(self, names: list[str]) -> None:
        """Tell a model that takes named inputs (Hugging Face) which ones it is called with,
        in call order; others take positional inputs and ignore this."""
        bind = getattr(self.module, "bind", None)
        if callable(bind):
            bind(names)


def load_model(
    source: str, *, weights: str | Path | None = None, trust_checkpoint: bool = False
) -> LoadedModel:
    """Build or load the model named by ``source`` and put it in eval mode.

    Args:
        source: A model source spec (see the module docstring).
        weights: Optional safetensors or state-dict file to load into the model.
        trust_checkpoint: Allow a full (pickled) checkpoint for ``weights``. Unsafe: it can run
            arbitrary code; only for files you produced yourself. Logged when used.

    Returns:
        The loaded model, in ``eval()`` mode.

    Raises:
        EdgeportError: The source cannot be resolved, or the weights do not fit the model.
    """
    import torch

    torch.manual_seed(SEED)
    if source.startswith("hf:"):
        from edgeport.sources import huggingface

        hf = huggingface.load(
            source.removeprefix("hf:"), Path(weights) if weights else None, trust_checkpoint
        )
        return LoadedModel(
            hf.module,
            source,
            hf.class_name,
            inputs=hf.inputs,
            details=hf.details,
            tokenizer_files=hf.tokenizer_files,
        )
    inputs = None
    if source.startswith("timm:"):
        from edgeport.sources import timm_models

        built = timm_models.load(source.removeprefix("timm:"))
        module, class_name, is_ts, inputs = built.module, built.class_name, False, built.inputs
    else:
        module, class_name, is_ts = _resolve(source)
    loaded = LoadedModel(module, source, class_name, is_torchscript=is_ts, inputs=inputs)
    if weights is not None:
        state = load_state_dict(Path(weights), trust_checkpoint=trust_checkpoint)
        _apply_state_dict(module, state, Path(weights))
        loaded.weights = str(weights)
    module.eval()
    return loaded


def _resolve(source: str) -> tuple[torch.nn.Module, str, bool]:
    if source.startswith("torchvision:"):
        return _from_torchvision(source.removeprefix("torchvision:"))
    if source.startswith("torchscript:"):
        return _from_torchscript(Path(source.removeprefix("torchscript:")))
    if source.lower().endswith(TORCHSCRIPT_SUFFIXES) and ":" not in Path(source).name:
        return _from_torchscript(Path(source))
    path_text, sep, factory = source.rpartition(":")
    if not sep or not factory:
        raise EdgeportError(
            f"cannot understand model source {source!r}",
            expected="torchvision:NAME, timm:NAME, hf:DIR, path/to/file.py:factory, "
            "package.module:factory, or a TorchScript file (model.ts)",
        )
    if path_text.endswith(".py") or "/" in path_text:
        return _from_file(Path(path_text), factory, source)
    return _from_module(path_text, factory, source)


def _from_torchvision(spec: str) -> tuple[torch.nn.Module, str, bool]:
    import torchvision

    name, _, query = spec.partition("?")
    available = torchvision.models.list_models()
    if name not in available:
        raise no_such_model("torchvision", name, available, cutoff=0.5)
    options = parse_options(query, f"torchvision:{spec}")
    if options.get("weights") is not None:
        raise EdgeportError(
            f"torchvision:{spec}: weights={options['weights']!r} would download them",
            fix=TORCHVISION_FIX,
        )
    kwargs = {**options, "weights": None}
    builder = torchvision.models.get_model_builder(name)
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs.setdefault("weights_backbone", None)  # torchvision's default is pretrained
    with offline(f"torchvision:{spec}", fix=TORCHVISION_FIX):
        try:
            model = builder(**kwargs)
        except TypeError as exc:
            raise EdgeportError(
                f"torchvision:{name} does not accept the options {options}: {exc}",
                fix="remove or rename the ?key=value options",
            ) from exc
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise EdgeportError(
                f"torchvision:{name} cannot be built with the options {options}: "
                f"{type(exc).__name__}: {_first_line(exc)}",
                fix="check the ?key=value options (e.g. num_classes)",
            ) from exc
    return model, _qualname(model), False


TORCHVISION_FIX = (
    "edgeport never downloads: leave weights and weights_backbone unset (random init) and "
    "pass a local file with --weights"
)


def no_such_model(library: str, name: str, available: list[str], *, cutoff: float) -> EdgeportError:
    """The error for a name ``library`` does not have, with its near matches."""
    near = difflib.get_close_matches(name, available, n=5, cutoff=cutoff)
    return EdgeportError(
        f"{library} has no model named {name!r}",
        available=("near matches: " + ", ".join(near))
        if near
        else f"{len(available)} models, see {library}'s list_models()",
        fix=f"check the spelling, e.g. {library}:resnet18",
    )


def parse_options(query: str, spec: str) -> dict[str, Any]:
    """``k=v&k2=v2`` → keyword arguments (ints, floats, true/false, none, else strings)."""
    kwargs: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            raise EdgeportError(
                f"cannot parse option {item!r} in {spec}",
                expected="key=value pairs joined by &, e.g. ?num_classes=10&dropout=0.1",
            )
        kwargs[key] = _literal(value)
    return kwargs


def _literal(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _from_file(path: Path, factory: str, source: str) -> tuple[torch.nn.Module, str, bool]:
    if not path.is_file():
        raise EdgeportError(
            f"model file {str(path)!r} does not exist (from source {source!r})",
            expected="an existing Python file and a factory in it: path/to/model.py:make_model",
            fix=f"check the path; the current directory is {Path.cwd()}",
        )
    module_name = f"edgeport_user_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise EdgeportError(f"cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise EdgeportError(
            f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}",
            fix="run the file with python to see the full error",
        ) from exc
    return _call_factory(module, factory, source)


def _from_module(name: str, factory: str, source: str) -> tuple[torch.nn.Module, str, bool]:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise EdgeportError(
            f"cannot import module {name!r} (from source {source!r}): {exc}",
            expected="an importable package.module:factory, or a path/to/file.py:factory",
            fix="check the module is installed in this environment, or give a file path",
        ) from exc
    return _call_factory(module, factory, source)


def _call_factory(module: Any, factory: str, source: str) -> tuple[torch.nn.Module, str, bool]:
    import torch

    fn = getattr(module, factory, None)
    if not callable(fn):
        public = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise EdgeportError(
            f"{source!r}: no callable named {factory!r}",
            available=", ".join(public[:20]) or "no public callables",
        )
    model = fn()
    if not isinstance(model, torch.nn.Module):
        raise EdgeportError(
            f"{source!r} returned {type(model).__name__}, not a torch.nn.Module",
            expected="a factory that returns an nn.Module instance",
        )
    return model, _qualname(model), isinstance(model, torch.jit.ScriptModule)


def _from_torchscript(path: Path) -> tuple[torch.nn.Module, str, bool]:
    import torch

    if not path.is_file():
        raise EdgeportError(f"TorchScript file {str(path)!r} does not exist")
    log.info("loading TorchScript archive %s (TorchScript is code: named explicitly)", path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)  # jit.load is deprecated
            model = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise EdgeportError(
            f"{str(path)!r} is not a loadable TorchScript archive: {exc}",
            expected="a file written by torch.jit.save",
            fix="for a state dict, pass the model's factory as MODEL and this file as --weights",
        ) from exc
    return model, getattr(model, "original_name", type(model).__name__), True


def load_state_dict(path: Path, *, trust_checkpoint: bool = False) -> dict[str, torch.Tensor]:
    """Read a state dict from safetensors, or from ``torch.save`` with ``weights_only=True``.

    A pickled checkpoint that needs arbitrary code is refused; nothing in it is executed.
    ``trust_checkpoint=True`` is the only way past, and it is logged.
    """
    import torch

    if not path.is_file():
        raise EdgeportError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise EdgeportError(f"cannot read safetensors file {str(path)!r}: {exc}") from exc
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        if not trust_checkpoint:
            raise EdgeportError(
                f"refused to load {str(path)!r}: it is not a plain state dict "
                f"(torch.load with weights_only=True said: {_first_line(exc)}); nothing in it "
                "was executed",
                expected="a safetensors file or a state dict saved with torch.save(model."
                "state_dict())",
                fix="re-save the weights as safetensors; only if you made this file yourself, "
                "pass --trust-checkpoint",
            ) from exc
        log.warning("--trust-checkpoint: unpickling %s with weights_only=False", path)
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    return _extract_state_dict(obj, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    import torch

    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    raise EdgeportError(
        f"{str(path)!r} holds a {type(obj).__name__}, not a state dict of tensors",
        expected="a mapping from parameter names to tensors",
    )


def _apply_state_dict(module: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            details.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            details.append(f"shape mismatch {len(wrong)} (e.g. {'; '.join(wrong[:3])})")
        raise EdgeportError(
            f"weights {str(path)!r} do not fit {type(module).__name__}: " + "; ".join(details),
            expected="a state dict with exactly the model's keys and shapes",
            fix="check that MODEL builds the same architecture (e.g. ?num_classes=...)",
        )
    module.load_state_dict(state)


def state_dict_sha256(module: torch.nn.Module) -> str:
    """sha256 over the state dict: names, dtypes, shapes and bytes, in key order."""
    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
