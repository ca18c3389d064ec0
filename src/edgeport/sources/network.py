"""edgeport never downloads: model builders run with the network refused.

torchvision's segmentation and detection builders default to pretrained backbones, timm and
Hugging Face fetch from the Hub when a name is not local. Whatever a builder tries, inside
:func:`offline` every connection and name lookup fails at once with `NetworkAttempt`, and the
attempt becomes one clear error instead of a ``URLError`` traceback after a timeout.
"""

from __future__ import annotations

import os
import socket
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edgeport.errors import EdgeportError

# The Hugging Face libraries read these when they are imported or called.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


class NetworkAttempt(OSError):
    """A model builder tried to reach the network inside :func:`offline`."""


@contextmanager
def offline(what: str, fix: str) -> Iterator[None]:
    """Build ``what`` with the network refused; an attempt is an `EdgeportError` with ``fix``.

    Sockets are refused process-wide while the block runs (model building is short and
    single-threaded in edgeport); the Hugging Face offline variables stay set afterwards.
    """
    os.environ.update(OFFLINE_ENV)
    saved = (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        target = next((a for a in args if isinstance(a, tuple | str)), "?")
        raise NetworkAttempt(f"network access refused (to {target!r})")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.getaddrinfo = refuse
    try:
        yield
    except EdgeportError:
        raise
    except Exception as exc:
        if not tried_network(exc):
            raise
        raise EdgeportError(
            f"{what} tried to download something (edgeport never downloads): "
            f"{type(exc).__name__}: {first_line(exc)}",
            fix=fix,
        ) from exc
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = saved  # type: ignore[method-assign]


def tried_network(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a refused network attempt or a Hub lookup that
    offline mode stopped."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NetworkAttempt):
            return True
        if isinstance(current, urllib.error.URLError) and isinstance(
            current.reason, NetworkAttempt
        ):
            return True
        if type(current).__name__ in ("OfflineModeIsEnabled", "LocalEntryNotFoundError"):
            return True
        current = current.__cause__ or current.__context__
    return False


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
