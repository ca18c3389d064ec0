"""The `edgeport` command line: parses options, calls the public API, maps errors to exit codes.

Exit codes: 0 success, 1 a check failed (parity, hashes), 2 bad usage or bad input. No traceback
unless ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from edgeport.errors import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    EdgeportError,
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
  edgeport bench b --batch 1,8 --threads 1,2 --json out.json
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
    p.add_argument(
        "model",
        help="torchvision:NAME[?k=v], file.py:factory, pkg.module:factory, or a TorchScript file",
    )
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME:SHAPE[:DTYPE]",
        help="an input, e.g. input:1x3x224x224 or tokens:batch=1xseq=16:int64 "
        "(repeat for several, in call order)",
    )
    p.add_argument(
        "--dynamic",
        action="append",
        default=[],
        metavar="NAME:AXIS=LABEL",
        help="mark an axis symbolic, e.g. input:0=batch",
    )
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.add_argument(
        "--format",
        default="onnx,torchscript",
        help="comma-separated formats (default: onnx,torchscript)",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.add_argument(
        "--exporter",
        default="auto",
        choices=["auto", "dynamo", "legacy"],
        help="ONNX exporter; auto = dynamo, falling back to legacy (default)",
    )
    p.add_argument("--script", action="store_true", help="TorchScript by scripting, not tracing")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    p.add_argument("--weights", help="safetensors or state-dict file to load into the model")
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
    p.add_argument("model", help="torchvision:NAME[?k=v], file.py:factory or pkg.module:factory")
    p.add_argument("--input", action="append", default=[], metavar="NAME:SHAPE[:DTYPE]")
    p.add_argument("--dynamic", action="append", default=[], metavar="NAME:AXIS=LABEL")
    p.add_argument("--out", required=True, help="bundle directory to write")
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
    p.add_argument("--weights", help="safetensors or state-dict file to load first")
    p.add_argument("--format", default="onnx,torchscript", help="export formats")

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
        "--format",
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
    p.add_argument("model", nargs="?", help="model source (or [build] model in --config)")
    p.add_argument("--input", action="append", default=[], metavar="NAME:SHAPE[:DTYPE]")
    p.add_argument("--dynamic", action="append", default=[], metavar="NAME:AXIS=LABEL")
    p.add_argument("--out", help="bundle directory (or [build] out in --config)")
    p.add_argument("--weights")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `edgeport` console script; returns the exit code.

    Every exception becomes one message and an exit code (traceback only with ``--debug``):
    2 for bad input (an `EdgeportError`, a file that cannot be read or written, memory), 1 for a
    failed check, 3 for a bug in edgeport.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if args.trust_code:
        logging.getLogger("edgeport").warning(
            "--trust-code: %s may load and run code the bundle carries (TorchScript, its "
            "model.source); use it only for bundles you trust",
            args.command,
        )
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message, code = _explain(exc)
        _console(stderr=True).print(
            f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True
        )
        return code


def _explain(exc: Exception) -> tuple[str, int]:
    """One message and exit code for any exception that reaches the command line."""
    if isinstance(exc, EdgeportError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError):
        where = f" {exc.filename!r}" if exc.filename else ""
        return f"cannot use{where}: {exc.strerror or exc}", EXIT_BAD_INPUT
    if isinstance(exc, MemoryError):
        return "ran out of memory (an input or file is larger than this machine holds)", 2
    text = str(exc).strip().splitlines()
    return (
        f"edgeport hit an error it does not explain yet ({type(exc).__name__}: "
        f"{text[0][:300] if text else ''}). This is a bug in edgeport: rerun with --debug for "
        "the traceback and report it",
        EXIT_INTERNAL,
    )


def _public_key_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--public-key",
        metavar="PEM",
        help="refuse the bundle unless manifest.json.sig verifies with this Ed25519 key",
    )


def _read_report(path: str) -> dict[str, Any]:
    """A saved report.json for --compare, read before any timing starts."""
    from pathlib import Path

    from edgeport.bundle import read_capped

    try:
        data = json.loads(read_capped(Path(path), 64 << 20, "--compare"))
    except OSError as exc:
        raise EdgeportError(f"cannot read --compare {path!r}: {exc.strerror or exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise EdgeportError(
            f"--compare {path!r} is not JSON ({str(exc)[:200]})",
            expected="a report.json written by edgeport bench (or bench --json)",
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise EdgeportError(
            f"--compare {path!r} is not an edgeport bench report (no 'results' list)",
            expected="a report.json written by edgeport bench (or bench --json)",
        )
    return data


def _run_out_path(text: str) -> Any:
    """Where `run --out` writes: an .npz in an existing folder, never over a file it did not
    write (an existing file must be an .npz archive)."""
    import zipfile
    from pathlib import Path

    path = Path(text)
    if path.suffix != ".npz":
        raise EdgeportError(f"--out {text!r} does not end in .npz", expected="e.g. --out y.npz")
    if not path.parent.is_dir():
        raise EdgeportError(
            f"--out {text!r}: folder {str(path.parent)!r} does not exist",
            fix="create the folder first",
        )
    if path.exists() and (path.is_dir() or not zipfile.is_zipfile(path)):
        raise EdgeportError(
            f"--out {text!r} exists and is not an .npz archive",
            fix="choose a new file name; edgeport never overwrites a file it did not write",
        )
    return path


def run() -> None:
    """`python -m edgeport` entry."""
    sys.exit(main())


def cmd_export(args: argparse.Namespace) -> int:
    """`edgeport export`."""
    from edgeport.exporter.flow import ExportOptions, export
    from edgeport.exporter.onnx import DEFAULT_OPSET

    options = ExportOptions(
        formats=tuple(f.strip() for f in args.format.split(",") if f.strip()),
        opset=args.opset or DEFAULT_OPSET,
        exporter=args.exporter,
        script=args.script,
        simplify=not args.no_simplify,
        seed=args.seed,
    )
    with _progress(args.json):
        bundle = export(
            args.model,
            args.input,
            out=args.out,
            dynamic=args.dynamic,
            weights=args.weights,
            trust_checkpoint=args.trust_checkpoint,
            options=options,
        )
    if args.json:
        _print_json(bundle.manifest)
    else:
        _print_artifacts(bundle.manifest, title=f"exported {args.model} → {args.out}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """`edgeport verify`."""
    from edgeport.verify import verify_bundle

    sizes = [_parse_sizes(text) for text in args.sizes]
    tolerance = {
        "rtol": args.rtol,
        "atol": args.atol,
        "min_cosine": args.min_cosine,
        "min_top1": args.min_top1,
    }
    for key, value in tolerance.items():
        if value is not None and not (math.isfinite(value) and value >= 0):
            flag = "--" + key.replace("_", "-")
            raise EdgeportError(f"{flag} {value} is not a finite number of 0 or more")
    with _progress(args.json):
        report = verify_bundle(
            args.bundle,
            artifacts=args.artifact,
            eager_sizes=sizes,
            trust_code=args.trust_code,
            tolerance=tolerance,
            public_key=args.public_key,
        )
    if args.json:
        _print_json(report.to_json())
    else:
        _print_verify(report)
    return EXIT_OK if report.passed else EXIT_CHECK_FAILED


def cmd_inspect(args: argparse.Namespace) -> int:
    """`edgeport inspect`."""
    from edgeport.inspection import inspect_path

    info = inspect_path(args.path)
    if args.json:
        _print_json(info)
    else:
        _print_inspect(info)
    return EXIT_OK


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


def _bench_options(args: argparse.Namespace, base: Any = None) -> Any:
    from dataclasses import replace

    from edgeport.benchmarks.harness import BenchOptions

    def ints(text: str | None) -> tuple[int, ...] | None:
        if text is None:
            return None
        try:
            return tuple(int(v) for v in text.split(","))
        except ValueError:
            raise EdgeportError(f"cannot parse {text!r}", expected="integers like 1,8") from None

    given = {
        "artifacts": tuple(args.artifacts.split(",")) if args.artifacts else None,
        "providers": tuple(args.providers.split(",")) if args.providers else None,
        "batches": ints(args.batch),
        "threads": ints(args.threads),
        "warmup": args.warmup,
        "iters": args.iters,
        "duration": args.duration,
        "blocks": args.blocks,
        "spread": args.spread,
        "spinning": args.spinning,
        "allow_fallback": args.allow_fallback,
        "baselines": False if args.no_baselines else None,
    }
    return replace(base or BenchOptions(), **{k: v for k, v in given.items() if v is not None})


def cmd_bench(args: argparse.Namespace) -> int:
    """`edgeport bench`."""
    from edgeport.benchmarks.harness import compare_reports, run_bench
    from edgeport.benchmarks.report import write_reports

    options = _bench_options(args)
    baseline = _read_report(args.compare) if args.compare else None
    with _progress(args.json):
        report = run_bench(
            args.bundle, options, trust_code=args.trust_code, public_key=args.public_key
        )
    if not args.no_report:
        write_reports(report, args.bundle)
    regressions: list[str] = []
    if baseline is not None:
        regressions = compare_reports(report, baseline, threshold=args.threshold)
        report["regressions"] = regressions
    if args.json:
        _print_json(report)
    else:
        _print_bench(report)
        for line in regressions:
            _console().print(f"[red]regression:[/] {line}", highlight=False)
        if args.compare and not regressions:
            _console().print(f"no clear regression against {args.compare}")
    return EXIT_CHECK_FAILED if regressions else EXIT_OK


def _print_bench(report: dict[str, Any]) -> None:
    from rich.table import Table

    from edgeport.benchmarks.report import COLUMNS, table_rows

    several = {k: len({r[k] for r in report["results"]}) > 1 for k in ("threads", "provider")}
    wanted = ["variant", *(k for k in ("provider", "threads") if several[k])]
    wanted += ["batch", "p50 ms", "p99 ms", "vs eager", "vs ONNX fp32", "size", "accuracy"]
    index = [COLUMNS.index(c) for c in wanted]
    table = Table(title=f"bench {report['bundle']}")
    for col in wanted:
        table.add_column(col, no_wrap=True, justify="left" if col == "variant" else "right")
    for row in table_rows(report):
        table.add_row(*(row[i] for i in index))
    console = _console()
    console.print(table)
    for warning in report.get("warnings") or []:
        console.print(f"[yellow]unstable:[/] {warning}", highlight=False)
    for skipped in report.get("skipped") or []:
        console.print(f"[yellow]skipped:[/] {skipped}", highlight=False)
    rec = report.get("recommended") or {}
    console.print(
        f"recommended: [bold]{rec.get('artifact')}[/] — {rec.get('reason')}", highlight=False
    )


def cmd_build(args: argparse.Namespace) -> int:
    """`edgeport build`."""
    from edgeport.pipeline import BuildOptions, build, load_config, merge_cli, options_from_config

    config = load_config(args.config) if args.config else {}
    options = options_from_config(config) if config else BuildOptions()
    model = args.model or config.get("build", {}).get("model")
    out = args.out or config.get("build", {}).get("out")
    if not model or not out:
        raise EdgeportError("build needs a MODEL and --out (on the command line or in --config)")
    options = merge_cli(
        options,
        {
            "inputs": tuple(args.input),
            "dynamic": tuple(args.dynamic),
            "weights": args.weights,
            "calib": args.calib,
            "eval": args.eval,
            "max_drop": args.max_drop,
            "prune": args.prune,
            "bench": _bench_options(args, options.bench),
        },
    )
    with _progress(args.json):
        result = build(model, out, options)
    if args.json:
        _print_json(
            {
                "bundle": str(result.bundle.root),
                "report": result.report,
                "notes": result.notes,
                "reports": {k: str(v) for k, v in result.reports.items()},
            }
        )
        return EXIT_OK
    _print_summary(result)
    return EXIT_OK


def _print_summary(result: Any) -> None:
    _print_bench(result.report)
    console = _console()
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(
        f"report: {result.reports['html']} (also report.md, report.json)", highlight=False
    )


def cmd_prune(args: argparse.Namespace) -> int:
    """`edgeport prune`."""
    from edgeport.pruning import PruneOptions, RecoverOptions, prune

    overrides = {}
    for item in args.layer_ratio:
        name, _, value = item.partition("=")
        try:
            overrides[name] = float(value)
        except ValueError:
            raise EdgeportError(
                f"--layer-ratio {item!r} is not MODULE=RATIO", expected="e.g. layer4.0.conv1=0.3"
            ) from None
    options = PruneOptions(
        ratio=args.ratio,
        importance=args.importance,
        global_pruning=args.global_pruning,
        overrides=overrides,
        ignore=tuple(args.ignore) if args.ignore is not None else None,
        round_to=args.round_to,
    )
    recovery = RecoverOptions(method=args.recover, data=args.data, steps=args.steps, lr=args.lr)
    with _progress(args.json):
        bundle = prune(
            args.model,
            args.input,
            out=args.out,
            options=options,
            recovery=recovery,
            eval_data=args.eval,
            dynamic=args.dynamic,
            weights=args.weights,
            formats=tuple(f.strip() for f in args.format.split(",") if f.strip()),
        )
    entry = bundle.manifest["pruning"]
    if args.json:
        _print_json(entry)
        return EXIT_OK
    console = _console()
    console.print(
        f"pruned {args.model}: params {entry['params_before']:,} → {entry['params_after']:,} "
        f"({entry['params_ratio']:.2f}×), MACs {entry['macs_before']:,} → "
        f"{entry['macs_after']:,} ({entry['macs_ratio']:.2f}×)",
        highlight=False,
    )
    console.print(f"not pruned (asked): {', '.join(entry['ignored']) or 'none'}", highlight=False)
    if entry["untouched"]:
        console.print(f"kept every channel: {', '.join(entry['untouched'])}", highlight=False)
    for key, label in (
        ("accuracy_unpruned", "accuracy unpruned"),
        ("accuracy_pruned", "accuracy pruned, no recovery"),
        ("accuracy_recovered", "accuracy after recovery"),
    ):
        if entry.get(key) is not None:
            console.print(f"{label}: {entry[key]:.2%}", highlight=False)
    if entry["recovery"]:
        r = entry["recovery"]
        console.print(
            f"recovery {r['method']}: {r['steps']} steps, loss {r['loss_first']:.4f} → "
            f"{r['loss_last']:.4f}",
            highlight=False,
        )
    for name, art in bundle.artifacts.items():
        console.print(f"{name}: parity passed against the pruned eager model: {art['passed']}")
    console.print(f"bundle: {bundle.root}", highlight=False)
    return EXIT_OK


def cmd_quantize(args: argparse.Namespace) -> int:
    """`edgeport quantize`."""
    from edgeport.parity import Tolerance
    from edgeport.quantization import CalibrationMethod, QuantFormat, QuantizeOptions, quantize

    options = QuantizeOptions(
        mode=args.mode,
        calib=args.calib,
        eval=args.eval,
        max_drop=args.max_drop,
        method=CalibrationMethod(args.method),
        fmt=QuantFormat(args.format),
        per_channel=not args.per_tensor,
        exclude_nodes=tuple(args.exclude_node),
        exclude_ops=tuple(args.exclude_op),
        force_conv=args.force_conv,
        preprocess=args.preprocess,
        max_reverts=args.max_reverts,
        tolerance=Tolerance(min_cosine=args.min_cosine, min_top1=args.min_top1 or None),
        torchscript=args.torchscript,
    )
    with _progress(args.json):
        bundle = quantize(args.bundle, options, trust_code=args.trust_code)
    name = next(n for n in reversed(list(bundle.artifacts)) if n.startswith("onnx-int8"))
    entry = bundle.artifact(name)
    if args.json:
        _print_json({"artifact": name, **entry, "recommended": bundle.manifest["recommended"]})
    else:
        _print_quantized(name, entry, bundle.manifest["recommended"])
    return EXIT_OK


def _print_quantized(name: str, entry: dict[str, Any], recommended: dict[str, Any]) -> None:
    from rich.table import Table

    e, speed, st = entry["evaluation"], entry["speed"], entry["structure"]
    table = Table(title=f"{name}: {entry['recipe']['mode_reason']}")
    for col in ("metric", "fp32", "int8"):
        table.add_column(col)
    if e["accuracy_fp32"] is not None:
        table.add_row(
            f"accuracy ({e['samples']} samples)",
            f"{e['accuracy_fp32']:.2%}",
            f"{e['accuracy_int8']:.2%}",
        )
    table.add_row("cosine vs fp32", "1", f"{e['cosine']:.5f}")
    if e["top1_agreement"] is not None:
        table.add_row("top-1 agreement", "1", f"{e['top1_agreement']:.3f}")
    table.add_row(
        "latency p50, batch 1",
        f"{speed['fp32']['median'] * 1e3:.3f} ms",
        f"{speed['int8']['median'] * 1e3:.3f} ms ({speed['speedup_vs_fp32']:.2f}×)",
    )
    console = _console()
    console.print(table)
    console.print(
        f"QuantizeLinear {st['quantize_linear']}, DequantizeLinear "
        f"{st['dequantize_linear']}, left in float: {st['float_ops'] or 'none'}",
        highlight=False,
    )
    for kept in entry["kept_in_float"]:
        console.print(
            f"kept in float: {kept['kind']} {kept['tensor']} (alone it restores "
            f"{kept['cosine_gain']:+.5f} of output cosine) → nodes {', '.join(kept['nodes'])}",
            highlight=False,
        )
    if "revert_latency_cost" in speed:
        console.print(
            f"latency cost of the float nodes: {speed['revert_latency_cost']:.2f}× "
            "the fully quantized model",
            highlight=False,
        )
    for warning in entry["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"recommended: {recommended['artifact']} ({recommended['reason']})", highlight=False
    )


def cmd_run(args: argparse.Namespace) -> int:
    """`edgeport run`."""
    import io
    import time

    import numpy as np

    from edgeport.bundle import write_file_atomic
    from edgeport.data import load_npz
    from edgeport.runtime.session import Session

    out = _run_out_path(args.out) if args.out else None
    session = Session(
        args.bundle,
        args.artifact,
        args.provider,
        threads=args.threads,
        allow_fallback=args.allow_fallback,
        cast=args.cast,
        trust_code=args.trust_code,
        public_key=args.public_key,
    )
    if args.inputs:
        feeds = load_npz(args.inputs, session.inputs)
    elif session.bundle is not None and session.bundle.spec.golden:
        feeds = session.bundle.golden_sets()[0].inputs
    else:
        raise EdgeportError(
            "--inputs is required: this model has no golden inputs to run on",
            expected="an .npz with one array per input name",
        )
    start = time.perf_counter()
    outputs = session.run(feeds)
    seconds = time.perf_counter() - start
    if out is not None:
        buffer = io.BytesIO()
        np.savez(buffer, **outputs)
        write_file_atomic(out, buffer.getvalue())
    summary = {
        "artifact": session.artifact,
        "provider": outputs.provider,
        "seconds": seconds,
        "inputs": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in feeds.items()},
        "outputs": {
            k: {"dtype": str(v.dtype), "shape": list(v.shape), **_stats(v)}
            for k, v in outputs.items()
        },
        "written": str(out) if out else None,
        "notes": session.notes,
    }
    if args.json:
        _print_json(summary)
    else:
        _print_run(summary)
    return EXIT_OK


def _stats(array: Any) -> dict[str, float]:
    if array.dtype.kind not in "fiub" or array.size == 0:
        return {}
    return {"min": float(array.min()), "max": float(array.max()), "mean": float(array.mean())}


def _print_run(summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(
        title=f"{summary['artifact']} on {summary['provider']}: "
        f"{summary['seconds'] * 1e3:.2f} ms (first run, includes warm-up)"
    )
    for col in ("output", "dtype", "shape", "min", "max", "mean"):
        table.add_column(col)
    for name, o in summary["outputs"].items():
        table.add_row(
            name,
            o["dtype"],
            str(o["shape"]),
            *(f"{o[k]:.6g}" if k in o else "" for k in ("min", "max", "mean")),
        )
    console = _console()
    console.print(table)
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if summary["written"]:
        console.print(f"outputs written to {summary['written']}", highlight=False)


def cmd_keygen(args: argparse.Namespace) -> int:
    """`edgeport keygen`."""
    from edgeport.signing import generate_keypair

    private, public = f"{args.prefix}.key", f"{args.prefix}.pub"
    generate_keypair(private, public)
    if args.json:
        _print_json({"private_key": private, "public_key": public})
    else:
        _console().print(
            f"wrote {private} (private: keep it secret) and {public} (give it to whoever runs "
            "your bundles)",
            highlight=False,
        )
    return EXIT_OK


def cmd_sign(args: argparse.Namespace) -> int:
    """`edgeport sign`."""
    from edgeport.bundle import sign_bundle

    path = sign_bundle(args.bundle, args.key)
    if args.json:
        _print_json({"bundle": args.bundle, "signature": str(path)})
    else:
        _console().print(f"signed: {path}", highlight=False)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """`edgeport demo`: train a CNN on digits, build it with real data, show the summary."""
    from edgeport.demo import run_demo

    with _progress(args.json):
        result = run_demo(args.out)
    if args.json:
        _print_json({"bundle": str(result.bundle.root), "report": result.report})
        return EXIT_OK
    _print_summary(result)
    return EXIT_OK


def _parse_sizes(text: str) -> dict[str, int]:
    sizes = {}
    for item in text.split(","):
        label, eq, value = item.partition("=")
        if not eq or not value.strip().isdigit() or not label.strip():
            raise EdgeportError(f"cannot parse --sizes {text!r}", expected="LABEL=N[,LABEL=N]")
        sizes[label.strip()] = int(value)
    return sizes


# ---- console output -------------------------------------------------------------------------


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, files) gets room for the tables instead of rich's 80 columns.
    wide = stream.isatty() or "COLUMNS" in os.environ
    return Console(stderr=stderr, width=None if wide else 140)


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=_console(stderr=True), show_path=False, show_time=False)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        handlers=[handler],
        format="%(message)s",
        force=True,
    )


@contextmanager
def _progress(quiet: bool) -> Iterator[None]:
    """Show the library's steps with a rich spinner on stderr (nothing with --json)."""
    from edgeport import _progress as progress

    if quiet:
        yield
        return
    console = _console(stderr=True)
    with console.status("starting …") as status:

        def show(description: str) -> None:
            status.update(f"{description} …")

        progress.add_listener(show)
        try:
            yield
        finally:
            progress.remove_listener(show)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _print_artifacts(manifest: dict[str, Any], *, title: str) -> None:
    from rich.table import Table

    model = manifest["model"]
    table = Table(title=title)
    for col in ("artifact", "how", "size", "max abs err", "parity"):
        table.add_column(col, no_wrap=col == "artifact")
    for name, entry in manifest["artifacts"].items():
        errs = [
            o["metrics"].get("max_abs_err", 0.0)
            for s in entry["parity"].values()
            for o in s.values()
        ]
        recipe = entry["recipe"]
        how = recipe.get("exporter", "")
        how += f" ({recipe['method']})" if "method" in recipe else ""
        if recipe.get("fallback_reason"):
            how += " [fallback]"
        if recipe.get("simplify", {}).get("applied"):
            how += " + onnxsim"
        verdict = "passed" if entry["passed"] else "FAILED"
        table.add_row(
            name,
            how,
            _size(entry["size_bytes"]),
            f"{max(errs, default=0.0):.2e}",
            f"[green]{verdict}[/] on " + ", ".join(entry["parity"]),
        )
    console = _console()
    console.print(table)
    ins = ", ".join(f"{s['name']} {s['dtype']}{s['shape']}" for s in manifest["inputs"])
    outs = ", ".join(f"{s['name']} {s['dtype']}{s['shape']}" for s in manifest["outputs"])
    console.print(
        f"model {model['class']}: {model['parameters']:,} parameters, "
        f"{model.get('macs', 0) / 1e6:,.1f} M MACs",
        highlight=False,
    )
    console.print(f"inputs: {ins}\noutputs: {outs}", highlight=False)
    for name, entry in manifest["artifacts"].items():
        reason = entry["recipe"].get("fallback_reason")
        if reason:
            console.print(f"[yellow]{name}: legacy exporter used: {reason}[/]", highlight=False)
        for warning in entry.get("warnings", []):
            console.print(f"[yellow]{name}: {warning}[/]", highlight=False)


def _print_verify(report: Any) -> None:
    from rich.table import Table

    table = Table(title=f"verify {report.bundle}")
    for col in ("artifact", "check", "output", "max abs err", "cosine", "passed"):
        table.add_column(col)
    for name, sets in report.artifacts.items():
        for set_name, outputs in sets.items():
            for out_name, res in outputs.items():
                m = res["metrics"]
                table.add_row(
                    name,
                    set_name,
                    out_name,
                    f"{m.get('max_abs_err', float('nan')):.2e}",
                    f"{m.get('cosine', float('nan')):.6f}",
                    "[green]yes[/]" if res["passed"] else "[red]NO[/]",
                )
    console = _console()
    console.print(table)
    for name, why in report.skipped.items():
        console.print(f"[yellow]skipped:[/] {name}: {why}", highlight=False)
    if report.passed:
        checked = ", ".join(report.artifacts)
        console.print(
            "[green]verified:[/] hashes match and every checked artifact passes parity "
            f"({checked})",
            highlight=False,
        )
    for problem in report.problems:
        console.print(f"[red]failed:[/] {problem}", highlight=False, soft_wrap=True)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _print_inspect(info: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    if "bundle" in info:
        model = info["model"]
        console.print(
            f"bundle {info['bundle']}: {model.get('class')} from {model.get('source')}, "
            f"{model.get('parameters', 0):,} parameters, "
            f"{model.get('macs', 0) / 1e6:,.1f} M MACs",
            highlight=False,
        )
        _print_io(console, info)
        table = Table(title="artifacts")
        for col in ("artifact", "path", "format", "precision", "size", "nodes", "top ops"):
            table.add_column(col)
        for name, a in info["artifacts"].items():
            ops = ", ".join(f"{k}×{v}" for k, v in list(a.get("ops", {}).items())[:5])
            table.add_row(
                name,
                a["path"],
                a["format"],
                a["precision"],
                _size(a["size_bytes"]),
                str(a.get("nodes", "")),
                ops,
            )
        console.print(table)
        return
    console.print(
        f"{info['path']}: {_size(info['size_bytes'])}, opset {info['opset']}, "
        f"{info['nodes']} nodes, {info['parameters']:,} parameters, "
        f"{info['macs'] / 1e6:,.1f} M MACs (symbolic dims = 1)",
        highlight=False,
    )
    _print_io(console, info)
    table = Table(title="op histogram")
    table.add_column("op")
    table.add_column("count", justify="right")
    for op, count in info["ops"].items():
        table.add_row(op, str(count))
    console.print(table)


def _print_io(console: Any, info: dict[str, Any]) -> None:
    for kind in ("inputs", "outputs"):
        for s in info[kind]:
            console.print(f"  {kind[:-1]} {s['name']}: {s['dtype']} {s['shape']}", highlight=False)


def _version() -> str:
    from edgeport._version import __version__

    return __version__


if __name__ == "__main__":
    run()
