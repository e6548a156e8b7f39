"""``RunsClient`` / ``AsyncRunsClient``: the Runs API (reads), with the project's private key.

What the real server does, and these clients account for (``lunary-protocol.md`` §2):

* pages count from 0 and a list reply has no ``total``: use :meth:`RunsClient.count`;
* ``count`` honours ``limit`` (default 50), so ``count`` sends a large one;
* with no filter at all the list holds llm runs only; any filter removes that default;
* with ``type="llm"`` the list cuts each run's content (last input message, 100 characters):
  :meth:`RunsClient.get` returns the full run;
* a malformed run id is a 500 on the server, so ids are checked here first.

429, 5xx and network errors are retried with capped exponential backoff and jitter,
honouring ``Retry-After``; other errors raise at once (see ``errors.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, overload
from uuid import UUID

import httpx
from pydantic import SecretStr, TypeAdapter
from typing_extensions import Self, Unpack

from ..config import resolve
from ..events import Run, RunsPage
from ..retry_policy import RETRYABLE_ERRORS, retryable_status, runs_policy
from .errors import LunaryConnectionError, RunNotFoundError, error_for
from .export import EXPORT_FORMATS, EXPORT_TYPES, ExportFormat, ExportParser
from .filters import (
    QueryParam,
    RunFilters,
    filter_params,
    page_params,
    query_string,
    run_id_of,
)
from .tree import RunTree

#: ``count`` sends this ``limit``: the server counts at most ``limit`` rows.
COUNT_LIMIT = 1_000_000_000
DEFAULT_PAGE_SIZE = 100

_MISSING_KEY = (
    "reading runs needs the project's private key: pass private_key=..., call "
    "configure(private_key=...) or set LUNARY_PRIVATE_KEY"
)
_RUN_ROWS = TypeAdapter(list[Run])
_COUNT = TypeAdapter(int)


def _export_params(format: str, filters: RunFilters) -> list[QueryParam]:
    kind = filters.get("type") or "llm"
    if kind not in EXPORT_TYPES:
        raise ValueError(f"export type must be one of {', '.join(EXPORT_TYPES)}, got {kind!r}")
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    rest = filters.copy()
    rest.pop("type", None)
    return [("type", str(kind)), ("exportFormat", format), *filter_params(rest)]


def _tree(reply: httpx.Response, run_id: str) -> RunTree:
    rows = _RUN_ROWS.validate_json(reply.content)
    if not any(row.id == run_id for row in rows):  # the server answers [] for an unknown id
        raise RunNotFoundError(run_id)
    return RunTree.from_rows(rows, run_id)


class _RunsAPI:
    """Settings, URLs and retry decisions shared by the sync and async clients."""

    def __init__(
        self,
        private_key: str | SecretStr | None,
        api_url: str | None,
        *,
        timeout: float | None,
        max_retries: int,
        backoff: float,
        max_backoff: float,
    ) -> None:
        if isinstance(private_key, SecretStr):
            private_key = private_key.get_secret_value()
        settings = resolve(private_key=private_key or None, api_url=api_url)
        if not settings.private_key:
            raise ValueError(_MISSING_KEY)
        self.api_url = settings.api_url.rstrip("/")
        self._key = SecretStr(settings.private_key)  # masked in any repr or debugger dump
        self._timeout = httpx.Timeout(settings.request_timeout if timeout is None else timeout)
        self._verify = settings.verify_tls
        self._retry = runs_policy(max_retries, backoff, max_backoff)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.api_url!r})"

    def _request(
        self, http: httpx.Client | httpx.AsyncClient, path: str, params: Sequence[QueryParam]
    ) -> httpx.Request:
        url = self.api_url + path + ("?" + query_string(params) if params else "")
        headers = {
            "Authorization": f"Bearer {self._key.get_secret_value()}",
            "Accept": "application/json",
        }
        return http.build_request("GET", url, headers=headers)

    def _give_up(self, attempt: int, exc: Exception, path: str) -> LunaryConnectionError:
        return LunaryConnectionError(
            f"{path}: {type(exc).__name__} after {attempt + 1} attempt(s): {exc}"
        )


class RunsClient(_RunsAPI):
    """Synchronous Runs API client. Thread-safe; use as a context manager or call ``close()``.

    ``private_key``/``api_url``: argument > ``configure(...)`` > ``LUNARY_PRIVATE_KEY`` /
    ``LUNARY_API_URL``. ``max_retries`` extra attempts for 429, 5xx and network errors, waiting
    ``backoff * 2**n`` seconds (jittered, at most ``max_backoff``, or what ``Retry-After``
    says). Pass ``http_client`` to reuse your own ``httpx.Client`` (it is not closed here).
    """

    def __init__(
        self,
        private_key: str | SecretStr | None = None,
        api_url: str | None = None,
        *,
        timeout: float | None = None,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            private_key,
            api_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=self._timeout, verify=self._verify)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(
        self,
        path: str,
        params: Sequence[QueryParam] = (),
        *,
        run_id: str | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        request = self._request(self._http, path, params)
        attempt = 0
        while True:
            try:
                response = self._http.send(request, stream=stream)
            except RETRYABLE_ERRORS as exc:
                if attempt >= self._retry.max_retries:
                    raise self._give_up(attempt, exc, path) from exc
                wait = self._retry.delay(attempt)
            else:
                if response.is_success:
                    return response
                if not retryable_status(response.status_code) or (
                    attempt >= self._retry.max_retries
                ):
                    response.read()
                    response.close()
                    raise error_for(response, run_id=run_id)
                wait = self._retry.delay(attempt, response.headers.get("retry-after"))
                response.close()
            attempt += 1
            time.sleep(wait)

    def list(
        self, *, limit: int | None = None, page: int | None = None, **filters: Unpack[RunFilters]
    ) -> RunsPage:
        """One page of runs (``page`` from 0; ``None`` = the server's defaults: 50 rows, page 0).

        Newest first unless ``sort_by``/``order`` say otherwise.
        """
        params = filter_params(filters) + page_params(limit, page)
        return RunsPage.model_validate_json(self._send("/v1/runs", params).content)

    def iter_runs(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, **filters: Unpack[RunFilters]
    ) -> Iterator[Run]:
        """Every matching run, fetching one page at a time until a short page."""
        page = 0
        while True:
            rows = self.list(limit=page_size, page=page, **filters).data
            yield from rows
            if len(rows) < page_size:
                return
            page += 1

    def count(self, *, limit: int | None = COUNT_LIMIT, **filters: Unpack[RunFilters]) -> int:
        """How many runs match (at most ``limit``: the server caps the count at its limit)."""
        params = filter_params(filters) + page_params(limit, None)
        return _COUNT.validate_json(self._send("/v1/runs/count", params).content)

    def get(self, run_id: str | UUID) -> Run:
        """One run with its full content. ``RunNotFoundError`` if there is none."""
        rid = run_id_of(run_id)
        return Run.model_validate_json(self._send(f"/v1/runs/{rid}", run_id=rid).content)

    def related(self, run_id: str | UUID) -> RunTree:
        """The run and all its descendants, as a tree (``.rows`` has the flat rows)."""
        rid = run_id_of(run_id)
        reply = self._send(f"/v1/runs/{rid}/related", run_id=rid)
        return _tree(reply, rid)

    @overload
    def export(
        self, format: Literal["jsonl"] = ..., **filters: Unpack[RunFilters]
    ) -> Iterator[Run]: ...
    @overload
    def export(
        self, format: Literal["csv"], **filters: Unpack[RunFilters]
    ) -> Iterator[dict[str, str]]: ...
    @overload
    def export(
        self, format: Literal["ojsonl"], **filters: Unpack[RunFilters]
    ) -> Iterator[dict[str, Any]]: ...
    def export(
        self, format: ExportFormat = "jsonl", **filters: Unpack[RunFilters]
    ) -> Iterator[Any]:
        """Stream an export: ``jsonl`` → :class:`Run` per line, ``csv`` → ``{column: cell}``
        per row (nested values are JSON text), ``ojsonl`` → ``{"messages": [...]}`` per line
        (OpenAI fine-tuning format). ``type`` is ``llm`` (default), ``trace`` or ``thread``.

        The request is sent on the first ``next()``; close the iterator to stop early.
        """
        params = _export_params(format, filters)
        parser = ExportParser(format)
        response = self._send("/v1/runs/export", params, stream=True)
        try:
            yield from parser.parse(response.iter_lines())
        finally:
            response.close()


class AsyncRunsClient(_RunsAPI):
    """The asyncio twin of :class:`RunsClient` (same arguments, ``httpx.AsyncClient``)."""

    def __init__(
        self,
        private_key: str | SecretStr | None = None,
        api_url: str | None = None,
        *,
        timeout: float | None = None,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            private_key,
            api_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self._timeout, verify=self._verify)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(
        self,
        path: str,
        params: Sequence[QueryParam] = (),
        *,
        run_id: str | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        request = self._request(self._http, path, params)
        attempt = 0
        while True:
            try:
                response = await self._http.send(request, stream=stream)
            except RETRYABLE_ERRORS as exc:
                if attempt >= self._retry.max_retries:
                    raise self._give_up(attempt, exc, path) from exc
                wait = self._retry.delay(attempt)
            else:
                if response.is_success:
                    return response
                if not retryable_status(response.status_code) or (
                    attempt >= self._retry.max_retries
                ):
                    await response.aread()
                    await response.aclose()
                    raise error_for(response, run_id=run_id)
                wait = self._retry.delay(attempt, response.headers.get("retry-after"))
                await response.aclose()
            attempt += 1
            await asyncio.sleep(wait)

    async def list(
        self, *, limit: int | None = None, page: int | None = None, **filters: Unpack[RunFilters]
    ) -> RunsPage:
        params = filter_params(filters) + page_params(limit, page)
        return RunsPage.model_validate_json((await self._send("/v1/runs", params)).content)

    async def iter_runs(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, **filters: Unpack[RunFilters]
    ) -> AsyncGenerator[Run, None]:
        page = 0
        while True:
            rows = (await self.list(limit=page_size, page=page, **filters)).data
            for run in rows:
                yield run
            if len(rows) < page_size:
                return
            page += 1

    async def count(self, *, limit: int | None = COUNT_LIMIT, **filters: Unpack[RunFilters]) -> int:
        params = filter_params(filters) + page_params(limit, None)
        return _COUNT.validate_json((await self._send("/v1/runs/count", params)).content)

    async def get(self, run_id: str | UUID) -> Run:
        rid = run_id_of(run_id)
        reply = await self._send(f"/v1/runs/{rid}", run_id=rid)
        return Run.model_validate_json(reply.content)

    async def related(self, run_id: str | UUID) -> RunTree:
        rid = run_id_of(run_id)
        reply = await self._send(f"/v1/runs/{rid}/related", run_id=rid)
        return _tree(reply, rid)

    async def export(
        self, format: ExportFormat = "jsonl", **filters: Unpack[RunFilters]
    ) -> AsyncGenerator[Any, None]:
        """Like :meth:`RunsClient.export`, as an async iterator."""
        params = _export_params(format, filters)
        parser = ExportParser(format)
        response = await self._send("/v1/runs/export", params, stream=True)
        try:
            async for item in parser.aparse(response.aiter_lines()):
                yield item
        finally:
            await response.aclose()


__all__ = ["COUNT_LIMIT", "AsyncRunsClient", "RunsClient", "run_id_of"]
