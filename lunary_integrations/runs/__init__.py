"""Reading runs back: the Runs API clients, typed errors, and the Run → document mapper."""

from __future__ import annotations

from .client import COUNT_LIMIT, AsyncRunsClient, RunsClient
from .documents import Formatter, run_metadata, run_to_text
from .errors import (
    AuthenticationError,
    InvalidRequestError,
    LunaryAPIError,
    LunaryConnectionError,
    NotFoundError,
    RateLimitError,
    RunNotFoundError,
    ServerError,
)
from .fetch import acomplete_runs, complete_runs
from .filters import RunFilters
from .tree import RunNode, RunTree

__all__ = [
    "COUNT_LIMIT",
    "AsyncRunsClient",
    "AuthenticationError",
    "Formatter",
    "InvalidRequestError",
    "LunaryAPIError",
    "LunaryConnectionError",
    "NotFoundError",
    "RateLimitError",
    "RunFilters",
    "RunNode",
    "RunNotFoundError",
    "RunTree",
    "RunsClient",
    "ServerError",
    "acomplete_runs",
    "complete_runs",
    "run_metadata",
    "run_to_text",
]
