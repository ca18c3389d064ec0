"""Running artifacts: `Session` (validated inputs, provider policy, monitoring) and runners."""

from edgeport.runtime.providers import Provider, available_providers
from edgeport.runtime.session import Outputs, Session, SessionOptions

__all__ = ["Outputs", "Provider", "Session", "SessionOptions", "available_providers"]
