"""Structured pruning that removes channels for real, then recovers accuracy (see `core`)."""

from edgeport.pruning.core import (
    IMPORTANCE,
    PruneOptions,
    PruneResult,
    apply_plan,
    default_ignored,
    prune_model,
)
from edgeport.pruning.flow import RecoverOptions, load_pruned, prune
from edgeport.pruning.recover import accuracy, recover

__all__ = [
    "IMPORTANCE",
    "PruneOptions",
    "PruneResult",
    "RecoverOptions",
    "accuracy",
    "apply_plan",
    "default_ignored",
    "load_pruned",
    "prune",
    "prune_model",
    "recover",
]
