"""Logging that never floods: one line per kind of problem, then silence (and a counter)."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("lunary_integrations")

_seen: set[str] = set()
_lock = threading.Lock()


def log_once(kind: str, message: str, *args: object, level: int = logging.WARNING) -> bool:
    """Log ``message`` the first time ``kind`` is seen in this process; True if it was logged."""
    if kind in _seen:
        return False
    with _lock:
        if kind in _seen:
            return False
        _seen.add(kind)
    logger.log(level, message, *args)
    return True


def forget_logged() -> None:
    """Allow every kind to be logged again (tests)."""
    with _lock:
        _seen.clear()
