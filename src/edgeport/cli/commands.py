"""One function per verb: options in, the public API called, a result rendered, an exit code out."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from edgeport.cli.render import (
    _console,
    _print_artifacts,
    _print_bench,
    _print_inspect,
    _print_json,
    _print_quantized,
    _print_run,
    _print_summary,
    _print_verify,
    _progress,
    _stats,
)
from edgeport.errors import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    EdgeportError,
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
    if args.format:
        from dataclasses import replace

        formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
        options = replace(options, export=replace(options.export, formats=formats))
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
        fmt=QuantFormat(args.qformat),
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
