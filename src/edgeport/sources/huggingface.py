"""``hf:DIR[?task=TASK]``: a Hugging Face `transformers` model saved with ``save_pretrained``.

The directory holds ``config.json`` and the weights (``model.safetensors``, possibly sharded; a
pickled ``pytorch_model.bin`` is read with ``torch.load(weights_only=True)``, the rule every
edgeport weights file follows). Nothing is downloaded: a Hub id is refused, the Hugging Face
offline variables are set, files are looked up locally only, and the network is refused while
the model is built (`edgeport.sources.network`). Code a directory carries (``auto_map``) is not
run.

The task picks the head and the output (``?task=``; default from the config's architecture):

=========================  ==========================================  =====================
task                       model                                       output
=========================  ==========================================  =====================
feature-extraction         AutoModel (the encoder of an encoder-       last_hidden_state
                           decoder: T5, Whisper, BART)
sequence-classification    AutoModelForSequenceClassification          logits
token-classification       AutoModelForTokenClassification             logits
masked-lm                  AutoModelForMaskedLM                        logits
causal-lm                  AutoModelForCausalLM (no KV cache)          logits
image-classification       AutoModelForImageClassification             logits
audio-classification       AutoModelForAudioClassification             logits
=========================  ==========================================  =====================

Inputs come from the model: token ids below the vocabulary size, an attention mask with real
padding and ``token_type_ids`` where the model takes them (batch and sequence symbolic), pixel
values at the config's image size, audio samples or mel features of the size the encoder wants.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeport.errors import EdgeportError
from edgeport.sources.network import first_line, offline
from edgeport.spec import TensorSpec, Values

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """A head: the Auto class that builds it and the output that is exported."""

    auto: str
    output: str


TASKS = {
    "feature-extraction": Task("AutoModel", "last_hidden_state"),
    "sequence-classification": Task("AutoModelForSequenceClassification", "logits"),
    "token-classification": Task("AutoModelForTokenClassification", "logits"),
    "masked-lm": Task("AutoModelForMaskedLM", "logits"),
    "causal-lm": Task("AutoModelForCausalLM", "logits"),
    "image-classification": Task("AutoModelForImageClassification", "logits"),
    "audio-classification": Task("AutoModelForAudioClassification", "logits"),
}
# The config's architecture name → task, by suffix (first match wins).
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", "sequence-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForMaskedLM", "masked-lm"),
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
    ("ForImageClassification", "image-classification"),
    ("ForAudioClassification", "audio-classification"),
)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
NEVER_DOWNLOADS = (
    "edgeport never downloads: save the model with save_pretrained and pass the directory, "
    "e.g. hf:./my-model"
)
TEXT_BATCH, TEXT_SEQ = 2, 16  # example sizes of symbolic batch and sequence


# Files a tokenizer is saved as (save_pretrained of a tokenizer): data, never code.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


@dataclass
class HFModel:
    """What `load` returns: the wrapped model, its class name, default inputs, details, and the
    tokenizer's files in the directory (the bundle carries a copy)."""

    module: torch.nn.Module
    class_name: str
    inputs: list[TensorSpec]
    details: dict[str, Any]
    tokenizer_files: list[Path]


def load(spec: str, weights: Path | None, trust_checkpoint: bool) -> HFModel:
    """Build the model of ``hf:DIR?task=...`` (``spec`` without the ``hf:`` prefix)."""
    from edgeport.sources import parse_options

    where, _, query = spec.partition("?")
    if weights is not None:
        raise EdgeportError(
            f"hf:{where} takes its weights from the directory, not from --weights",
            fix="save the model with those weights (save_pretrained) and pass that directory",
        )
    options = parse_options(query, f"hf:{spec}")
    task_name = options.pop("task", None)
    if options:
        raise EdgeportError(
            f"hf:{spec}: unknown option(s) {', '.join(map(repr, options))}",
            available="task (" + ", ".join(TASKS) + ")",
        )
    root = _directory(where)
    config = _config(root)
    task_name = task_name or default_task(config)
    if task_name not in TASKS:
        near = difflib.get_close_matches(str(task_name), list(TASKS), n=3, cutoff=0.4)
        raise EdgeportError(
            f"hf:{spec}: unknown task {task_name!r}",
            available=("near matches: " + ", ".join(near) + "; all: " if near else "")
            + ", ".join(TASKS),
        )
    task = TASKS[task_name]
    with offline(f"hf:{where}", fix=NEVER_DOWNLOADS):
        model = _build(root, config, task, trust_checkpoint)
    encoder_only = config.is_encoder_decoder and task_name == "feature-extraction"
    body = model.get_encoder() if encoder_only else model
    inputs = default_inputs(body, config)
    wrapped = TaskModel(body, [s.name for s in inputs], task.output)
    details = {
        "task": task_name,
        "output": task.output,
        "architecture": type(model).__name__,
        "model_type": config.model_type,
        "exported": "encoder" if body is not model else "model",
        "weights_in_directory": _weights_file(root),
    }
    name = f"{type(body).__module__}.{type(body).__qualname__}"
    tokenizer = [root / f for f in TOKENIZER_FILES if (root / f).is_file()]
    return HFModel(wrapped.eval(), name, inputs, details, tokenizer)


def default_task(config: Any) -> str:
    """The task the config's first architecture names (feature extraction when none does)."""
    for architecture in getattr(config, "architectures", None) or []:
        for suffix, task in ARCHITECTURE_TASKS:
            if architecture.endswith(suffix):
                return task
    return "feature-extraction"


def _directory(where: str) -> Path:
    root = Path(where).expanduser()
    if root.is_dir():
        return root
    if root.exists():
        raise EdgeportError(
            f"hf:{where} is a file, not a directory",
            expected="a directory written by save_pretrained (config.json + weights)",
        )
    if HUB_ID.match(where) and not where.startswith("."):
        raise EdgeportError(
            f"hf:{where} is not a local directory; it looks like a Hugging Face Hub id",
            fix=NEVER_DOWNLOADS,
        )
    raise EdgeportError(
        f"hf:{where}: directory {str(root)!r} does not exist",
        fix=f"check the path; the current directory is {Path.cwd()}",
    )


def _config(root: Path) -> Any:
    if not (root / "config.json").is_file():
        found = sorted(p.name for p in root.iterdir())[:8]
        raise EdgeportError(
            f"hf:{root} has no config.json, so it is not a save_pretrained directory "
            f"(it holds: {', '.join(found) or 'nothing'})",
            fix="point at the directory model.save_pretrained(...) wrote, which holds "
            "config.json and model.safetensors",
        )
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        with offline(f"hf:{root}", fix=NEVER_DOWNLOADS):
            config = transformers.AutoConfig.from_pretrained(
                str(root), local_files_only=True, trust_remote_code=False
            )
    except EdgeportError:
        raise
    except Exception as exc:
        raise EdgeportError(
            f"hf:{root}: cannot read config.json: {first_line(exc)}",
            fix="the config may need code from the directory (auto_map), which edgeport does "
            "not run, or a newer transformers than " + transformers.__version__,
        ) from exc
    return config


def _weights_file(root: Path) -> str | None:
    for name in (
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
    ):
        if (root / name).is_file():
            return name
    return None


def _build(root: Path, config: Any, task: Task, trust_checkpoint: bool) -> Any:
    import transformers

    auto = getattr(transformers, task.auto)
    common = {"attn_implementation": "eager"}
    try:
        if _weights_file(root) is None:
            log.warning(
                "hf:%s holds no weights (model.safetensors or pytorch_model.bin): the model is "
                "randomly initialised from its config",
                root,
            )
            return auto.from_config(config, **common)
        return auto.from_pretrained(
            str(root),
            local_files_only=True,
            trust_remote_code=False,
            weights_only=not trust_checkpoint,
            **common,
        )
    except EdgeportError:
        raise
    except Exception as exc:
        kind = getattr(config, "model_type", "?")
        raise EdgeportError(
            f"hf:{root}: transformers cannot build {task.auto} for model_type {kind!r}: "
            f"{type(exc).__name__}: {first_line(exc)}",
            fix="pick a ?task= this architecture has a head for, e.g. ?task=feature-extraction",
        ) from exc


def default_inputs(model: Any, config: Any) -> list[TensorSpec]:
    """Input specs for what ``model`` takes, with values it can take (see the module doc)."""
    params = inspect.signature(model.forward).parameters
    main = getattr(model, "main_input_name", "input_ids")
    if main == "input_ids":
        return _text_inputs(params, config)
    if main == "pixel_values":
        size = _pair(getattr(config, "image_size", 224))
        channels = int(getattr(config, "num_channels", 3))
        return [TensorSpec("pixel_values", "float32", ("batch", channels, *size), {"batch": 1})]
    if main == "input_features":  # Whisper-like: mel bins x frames (a fixed 2 x positions)
        frames = 2 * int(getattr(config, "max_source_positions", 1500))
        bins = int(getattr(config, "num_mel_bins", 80))
        return [TensorSpec("input_features", "float32", ("batch", bins, frames), {"batch": 1})]
    if main == "input_values":  # raw audio samples
        sizes = {"batch": 1, "samples": 16 * _audio_stride(config)}
        return [TensorSpec("input_values", "float32", ("batch", "samples"), sizes)]
    raise EdgeportError(
        f"edgeport does not know which inputs {type(model).__name__} takes (main input {main!r})",
        fix="declare them with --input NAME:SHAPE[:DTYPE[:VALUES]]",
    )


def _text_inputs(params: Any, config: Any) -> list[TensorSpec]:
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    if vocab < 1:
        raise EdgeportError("the config has no vocab_size, so token ids cannot be generated")
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    seq = min(TEXT_SEQ, int(limit) - 1) if limit else TEXT_SEQ
    shape = ("batch", "seq")
    sizes = {"batch": TEXT_BATCH, "seq": seq}
    specs = [TensorSpec("input_ids", "int64", shape, sizes, Values("range", 0, vocab))]
    if "attention_mask" in params:
        specs.append(TensorSpec("attention_mask", "int64", shape, sizes, Values("mask")))
    types = int(getattr(config, "type_vocab_size", 0) or 0)
    if "token_type_ids" in params and types > 1:
        specs.append(TensorSpec("token_type_ids", "int64", shape, sizes, Values("range", 0, types)))
    return specs


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, list | tuple):
        return int(size[0]), int(size[-1])
    return int(size), int(size)


def _audio_stride(config: Any) -> int:
    stride = 1
    for s in getattr(config, "conv_stride", None) or [320]:
        stride *= int(s)
    return stride


@functools.cache
def _make_task_model() -> type:
    import torch

    class TaskModel(torch.nn.Module):
        """A transformers model called with named inputs, returning one tensor of its output."""

        def __init__(self, model: torch.nn.Module, names: list[str], output: str) -> None:
            super().__init__()
            self.model = model
            self.names = list(names)
            self.output = output
            params = inspect.signature(model.forward).parameters
            self.accepted = [n for n in params if n not in ("args", "kwargs")]
            self.extra = {"use_cache": False} if "use_cache" in params else {}
            if "return_dict" in params:
                self.extra["return_dict"] = True

        def bind(self, names: list[str]) -> None:
            """Call the model with these inputs, in this order (the exported signature)."""
            unknown = [n for n in names if n not in self.accepted]
            if unknown:
                raise EdgeportError(
                    f"{type(self.model).__name__} takes no input named "
                    f"{', '.join(map(repr, unknown))}",
                    available=", ".join(self.accepted[:12]),
                )
            self.names = list(names)

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            result = self.model(**dict(zip(self.names, args, strict=True)), **self.extra)
            return result[self.output] if isinstance(result, dict) else getattr(result, self.output)

    return TaskModel


def TaskModel(model: Any, names: list[str], output: str) -> Any:  # noqa: N802 (a class factory)
    """The wrapper module (built lazily: torch is imported only when a model is loaded)."""
    return _make_task_model()(model, names, output)
