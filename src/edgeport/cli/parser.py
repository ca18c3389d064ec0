"""The argument parser: every verb, its examples, and the argument groups verbs share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from edgeport.cli.commands import (
    cmd_bench,
    cmd_build,
    cmd_demo,
    cmd_export,
    cmd_inspect,
    cmd_keygen,
    cmd_prune,
    cmd_quantize,
    cmd_run,
    cmd_sign,
    cmd_verify,
)

EXPORT_EXAMPLE = """example:
  edgeport export torchvision:resnet18 --input input:1x3x224x224 --dynamic input:0=batch --out b
  edgeport export model.py:make_model --input tokens:batch=2xseq=16:int64 --out b --format onnx
"""


VERIFY_EXAMPLE = """example:
  edgeport verify b
  edgeport verify b --sizes batch=3 --sizes batch=7 --json
"""


INSPECT_EXAMPLE = """example:
  edgeport inspect b
  edgeport inspect b/model.onnx --json
"""


QUANTIZE_EXAMPLE = """example:
  edgeport quantize b --calib calib.npz --eval test.npz --max-drop 0.5
  edgeport quantize b --mode dynamic
  edgeport quantize b --calib random        # accuracy unknown: warned
"""


RUN_EXAMPLE = """example:
  edgeport run b --inputs x.npz --out y.npz
  edgeport run b --artifact torchscript-fp32 --trust-code --json
  edgeport run b --public-key maker.pub          # refuse unless signed by maker.key
  edgeport run b --provider cuda --allow-fallback
"""


PRUNE_EXAMPLE = """example:
  edgeport prune torchvision:resnet18 --input input:1x3x224x224 --ratio 0.5 --out b
  edgeport prune model.py:make --input x:1x1x16x16 --ratio 0.5 --recover distill \\
      --data train.npz --steps 300 --eval test.npz --out b
"""


BENCH_EXAMPLE = """example:
  edgeport bench b --batch 1,8 --threads 1,2 --json > out.json
  edgeport bench b --threads 1 --compare out.json     # exit 1 on a clear regression
"""


BUILD_EXAMPLE = """example:
  edgeport build torchvision:resnet18 --input input:1x3x224x224 --calib random --out b
  edgeport build model.py:make --input x:batch=1x3x64x64 --calib c.npz --eval e.npz --max-drop 1
  edgeport build --config edgeport.toml
"""


SIGN_EXAMPLE = """example:
  edgeport keygen maker                 # writes maker.key (private) and maker.pub
  edgeport sign b --key maker.key       # writes b/manifest.json.sig
  edgeport verify b --public-key maker.pub
"""


DEMO_EXAMPLE = """example:
  edgeport demo --out demo-bundle
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every verb."""
    parser = argparse.ArgumentParser(
        prog="edgeport",
        description="From a trained PyTorch model to a verified, measured artifact.",
    )
    parser.add_argument("--version", action="version", version=f"edgeport {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name: str, help_: str, epilog: str, fn: Callable[[argparse.Namespace], int]) -> Any:
        p = sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        p.add_argument("-v", "--verbose", action="store_true", help="log each step")
        p.add_argument(
            "--trust-code",
            action="store_true",
            help="allow loading code a bundle carries (TorchScript, its model.source); "
            "only for bundles you trust; logged",
        )
        p.set_defaults(func=fn)
        return p

    p = verb("export", "Export a PyTorch model to a verified bundle.", EXPORT_EXAMPLE, cmd_export)
    _model_arguments(p)
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.add_argument(
        "--exporter",
        default="auto",
        choices=["auto", "dynamo", "legacy"],
        help="ONNX exporter; auto = dynamo, falling back to legacy (default)",
    )
    p.add_argument("--script", action="store_true", help="TorchScript by scripting, not tracing")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow a pickled checkpoint for --weights (runs its code; unsafe)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the golden inputs (default 0)")

    p = verb("verify", "Re-check a bundle's hashes and golden parity.", VERIFY_EXAMPLE, cmd_verify)
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--artifact", action="append", default=None, help="only this artifact")
    _public_key_argument(p)
    for flag, help_ in (
        ("--rtol", "relative tolerance (fp32 default 1e-3)"),
        ("--atol", "absolute tolerance (fp32 default 1e-5)"),
        ("--min-cosine", "minimum cosine (int8 default 0.99)"),
        ("--min-top1", "minimum top-1 agreement (int8 default 0.95)"),
    ):
        p.add_argument(
            flag,
            type=float,
            default=None,
            help=help_ + "; replaces the profile and the manifest, and may be looser",
        )
    p.add_argument(
        "--sizes",
        action="append",
        default=[],
        metavar="LABEL=N[,LABEL=N]",
        help="also rebuild the model from its source and compare at these sizes",
    )

    p = verb("inspect", "Show IO, ops, parameters, MACs and size.", INSPECT_EXAMPLE, cmd_inspect)
    p.add_argument("path", help="bundle directory or .onnx file")

    p = verb(
        "prune",
        "Prune channels for real, recover accuracy, export a verified bundle.",
        PRUNE_EXAMPLE,
        cmd_prune,
    )
    _model_arguments(p)
    p.add_argument("--ratio", type=float, default=0.5, help="fraction of channels to remove")
    p.add_argument(
        "--importance", default="l1", help="l1 (default), l2, bn_scale or taylor (needs --data)"
    )
    p.add_argument("--global", dest="global_pruning", action="store_true", help="global ranking")
    p.add_argument(
        "--ignore",
        action="append",
        default=None,
        metavar="MODULE",
        help="never prune this module (repeat; default: the first conv and the classifier)",
    )
    p.add_argument(
        "--layer-ratio",
        action="append",
        default=[],
        metavar="MODULE=RATIO",
        help="per-layer ratio override",
    )
    p.add_argument("--round-to", type=int, default=8, help="channel multiple (default 8)")
    p.add_argument("--recover", choices=["finetune", "distill"], help="recovery after pruning")
    p.add_argument("--data", help="training samples (.npz; `labels` for finetune)")
    p.add_argument("--steps", type=int, default=200, help="recovery steps (default 200)")
    p.add_argument("--lr", type=float, default=1e-3, help="recovery learning rate")
    p.add_argument("--eval", help=".npz with labels: accuracy before/after")

    p = verb("quantize", "Add an int8 artifact to a bundle.", QUANTIZE_EXAMPLE, cmd_quantize)
    p.add_argument("bundle", help="bundle directory (from edgeport export)")
    p.add_argument(
        "--mode",
        default="auto",
        choices=["auto", "dynamic", "static"],
        help="auto (default): static for conv-heavy models with --calib, dynamic for "
        "MatMul/attention-heavy ones",
    )
    p.add_argument("--calib", help=".npz/.npy, image folder, file.py:factory, or 'random'")
    p.add_argument("--eval", help="evaluation data (.npz with 'labels' for accuracy)")
    p.add_argument(
        "--max-drop", type=float, default=None, help="accuracy budget in percentage points"
    )
    p.add_argument(
        "--method",
        default="minmax",
        choices=["minmax", "entropy", "percentile"],
        help="calibration method (default minmax)",
    )
    p.add_argument(
        "--qformat",
        default="qdq",
        choices=["qdq", "qoperator"],
        help="static quantization format (default qdq)",
    )
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales")
    p.add_argument("--exclude-node", action="append", default=[], help="never quantize this node")
    p.add_argument("--exclude-op", action="append", default=[], help="never quantize this op type")
    p.add_argument(
        "--force-conv",
        action="store_true",
        help="quantize Conv dynamically too (usually slower than fp32 on CPUs)",
    )
    p.add_argument(
        "--preprocess",
        default="auto",
        choices=["auto", "on", "off"],
        help="auto (default): measure with and without pre-processing, keep the better",
    )
    p.add_argument(
        "--max-reverts",
        type=int,
        default=10,
        help="quantization rounds allowed to find the fewest sensitive nodes to keep in float",
    )
    p.add_argument(
        "--min-cosine",
        type=float,
        default=0.99,
        help="int8 tolerance: cosine vs fp32 (default 0.99)",
    )
    p.add_argument(
        "--min-top1",
        type=float,
        default=0.95,
        help="int8 tolerance: top-1 agreement vs fp32 (default 0.95; 0 disables)",
    )
    p.add_argument(
        "--torchscript",
        action="store_true",
        help="also add a TorchScript int8 artifact (torch dynamic quantization of "
        "Linear/LSTM; rebuilds the eager model from the manifest's source)",
    )

    p = verb("run", "Run an artifact on inputs.", RUN_EXAMPLE, cmd_run)
    p.add_argument("bundle", help="bundle directory or .onnx file")
    p.add_argument(
        "--inputs",
        help=".npz (one array per input name) or .npy (one input); "
        "default: the bundle's golden inputs",
    )
    p.add_argument("--artifact", help="artifact name (default: the recommended one)")
    p.add_argument("--provider", default="cpu", help="cpu (default), cuda or tensorrt")
    p.add_argument(
        "--allow-fallback",
        action="store_true",
        help="run on the CPU if the provider is unusable (results labeled cpu)",
    )
    p.add_argument("--threads", type=int, default=None, help="intra-op threads")
    p.add_argument("--cast", action="store_true", help="cast inputs to the model's dtypes")
    _public_key_argument(p)
    p.add_argument("--out", help="write the outputs to this .npz (a new file, or one it wrote)")

    p = verb("bench", "Measure latency of a bundle's artifacts.", BENCH_EXAMPLE, cmd_bench)
    p.add_argument("bundle", help="bundle directory")
    _bench_arguments(p)
    _public_key_argument(p)
    p.add_argument(
        "--compare", help="a saved report.json: exit 1 on a statistically clear regression"
    )
    p.add_argument(
        "--no-report", action="store_true", help="do not write report.json/md/html into the bundle"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.10,
        help="with --compare: slowdown that counts as a regression (default 0.10)",
    )

    p = verb("build", "Export, quantize, verify, bench and recommend.", BUILD_EXAMPLE, cmd_build)
    _model_arguments(p, from_config=True)
    p.add_argument("--calib", help="calibration data for static int8 (or 'random')")
    p.add_argument("--eval", help="evaluation data (.npz with labels)")
    p.add_argument("--max-drop", type=float, help="accuracy budget in points")
    p.add_argument("--prune", type=float, help="channel pruning ratio")
    p.add_argument("--config", help="edgeport.toml with [build], [export], [bench] sections")
    _bench_arguments(p, defaults=False)

    p = verb("keygen", "Make an Ed25519 key pair for signing bundles.", SIGN_EXAMPLE, cmd_keygen)
    p.add_argument("prefix", help="writes PREFIX.key (private, mode 600) and PREFIX.pub")

    p = verb("sign", "Sign a bundle's manifest (Ed25519).", SIGN_EXAMPLE, cmd_sign)
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--key", required=True, help="PEM Ed25519 private key (edgeport keygen)")

    p = verb("demo", "Export and verify the built-in example model.", DEMO_EXAMPLE, cmd_demo)
    p.add_argument("--out", default="demo-bundle", help="bundle directory (default demo-bundle)")
    return parser


def _model_arguments(p: argparse.ArgumentParser, *, from_config: bool = False) -> None:
    """MODEL, --input, --dynamic, --out, --weights and --format: the same words, the same help, in
    every verb that builds a bundle from a model (export, prune, build)."""
    config = " (or in --config's [build])" if from_config else ""
    p.add_argument(
        "model",
        nargs="?" if from_config else None,
        help="torchvision:NAME[?k=v], timm:NAME, hf:DIR[?task=TASK], file.py:factory, "
        "pkg.module:factory, or a TorchScript file" + config,
    )
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME:SHAPE[:DTYPE[:VALUES]]",
        help="an input, e.g. input:1x3x224x224 or tokens:batch=1xseq=16:int64:0..30522 "
        "(VALUES: LOW..HIGH or mask, for integer inputs; repeat for several, in call order; "
        "optional for hf: and timm: sources)",
    )
    p.add_argument(
        "--dynamic",
        action="append",
        default=[],
        metavar="NAME:AXIS=LABEL",
        help="mark an axis symbolic, e.g. input:0=batch",
    )
    p.add_argument("--out", required=not from_config, help="bundle directory to write" + config)
    p.add_argument("--weights", help="safetensors or state-dict file to load into the model")
    p.add_argument(
        "--format",
        default=None if from_config else "onnx,torchscript",
        help="comma-separated artifact formats (default: onnx,torchscript)",
    )


def _public_key_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--public-key",
        metavar="PEM",
        help="refuse the bundle unless manifest.json.sig verifies with this Ed25519 key",
    )


def _bench_arguments(p: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    p.add_argument("--artifacts", help="comma-separated artifact names (default: all)")
    p.add_argument(
        "--providers",
        default="cpu" if defaults else None,
        help="comma-separated: cpu, cuda, tensorrt (default cpu)",
    )
    p.add_argument("--batch", default="1" if defaults else None, help="batch sizes, e.g. 1,8")
    p.add_argument(
        "--threads",
        default="0" if defaults else None,
        help="intra-op threads, e.g. 1,2 (0 = default)",
    )
    p.add_argument("--warmup", type=int, default=None, help="untimed runs per variant (5)")
    p.add_argument("--iters", type=int, default=None, help="timed calls per variant")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of timed calls per variant per configuration (2)",
    )
    p.add_argument("--blocks", type=int, default=None, help="interleaved timing blocks (8)")
    p.add_argument(
        "--spread",
        type=float,
        default=None,
        help="wall-clock seconds to spread the blocks over, so that they sample a shared "
        "machine's drift (0: back to back)",
    )
    p.add_argument(
        "--spinning",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let ONNX Runtime's intra-op threads spin, as a default Session does",
    )
    p.add_argument("--allow-fallback", action="store_true", default=None)
    p.add_argument(
        "--no-baselines",
        action="store_true",
        default=None,
        help="skip eager PyTorch and TorchScript",
    )


def _version() -> str:
    from edgeport._version import __version__

    return __version__
