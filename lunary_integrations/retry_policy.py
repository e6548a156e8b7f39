"""When to retry an HTTP call to Lunary, and how long to wait: the one policy of the package.

The ingest worker (``ingest/``) and the Runs API clients (``runs/``) both read it. A leaf
module (no import from the package), so ``runs/`` uses it without loading the ingest worker.

* Which answers are worth another attempt: :data:`RETRY_STATUSES` (the server or a proxy
  may come back), any other 5xx (a server error, maybe caused by the request itself: the
  ingest worker bounds those, see ``ingest/client.py``), and the network failures of
  :data:`RETRYABLE_ERRORS`.
* How long to wait: :class:`RetryPolicy` — capped exponential backoff with "equal jitter"
  (at least half of each step, so waits keep growing under load; the jitter spreads the
  clients of one sick server), or the server's ``Retry-After`` when it sends one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from time import time

import httpx

#: Answers saying "not now": request timeout, rate limit, bad gateway, unavailable, gateway
#: timeout. Retried without counting against a batch (ingest) or up to ``max_retries`` (runs).
RETRY_STATUSES: frozenset[int] = frozenset({408, 429, 502, 503, 504})

#: Network failures worth another attempt (a malformed URL or a TLS setup error is not).
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)

#: ``2**n`` grows no further past this: a long outage keeps retrying at the cap.
_MAX_DOUBLINGS = 32


def retryable_status(status: int) -> bool:
    """A status worth another attempt: one of :data:`RETRY_STATUSES` or any 5xx."""
    return status in RETRY_STATUSES or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000": UTC, not the machine's local time
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, when.timestamp() - time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts; the wait before retry ``n`` (from 0) is drawn from
    ``[step / 2, step]`` with ``step = min(max_backoff, backoff * 2**n)``. A ``Retry-After``
    is honoured up to ``retry_after_cap`` (default: ``max_backoff``)."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    retry_after_cap: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {self.max_retries}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff and max_backoff must be non-negative numbers of seconds")

    def delay(self, attempt: int, retry_after: str | float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        hinted = parse_retry_after(retry_after) if isinstance(retry_after, str) else retry_after
        if hinted is not None:
            cap = self.max_backoff if self.retry_after_cap is None else self.retry_after_cap
            return min(hinted, cap)
        step = min(self.max_backoff, self.backoff * 2 ** min(attempt, _MAX_DOUBLINGS))
        return float(step / 2 + random.uniform(0, step / 2))


def runs_policy(max_retries: int, backoff: float, max_backoff: float) -> RetryPolicy:
    """The Runs API clients': a caller is waiting, so even ``Retry-After`` is capped."""
    return RetryPolicy(max_retries, backoff, max_backoff)


def ingest_policy(max_retries: int, max_backoff: float) -> RetryPolicy:
    """The ingest worker's: nobody waits on it, so a server's ``Retry-After`` is honoured up
    to a minute even when ``max_backoff`` is shorter (the server asked for that pause)."""
    return RetryPolicy(max_retries, 0.5, max_backoff, retry_after_cap=max(max_backoff, 60.0))


__all__ = [
    "RETRYABLE_ERRORS",
    "RETRY_STATUSES",
    "RetryPolicy",
    "ingest_policy",
    "parse_retry_after",
    "retryable_status",
    "runs_policy",
]
