"""One HTTP POST of one batch, classified into what the worker should do next."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json

import httpx

from .._version import __version__
from ..config import Settings
from ..retry_policy import RETRY_STATUSES, parse_retry_after
from .encode import GZIP_MIN_BYTES, compress

#: The server's answer to a start it already stored: on a re-sent batch that means delivered.
ALREADY_EXISTS = "Run with this ID already exists in the database."


class Verdict(enum.Enum):
    DELIVERED = "delivered"  # 2xx: read the per-event results
    RETRY = "retry"  # network trouble, 408, 429, 502-504: the server may come back
    SERVER_ERROR = "server_error"  # other 5xx: retried a bounded number of times, then split
    TOO_LARGE = "too_large"  # 413: split the batch
    REJECTED = "rejected"  # 400/422: this batch's content is refused: split to find the bad event
    UNAUTHORIZED = "unauthorized"  # 401/402/403/404: every event would fail the same way


@dataclasses.dataclass
class Outcome:
    verdict: Verdict
    status: int | None = None
    #: Per-event results of a delivered batch (``{"id", "success", "error"}``), in server order.
    results: list[dict[str, object]] = dataclasses.field(default_factory=list)
    retry_after: float | None = None
    detail: str = ""


_AUTH_STATUSES = {401, 402, 403, 404}


class Transport:
    """Keeps one keep-alive ``httpx.Client``; never raises from :meth:`post`."""

    def __init__(self, settings: Settings) -> None:
        self._url = settings.ingest_url
        self._compress = settings.compress
        key = settings.public_key or settings.private_key or ""
        self._client = httpx.Client(
            timeout=httpx.Timeout(
                settings.request_timeout, connect=min(5.0, settings.request_timeout)
            ),
            verify=settings.verify_tls,
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "User-Agent": f"lunary-integrations/{__version__}",
            },
            follow_redirects=False,
        )

    def post(self, body: bytes) -> Outcome:
        headers = {}
        if self._compress and len(body) >= GZIP_MIN_BYTES:
            body = compress(body)
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:  # connect, read, timeout, reset, protocol errors
            return Outcome(Verdict.RETRY, detail=type(exc).__name__)
        return classify(response.status_code, response.content, response.headers.get("retry-after"))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must never raise into shutdown
            self._client.close()


def classify(status: int, content: bytes, retry_after: str | None) -> Outcome:
    """Pure: an HTTP answer -> what to do with the batch."""
    if 200 <= status < 300:
        return Outcome(Verdict.DELIVERED, status, results=_results(content))
    detail = _message(content)
    if status in RETRY_STATUSES:
        return Outcome(
            Verdict.RETRY, status, retry_after=parse_retry_after(retry_after), detail=detail
        )
    if status == 413:
        return Outcome(Verdict.TOO_LARGE, status, detail=detail)
    if status in _AUTH_STATUSES:
        return Outcome(Verdict.UNAUTHORIZED, status, detail=detail)
    if status >= 500:
        return Outcome(
            Verdict.SERVER_ERROR, status, retry_after=parse_retry_after(retry_after), detail=detail
        )
    return Outcome(Verdict.REJECTED, status, detail=detail)


def _results(content: bytes) -> list[dict[str, object]]:
    try:
        data = json.loads(content)
    except ValueError:
        return []
    results = data.get("results") if isinstance(data, dict) else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def _message(content: bytes) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        return content[:200].decode("utf-8", "replace")
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])[:200]
    return str(data)[:200]
