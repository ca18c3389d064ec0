"""The two roots of edgeport's exceptions.

`EdgeportError` is for what the user can fix: the CLI prints its message and exits with a non-zero
code, no traceback. `InternalError` is a bug in edgeport (exit 3). `CheckFailed` is an
`EdgeportError` for a check that ran and failed (parity, hashes): exit code 1 instead of 2;
`IntegrityError` is the kind a tampered bundle raises. `CodeNotTrusted` refuses to load code from
a bundle (TorchScript, a model source) without the user's opt-in.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class EdgeportError(Exception):
    """A problem the user can fix. The message follows one template.

    Args:
        what: What we got (the problem, stated concretely).
        expected: What we expected instead.
        available: What is available (choices, near matches), if that helps.
        fix: How to fix it.
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        what: str,
        *,
        expected: str | None = None,
        available: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.what = what
        self.expected = expected
        self.available = available
        self.fix = fix
        super().__init__(self._compose())

    def _compose(self) -> str:
        parts = [self.what.rstrip(".") + "."]
        if self.expected:
            parts.append(f"Expected {self.expected.rstrip('.')}.")
        if self.available:
            parts.append(f"Available: {self.available.rstrip('.')}.")
        if self.fix:
            parts.append(f"Fix: {self.fix.rstrip('.')}.")
        return " ".join(parts)


class CheckFailed(EdgeportError):
    """A verification ran and failed (parity out of tolerance, hash mismatch)."""

    exit_code = EXIT_CHECK_FAILED


class IntegrityError(CheckFailed):
    """A bundle failed an integrity check: a hash, a path that leaves it, a signature."""


class CodeNotTrusted(EdgeportError):
    """Opening something would run code from it, and the user did not opt in (`--trust-code`)."""


class InternalError(Exception):
    """A bug in edgeport: an invariant that should hold did not."""


def short_message(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when empty), at most ``limit``."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]
