"""One ingest client per (api_url, key) per process, created on first use.

Nothing happens at import: no thread, no connection, no hook. The first client registers
the exit hook (flush, bounded by ``shutdown_timeout``) and the fork hook (a forked child
starts with empty queues and its own worker, and flushes when it exits).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any, TypeAlias

from .._log import log_once
from ..config import Settings, resolve
from ..events import WireEvent
from .client import Deferred, IngestClient


class DisabledClient:
    """What ``get_client`` returns without a key or with ``LUNARY_ENABLED=false``."""

    enabled = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def enqueue(self, event: WireEvent | Deferred) -> bool:
        return False

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "queued": 0,
            "sent": 0,
            "duplicates": 0,
            "failed": 0,
            "dropped": 0,
            "retries": 0,
            "batches": 0,
            "bytes_sent": 0,
            "truncated": 0,
        }


Client: TypeAlias = IngestClient | DisabledClient

_lock = threading.Lock()
_clients: dict[tuple[str, str], IngestClient] = {}
_hooks_registered = False


def get_client(settings: Settings | None = None) -> Client:
    """The shared client for these settings (``resolve()`` when not given)."""
    if settings is None:
        settings = resolve()
    key = settings.public_key or settings.private_key
    if not settings.enabled:
        return DisabledClient(settings)
    if not key:
        log_once(
            "no-key",
            "Lunary: no project key (set LUNARY_PUBLIC_KEY or call configure(public_key=...)); "
            "tracing is off",
        )
        return DisabledClient(settings)
    ident = (settings.api_url.rstrip("/"), key)
    client = _clients.get(ident)
    if client is None:
        with _lock:
            client = _clients.get(ident)
            if client is None:
                client = _clients[ident] = IngestClient(
                    settings, on_worker_start=register_exit_hook
                )
                _register_fork_hook()
    return client


def all_clients() -> list[IngestClient]:
    with _lock:
        return list(_clients.values())


def flush(timeout: float | None = None) -> bool:
    """Flush every client; True if all of them delivered everything within ``timeout``."""
    return all([client.flush(timeout) for client in all_clients()])


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop every client; later events are dropped and counted. Idempotent."""
    ok = all([client.shutdown(timeout) for client in all_clients()])
    with _lock:
        _clients.clear()
    return ok


_finalizer_pid = 0


def register_exit_hook() -> None:
    """Called when a worker starts: flush at interpreter exit (and at a multiprocessing
    child's exit, which skips atexit; its finalizers still run)."""
    global _hooks_registered, _finalizer_pid
    with _lock:
        first = not _hooks_registered
        _hooks_registered = True
        mp_util = sys.modules.get("multiprocessing.util")
        finalize = mp_util is not None and _finalizer_pid != os.getpid()
        if finalize:
            _finalizer_pid = os.getpid()
    if first:
        atexit.register(_flush_at_exit)
    if finalize and mp_util is not None:
        # A multiprocessing child clears inherited finalizers before running its target,
        # so this is registered from the child's own first worker start.
        mp_util.Finalize(None, _flush_at_exit, exitpriority=100)


def _flush_at_exit() -> None:
    for client in all_clients():
        client.shutdown(client.settings.shutdown_timeout)


_fork_hook_registered = False


def _register_fork_hook() -> None:
    global _fork_hook_registered
    if _fork_hook_registered or not hasattr(os, "register_at_fork"):
        return
    _fork_hook_registered = True
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # the parent may have held it while forking
    for client in list(_clients.values()):
        client._reset_after_fork()
