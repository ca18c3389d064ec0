"""Running artifacts: `Session` (validated inputs, provider policy, monitoring) over one
`Backend` per artifact format (`BACKENDS`, keyed by the manifest's format; `backend_class`)."""

from edgeport.runtime.backends import BACKENDS, Backend, backend_class
from edgeport.runtime.providers import Provider, available_providers
from edgeport.runtime.session import Outputs, Session, SessionOptions

__all__ = [
    "BACKENDS",
    "Backend",
    "Outputs",
    "Provider",
    "Session",
    "SessionOptions",
    "available_providers",
    "backend_class",
]
