"""Progress of slow steps: the library announces steps, the CLI shows them (rich).

Library code calls ``with step("exporting ONNX"):``; that logs the step and tells the listener the
CLI installed, if any. No console output happens here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("edgeport")

Listener = Callable[[str], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Register a callable that receives each step's description as it starts."""
    _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    """Unregister a listener added with `add_listener`."""
    if listener in _listeners:
        _listeners.remove(listener)


@contextmanager
def step(description: str) -> Iterator[None]:
    """Announce a slow step; logs its duration (seconds) when it ends."""
    for listener in list(_listeners):
        listener(description)
    start = time.perf_counter()
    log.info("%s …", description)
    yield
    log.info("%s: done in %.2f s", description, time.perf_counter() - start)


def update(description: str) -> None:
    """Tell the listeners how a running step is going (e.g. a training step count)."""
    for listener in list(_listeners):
        listener(description)


def bar(done: int, total: int, width: int = 24) -> str:
    """A text progress bar: ``[#######.................] 30%``."""
    filled = round(width * done / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done / max(total, 1):.0%}"
