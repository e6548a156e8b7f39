"""Shared fakes and fixtures for the LlamaIndex tests (test_llama_index_*.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.llms import CustomLLM, MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

import lunary_integrations
from lunary_integrations.llama_index import instrument, uninstrument

DOCS = ("Paris is the capital of France.", "Berlin is the capital of Germany.")
USAGE = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}


class UsageLLM(CustomLLM):
    """Reports usage the OpenAI way (``raw['usage']`` and ``additional_kwargs``)."""

    model: str = "fake-model-1"
    temperature: float = 0.1
    max_tokens: int = 64

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, is_chat_model=True, num_output=64)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(
            message=ChatMessage(role="assistant", content="ok!"),
            raw={"model": self.model, "usage": dict(USAGE)},
            additional_kwargs=dict(USAGE),
        )

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def gen() -> ChatResponseGen:
            text = ""
            for i, delta in enumerate(("Hel", "lo", " world")):
                text += delta
                last = i == 2  # like OpenAI with stream_options: usage on the last chunk
                yield ChatResponse(
                    message=ChatMessage(role="assistant", content=text),
                    delta=delta,
                    raw={"usage": {"prompt_tokens": 5, "completion_tokens": 3}} if last else {},
                )

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="done", additional_kwargs=dict(USAGE))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text="done", delta="done")

        return gen()


class BoomLLM(UsageLLM):
    """Fails the call, or the stream after one chunk."""

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        raise ValueError("provider 500")

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def gen() -> ChatResponseGen:
            yield ChatResponse(message=ChatMessage(role="assistant", content="par"), delta="par")
            raise ConnectionError("stream cut")

        return gen()


@pytest.fixture
def li_settings() -> Iterator[None]:
    """MockLLM/MockEmbedding in ``Settings``; the previous values come back afterwards."""
    saved = (Settings._llm, Settings._embed_model, Settings._callback_manager)
    Settings.llm = MockLLM(max_tokens=4)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    try:
        yield
    finally:
        Settings._llm, Settings._embed_model, Settings._callback_manager = saved


@pytest.fixture
def instrumented(lunary_local: Any) -> Iterator[Any]:
    """``instrument()`` against the local collector; the dispatcher is restored afterwards."""
    root, llm_events = get_dispatcher(), get_dispatcher("llama_index.core.llms.callbacks")
    before = (list(root.span_handlers), list(llm_events.event_handlers))
    instrument()
    try:
        yield lunary_local
    finally:
        uninstrument()
        after = (list(root.span_handlers), list(llm_events.event_handlers))
        assert [id(h) for h in after[0]] == [id(h) for h in before[0]]
        assert [id(h) for h in after[1]] == [id(h) for h in before[1]]


def build_index() -> VectorStoreIndex:
    return VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])


def strip(value: Any) -> Any:
    """Drop the ``enrichments`` the server adds to every object."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k != "enrichments"}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def stored_runs(server: Any) -> list[dict[str, Any]]:
    lunary_integrations.flush()
    return [strip(r) for r in server.all_runs()]


def children(runs: list[dict[str, Any]], parent_id: str | None) -> list[dict[str, Any]]:
    return [r for r in runs if r["parentRunId"] == parent_id]


def descendants(runs: list[dict[str, Any]], root_id: str) -> list[dict[str, Any]]:
    out, todo = [], [root_id]
    while todo:
        kids = children(runs, todo.pop())
        out.extend(kids)
        todo.extend(k["id"] for k in kids)
    return out


def shape(runs: list[dict[str, Any]], run: dict[str, Any]) -> tuple[Any, ...]:
    """The tree below ``run`` as nested (type, sorted children) tuples: names ignored."""
    kids = sorted(shape(runs, k) for k in children(runs, run["id"]))
    return (run["type"], tuple(kids))


def one(runs: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in runs if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, [(r["type"], r["name"]) for r in runs])
    return found[0]
