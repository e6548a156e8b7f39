"""Shared pieces of the reliability, privacy, hostile-input and concurrency tests: a LangChain
handler and a LlamaIndex instrumentation pointed at a given server with test-friendly timings,
and checks on what a ``FaultServer`` stored."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import Runnable
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.llms import MockLLM

from lunary_integrations.ingest import get_client
from lunary_integrations.ingest.client import IngestClient
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.llama_index import instrument, uninstrument

from .fault_server import FaultServer
from .lc_helpers import prompt_model_parser

#: A recognisable key: the secrets tests grep for it.
KEY = "pk-live-7f3c9a1e-SECRET-do-not-log"
FAST = {"flush_interval": 0.01, "max_backoff": 0.05, "request_timeout": 1.0}


def lc_handler(url: str, **overrides: Any) -> LunaryCallbackHandler:
    options: dict[str, Any] = {"public_key": KEY, "api_url": url, **FAST}
    options.update(overrides)
    return LunaryCallbackHandler(**options)


def client_of(handler: LunaryCallbackHandler) -> IngestClient:
    client = handler.tracer.client
    assert isinstance(client, IngestClient)
    return client


def run_lc_chain(
    handler: LunaryCallbackHandler, i: int = 0, chain: Runnable[Any, Any] | None = None
) -> str:
    """``prompt | model | parser`` (4 runs) with a known root id; returns the root id."""
    root = uuid.uuid4()
    out = (chain or prompt_model_parser()).invoke(
        {"q": f"question {i}"}, config={"callbacks": [handler], "run_id": root}
    )
    assert out == "hello there friend"
    return str(root)


@contextmanager
def li_instrumented(url: str, **overrides: Any) -> Iterator[VectorStoreIndex]:
    """``instrument()`` against ``url`` with MockLLM/MockEmbedding; yields an index built
    before instrumenting (so only the queries are traced). Everything is restored after."""
    saved = (Settings._llm, Settings._embed_model, Settings._callback_manager)
    root = get_dispatcher()
    before = (list(root.span_handlers), list(root.event_handlers))
    Settings.llm = MockLLM(max_tokens=4)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    index = VectorStoreIndex.from_documents(
        [Document(text="Paris is the capital of France."), Document(text="Berlin is in Germany.")]
    )
    options: dict[str, Any] = {"public_key": KEY, "api_url": url, **FAST}
    options.update(overrides)
    instrument(**options)
    try:
        yield index
    finally:
        uninstrument()
        root.span_handlers[:], root.event_handlers[:] = before
        Settings._llm, Settings._embed_model, Settings._callback_manager = saved


def li_client(url: str) -> IngestClient:
    """The shared client ``instrument()`` sends through (one per url and key)."""
    from lunary_integrations.config import resolve

    client = get_client(resolve(public_key=KEY, api_url=url, **FAST))
    assert isinstance(client, IngestClient)
    return client


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """A bounded poll (not a timing assumption): True as soon as ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def assert_complete_trees(server: FaultServer, roots: list[str], runs_per_root: int) -> None:
    """Every root stored once with its whole tree; every run ended exactly once (an end is
    re-sent only when a timed-out request was processed anyway, so at most twice), and
    every parent is a stored run of the same tree."""
    runs = server.runs
    assert len(runs) == len(roots) * runs_per_root, (len(runs), len(roots))
    for rid in roots:
        assert rid in runs and runs[rid].get("parentRunId") is None
    for run_id, run in runs.items():
        assert run["status"] == "success", (run_id, run)
        assert run.get("ends", 0) >= 1
        parent = run.get("parentRunId")
        assert parent is None or parent in runs
    starts = [e["runId"] for e in server.events if e["event"] == "start"]
    assert set(starts) == set(runs)  # nothing stored that was not started, nothing twice
