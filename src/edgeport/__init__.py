"""edgeport: from a trained PyTorch model to a verified, measured artifact that runs on devices.

The public Python API::

    import edgeport

    bundle = edgeport.export("torchvision:resnet18", ["input:batch=1x3x224x224"], out="b")
    report = edgeport.verify_bundle("b")        # hashes + golden parity
    bundle = edgeport.load_bundle("b")          # manifest, artifacts, golden sets
    edgeport.sign_bundle("b", "maker.key")      # Ed25519 over the manifest
    session = edgeport.Session("b", public_key="maker.pub")

Nothing that opens a bundle runs code from it unless called with ``trust_code=True``.

Heavy libraries (torch, onnxruntime) are imported by the stage that needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeport._version import __version__
from edgeport.bundle import Bundle, load_bundle, sign_bundle
from edgeport.errors import (
    CheckFailed,
    CodeNotTrusted,
    EdgeportError,
    IntegrityError,
    InternalError,
)
from edgeport.spec import TensorSpec

if TYPE_CHECKING:
    from edgeport.benchmarks.harness import BenchOptions, run_bench
    from edgeport.exporter.flow import ExportOptions, export
    from edgeport.inspection import inspect_path
    from edgeport.runtime.session import Session, SessionOptions
    from edgeport.verify import VerifyReport, verify_bundle

__all__ = [
    "BenchOptions",
    "Bundle",
    "CheckFailed",
    "CodeNotTrusted",
    "EdgeportError",
    "ExportOptions",
    "IntegrityError",
    "InternalError",
    "Session",
    "SessionOptions",
    "TensorSpec",
    "VerifyReport",
    "__version__",
    "export",
    "inspect_path",
    "load_bundle",
    "run_bench",
    "sign_bundle",
    "verify_bundle",
]

_LAZY = {
    "BenchOptions": "edgeport.benchmarks.harness",
    "run_bench": "edgeport.benchmarks.harness",
    "Session": "edgeport.runtime.session",
    "SessionOptions": "edgeport.runtime.session",
    "export": "edgeport.exporter.flow",
    "ExportOptions": "edgeport.exporter.flow",
    "inspect_path": "edgeport.inspection",
    "verify_bundle": "edgeport.verify",
    "VerifyReport": "edgeport.verify",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgeport' has no attribute {name!r}")
