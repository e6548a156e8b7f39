"""``LunaryRunsRetriever``: past Lunary runs as LangChain ``Document``s.

    retriever = LunaryRunsRetriever(type="llm", tags=["prod"], k=20)
    docs = retriever.invoke("refund policy")   # the query is the server's `search`

The query is a case-insensitive substring match on the run's input or output (the server has
no semantic search); the configured filters and ``k`` apply. ``tags`` and ``metadata`` are
*filters on the stored runs* (they are also LangChain's tracing tags/metadata of this
retriever's own invocation). Document ids are run ids; ``page_content`` is the formatter's
text (``run_to_text`` by default) and ``metadata`` is ``run_metadata``. Runs are read newest
first unless ``sort_by``/``order`` say otherwise. Reads can lag writes by a moment after
``flush()``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, PrivateAttr, SecretStr

from ..events import Run
from ..runs.client import AsyncRunsClient, RunsClient
from ..runs.documents import run_metadata, run_to_text
from ..runs.fetch import acomplete_runs, complete_runs
from ..runs.filters import RunFilters, filter_params


class LunaryRunsRetriever(BaseRetriever):
    """Retrieve stored Lunary runs matching the query (see the module docstring)."""

    # connection: argument > configure(...) > LUNARY_PRIVATE_KEY / LUNARY_API_URL
    private_key: SecretStr | None = Field(default=None, repr=False)
    api_url: str | None = None
    timeout: float | None = None
    max_retries: int = 3

    # filters (see ``RunFilters``)
    type: str | list[str] | None = None
    models: list[str] | None = None
    tags: list[str] | None = None
    status: str | None = None
    user_ids: list[int] | None = None
    metadata: dict[str, Any] | None = None
    user_props: dict[str, Any] | None = None
    feedback: str | dict[str, Any] | None = None
    parent_run_id: str | None = None
    start_time: datetime | date | str | None = None
    end_time: datetime | date | str | None = None
    min_duration: float | timedelta | None = None
    max_duration: float | timedelta | None = None
    min_cost: float | None = None
    max_cost: float | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None
    sort_by: str | None = None
    order: Literal["asc", "desc"] | None = None

    k: int = Field(default=10, gt=0)
    #: ``type="llm"`` lists are truncated by the server: re-read those runs in full.
    fetch_full: bool = True
    #: Concurrent ``GET /v1/runs/{id}`` calls while fetching full runs.
    max_concurrency: int = Field(default=8, gt=0)
    formatter: Callable[[Run], str] = Field(default=run_to_text, repr=False)

    _client: RunsClient | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        filter_params(self._filters(""))  # a bad filter is a ValueError now, not at invoke
        self._client = RunsClient(**self._client_args())  # so is a missing private key

    def _client_args(self) -> dict[str, Any]:
        return {
            "private_key": self.private_key,
            "api_url": self.api_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }

    def _filters(self, query: str) -> RunFilters:
        return RunFilters(
            type=self.type,
            search=query or None,
            models=self.models,
            tags=self.tags,
            status=self.status,
            user_ids=self.user_ids,
            metadata=self.metadata,
            user_props=self.user_props,
            feedback=self.feedback,
            parent_run_id=self.parent_run_id,
            start_time=self.start_time,
            end_time=self.end_time,
            min_duration=self.min_duration,
            max_duration=self.max_duration,
            min_cost=self.min_cost,
            max_cost=self.max_cost,
            min_tokens=self.min_tokens,
            max_tokens=self.max_tokens,
            sort_by=self.sort_by,
            order=self.order,
        )

    def _document(self, run: Run) -> Document:
        return Document(page_content=self.formatter(run), metadata=run_metadata(run), id=run.id)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        client = self._client or RunsClient(**self._client_args())
        filters = self._filters(query)
        runs = client.list(limit=self.k, page=0, **filters).data
        if self.fetch_full:
            runs = complete_runs(client, runs, filters, max_concurrency=self.max_concurrency)
        return [self._document(run) for run in runs]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        # One async client per call: an httpx.AsyncClient belongs to the loop that made it.
        async with AsyncRunsClient(**self._client_args()) as client:
            filters = self._filters(query)
            runs = (await client.list(limit=self.k, page=0, **filters)).data
            if self.fetch_full:
                runs = await acomplete_runs(
                    client, runs, filters, max_concurrency=self.max_concurrency
                )
        return [self._document(run) for run in runs]


__all__ = ["LunaryRunsRetriever"]
