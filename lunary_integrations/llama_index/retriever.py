"""Past Lunary runs in LlamaIndex: ``LunaryRunsRetriever`` (query time) and
``LunaryRunsReader`` (bulk loading, e.g. into a ``VectorStoreIndex``).

    retriever = LunaryRunsRetriever(type="llm", tags=["prod"], k=20)
    engine = RetrieverQueryEngine.from_args(retriever, llm=llm)

    docs = LunaryRunsReader().load_data(type="llm", start_time="2026-11-01")
    index = VectorStoreIndex.from_documents(docs)

The retriever sends the query as the server's ``search`` (a case-insensitive substring match
on input or output, not a semantic one). **Scores are ranks, not relevance**: the ``i``-th
run in the server's order (newest first unless ``sort_by``/``order`` say otherwise) scores
``1 / (i + 1)``. Node and document ids are run ids; text is the formatter's (``run_to_text``
by default), metadata is ``run_metadata``; ids and params are kept out of the text that is
embedded or shown to the LLM.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import aclosing
from itertools import islice
from typing import Any

from llama_index.core.callbacks import CallbackManager
from llama_index.core.readers.base import BaseReader
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import Document, NodeWithScore, QueryBundle, TextNode
from pydantic import SecretStr
from typing_extensions import Unpack

from ..events import Run
from ..runs.client import DEFAULT_PAGE_SIZE, AsyncRunsClient, RunsClient
from ..runs.documents import Formatter, run_metadata, run_to_text
from ..runs.fetch import acomplete_runs, complete_runs
from ..runs.filters import RunFilters, filter_params

#: Metadata that helps filtering but not embedding or answering.
EXCLUDED_METADATA = ["id", "trace_id", "parent_run_id", "params"]


class _Connection:
    """Client settings kept for creating clients (sync once, async per call)."""

    def __init__(
        self,
        private_key: str | SecretStr | None,
        api_url: str | None,
        timeout: float | None,
        max_retries: int,
    ) -> None:
        secret = SecretStr(private_key) if isinstance(private_key, str) else private_key
        self.args: dict[str, Any] = {
            "private_key": secret,
            "api_url": api_url,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        self.client = RunsClient(**self.args)  # a missing key is a ValueError here

    def async_client(self) -> AsyncRunsClient:
        # An httpx.AsyncClient belongs to the event loop that made it: one per call.
        return AsyncRunsClient(**self.args)


def _node_kwargs(run: Run, formatter: Formatter) -> dict[str, Any]:
    return {
        "id_": run.id,
        "text": formatter(run),
        "metadata": run_metadata(run),
        "excluded_embed_metadata_keys": list(EXCLUDED_METADATA),
        "excluded_llm_metadata_keys": list(EXCLUDED_METADATA),
    }


class LunaryRunsRetriever(BaseRetriever):
    """Stored runs matching the query as ``NodeWithScore(TextNode)`` (module docstring)."""

    def __init__(
        self,
        private_key: str | SecretStr | None = None,
        api_url: str | None = None,
        *,
        k: int = 10,
        fetch_full: bool = True,
        max_concurrency: int = 8,
        formatter: Formatter = run_to_text,
        timeout: float | None = None,
        max_retries: int = 3,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **filters: Unpack[RunFilters],
    ) -> None:
        if k <= 0 or max_concurrency <= 0:
            raise ValueError("k and max_concurrency must be positive")
        filter_params(filters)  # a bad filter is a ValueError now, not at query time
        self._connection = _Connection(private_key, api_url, timeout, max_retries)
        self._filters = filters
        self._k = k
        self._fetch_full = fetch_full
        self._max_concurrency = max_concurrency
        self._formatter = formatter
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def __repr__(self) -> str:
        return f"LunaryRunsRetriever(k={self._k}, filters={self._filters!r})"

    def _query_filters(self, query_bundle: QueryBundle) -> RunFilters:
        filters = self._filters.copy()
        if query_bundle.query_str:
            filters["search"] = query_bundle.query_str
        return filters

    def _nodes(self, runs: Sequence[Run]) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=TextNode(**_node_kwargs(run, self._formatter)), score=1 / (i + 1))
            for i, run in enumerate(runs)
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        client = self._connection.client
        filters = self._query_filters(query_bundle)
        runs = client.list(limit=self._k, page=0, **filters).data
        if self._fetch_full:
            runs = complete_runs(client, runs, filters, max_concurrency=self._max_concurrency)
        return self._nodes(runs)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        filters = self._query_filters(query_bundle)
        async with self._connection.async_client() as client:
            runs = (await client.list(limit=self._k, page=0, **filters)).data
            if self._fetch_full:
                runs = await acomplete_runs(
                    client, runs, filters, max_concurrency=self._max_concurrency
                )
        return self._nodes(runs)


class LunaryRunsReader(BaseReader):
    """Stored runs as LlamaIndex ``Document``s, paging lazily through the Runs API.

    ``lazy_load_data(limit=None, **filters)`` takes the ``RunFilters`` keywords; with no filter
    at all the server lists llm runs only. ``type="llm"`` runs are re-read in full (the list
    truncates them) unless ``fetch_full=False``.
    """

    def __init__(
        self,
        private_key: str | SecretStr | None = None,
        api_url: str | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        fetch_full: bool = True,
        max_concurrency: int = 8,
        formatter: Formatter = run_to_text,
        timeout: float | None = None,
        max_retries: int = 3,
    ) -> None:
        if page_size <= 0 or max_concurrency <= 0:
            raise ValueError("page_size and max_concurrency must be positive")
        self._connection = _Connection(private_key, api_url, timeout, max_retries)
        self._page_size = page_size
        self._fetch_full = fetch_full
        self._max_concurrency = max_concurrency
        self._formatter = formatter

    def __repr__(self) -> str:
        return f"LunaryRunsReader(page_size={self._page_size}, fetch_full={self._fetch_full})"

    def _document(self, run: Run) -> Document:
        return Document(**_node_kwargs(run, self._formatter))

    def lazy_load_data(
        self, *, limit: int | None = None, **filters: Unpack[RunFilters]
    ) -> Iterator[Document]:
        """One ``Document`` per matching run (at most ``limit``), a page at a time."""
        filter_params(filters)
        client = self._connection.client
        runs = islice(client.iter_runs(page_size=self._page_size, **filters), limit)
        while page := list(islice(runs, self._page_size)):
            if self._fetch_full:
                page = complete_runs(client, page, filters, max_concurrency=self._max_concurrency)
            yield from map(self._document, page)

    def load_data(
        self, *, limit: int | None = None, **filters: Unpack[RunFilters]
    ) -> list[Document]:
        return list(self.lazy_load_data(limit=limit, **filters))

    async def aload_data(
        self, *, limit: int | None = None, **filters: Unpack[RunFilters]
    ) -> list[Document]:
        """Native async: pages through ``AsyncRunsClient``."""
        filter_params(filters)
        runs: list[Run] = []
        async with self._connection.async_client() as client:
            async with aclosing(client.iter_runs(page_size=self._page_size, **filters)) as pages:
                async for run in pages:
                    if limit is not None and len(runs) >= limit:
                        break
                    runs.append(run)
            if self._fetch_full:
                runs = await acomplete_runs(
                    client, runs, filters, max_concurrency=self._max_concurrency
                )
        return [self._document(run) for run in runs]


__all__ = ["EXCLUDED_METADATA", "LunaryRunsReader", "LunaryRunsRetriever"]
