"""The trust rule (docs/design.md §7): opening a bundle never runs code from it unless the user
opts in.

Code is: a TorchScript artifact (``torch.jit.load`` runs the file's program), and the model
source a manifest names when edgeport rebuilds the eager model (``file.py:factory`` and
``pkg.module:factory`` import Python; a weights path or an ``hf:DIR`` directory points outside
the bundle). A ``torchvision:NAME`` or ``timm:NAME`` source without weights builds a library
model and reads nothing else, so it needs no opt-in. One flag opts in for every command:
``--trust-code`` (``trust_code=True`` in the Python API). The CLI warns once when the flag is
given; each load it allows is logged at INFO (``-v``). Commands that made the bundle themselves
(``build``) trust it without the flag.
"""

from __future__ import annotations

import logging

from edgeport.errors import CodeNotTrusted

log = logging.getLogger(__name__)

FLAG = "--trust-code"


def require_trust(trusted: bool, what: str, *, alternative: str | None = None) -> None:
    """Raise `CodeNotTrusted` unless ``trusted``; log the opt-in when it is used.

    Args:
        trusted: The user passed ``--trust-code`` / ``trust_code=True``.
        what: What would run, e.g. "opening TorchScript artifact 'torchscript-fp32' (model.ts)".
        alternative: What works without the opt-in, for the message.
    """
    if not trusted:
        raise CodeNotTrusted(
            f"{what} would run code from the bundle, and a bundle is data",
            fix=f"pass {FLAG} (Python: trust_code=True) only if you trust whoever made this "
            "bundle" + (f"; or {alternative}" if alternative else ""),
        )
    log.info("%s: %s runs code from the bundle", FLAG, what)


def source_runs_code(source: str | None, weights: object = None) -> bool:
    """True when rebuilding the model from a manifest's ``model.source`` would run or read
    anything beyond an installed library (see the module docstring)."""
    if source is None:
        return False
    if not source.startswith(LIBRARY_SOURCES) or weights is not None:
        return True
    # A builder option that names weights (weights_backbone=...) would download or read files.
    options = (item.partition("=") for item in source.partition("?")[2].split("&"))
    return any("weights" in key and value.lower() != "none" for key, _, value in options)


LIBRARY_SOURCES = ("torchvision:", "timm:")


def rebuild_what(source: str) -> str:
    """How a message names rebuilding the eager model from ``source``."""
    return f"rebuilding the eager model from the manifest's model.source {source!r}"
