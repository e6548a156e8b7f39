"""Lunary observability for LangChain, LangGraph and LlamaIndex.

Importing this package starts nothing: no thread, no connection. Framework integrations
live in ``lunary_integrations.langchain`` and ``lunary_integrations.llama_index``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .config import Settings, configure
from .ingest import flush, get_client, shutdown
from .track import track_event

if TYPE_CHECKING:
    from .runs import AsyncRunsClient, RunsClient


def __getattr__(name: str) -> Any:
    # The Runs API client is imported on first use: most processes only write.
    if name in ("RunsClient", "AsyncRunsClient"):
        from . import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'lunary_integrations' has no attribute {name!r}")


__all__ = [
    "AsyncRunsClient",
    "RunsClient",
    "Settings",
    "__version__",
    "configure",
    "flush",
    "get_client",
    "shutdown",
    "track_event",
]
