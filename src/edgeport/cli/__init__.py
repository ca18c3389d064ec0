"""The `edgeport` command line: parses options, calls the public API, maps errors to exit codes.

Exit codes: 0 success, 1 a check failed (parity, hashes, signature), 2 bad usage or bad input,
3 a bug in edgeport. No traceback unless ``--debug``. The parser is in `parser`, one function per
verb in `commands`, and everything printed to the console in `render`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from edgeport.cli.parser import build_parser
from edgeport.cli.render import _console
from edgeport.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EdgeportError

__all__ = ["build_parser", "main", "run"]


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


def run() -> None:
    """`python -m edgeport` entry."""
    sys.exit(main())


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=_console(stderr=True), show_path=False, show_time=False)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        handlers=[handler],
        format="%(message)s",
        force=True,
    )
