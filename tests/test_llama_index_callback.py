"""LunaryCallbackHandler on LlamaIndex's legacy CallbackManager, through the local collector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import llama_index.core
import pytest
from llama_index.core import Settings
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.callbacks import CallbackManager, CBEventType
from llama_index.core.llms import MockLLM

from lunary_integrations.llama_index import LunaryCallbackHandler, instrument, uninstrument

from .llama_index_support import (
    BoomLLM,
    UsageLLM,
    build_index,
    children,
    descendants,
    li_settings,
    one,
    shape,
    stored_runs,
)

__all__ = ["li_settings"]

QUESTION = "What is the capital of France?"


@pytest.fixture
def legacy(lunary_local: Any, li_settings: None) -> Iterator[LunaryCallbackHandler]:
    handler = LunaryCallbackHandler()
    saved = Settings._callback_manager
    Settings.callback_manager = CallbackManager([handler])
    try:
        yield handler
    finally:
        Settings._callback_manager = saved


def test_query_engine_same_shape_as_instrumentation(
    legacy: LunaryCallbackHandler, lunary_local: Any
) -> None:
    engine = build_index().as_query_engine(similarity_top_k=1)
    answer = engine.query(QUESTION)
    runs = stored_runs(lunary_local)

    # Index construction (chunking, node parsing, embedding) is not sent.
    [root] = children(runs, None)
    assert root["type"] == "chain" and root["name"] == "query"
    assert root["input"] == QUESTION and root["output"] == str(answer)
    retriever = one(children(runs, root["id"]), type="retriever")
    [node] = retriever["output"]
    assert retriever["input"] == QUESTION and node["text"] and node["id"]
    llm = one(descendants(runs, root["id"]), type="llm")
    assert llm["name"] == "MockLLM" and QUESTION in llm["input"][0]["content"]
    assert llm["output"] == {"role": "assistant", "content": "text text text text"}
    legacy_shape = shape(runs, root)

    # The same query through instrument() (legacy handler removed) gives the same tree.
    Settings.callback_manager = CallbackManager([])
    instrument()
    try:
        build_index().as_query_engine(similarity_top_k=1).query(QUESTION)
    finally:
        uninstrument()
    runs = stored_runs(lunary_local)
    instrumented_root = one(runs, name="RetrieverQueryEngine.query")
    assert shape(runs, instrumented_root) == legacy_shape
    assert legacy_shape == ("chain", (("chain", (("llm", ()),)), ("retriever", ())))


def test_chat_usage_and_params(lunary_local: Any) -> None:
    llm = UsageLLM(callback_manager=CallbackManager([LunaryCallbackHandler()]))
    llm.chat([ChatMessage(content="hi")], temperature=0.9)
    [run] = stored_runs(lunary_local)
    assert run["type"] == "llm" and run["name"] == "fake-model-1" and run["parentRunId"] is None
    assert run["input"] == [{"role": "user", "content": "hi"}]
    assert run["output"] == {"role": "assistant", "content": "ok!"}
    assert run["tokens"]["prompt"] == 9 and run["tokens"]["completion"] == 2
    assert run["params"] == {"temperature": 0.9}


def test_stream_and_errors(lunary_local: Any) -> None:
    manager = CallbackManager([LunaryCallbackHandler()])
    stream = UsageLLM(callback_manager=manager).stream_chat([ChatMessage(content="x")])
    assert [c.delta for c in stream] == ["Hel", "lo", " world"]
    with pytest.raises(ValueError):
        BoomLLM(callback_manager=manager).chat([ChatMessage(content="x")])
    with pytest.raises(ConnectionError):
        list(BoomLLM(callback_manager=manager).stream_chat([ChatMessage(content="x")]))
    ok, failed, cut = stored_runs(lunary_local)
    assert ok["output"]["content"] == "Hello world" and ok["tokens"]["completion"] == 3
    assert failed["status"] == "error" and failed["error"]["message"] == "provider 500"
    assert cut["status"] == "error" and cut["error"]["message"] == "stream cut"


def test_global_handler_reaches_managers_created_afterwards(lunary_local: Any) -> None:
    saved = llama_index.core.global_handler
    llama_index.core.global_handler = LunaryCallbackHandler()
    try:
        MockLLM(max_tokens=2, callback_manager=CallbackManager()).complete("hello")
    finally:
        llama_index.core.global_handler = saved
    [run] = stored_runs(lunary_local)
    assert run["type"] == "llm" and run["output"]["content"] == "text text"


def test_ignored_event_types_and_all_events(lunary_local: Any) -> None:
    handler = LunaryCallbackHandler(
        event_starts_to_ignore=[CBEventType.LLM], event_ends_to_ignore=[CBEventType.LLM]
    )
    assert list(handler.event_starts_to_ignore) == [CBEventType.LLM]
    UsageLLM(callback_manager=CallbackManager([handler])).chat([ChatMessage(content="x")])
    assert stored_runs(lunary_local) == []

    every = LunaryCallbackHandler(all_events=True)
    every.on_event_start(CBEventType.TEMPLATING, {"template": "T {x}"}, event_id="e1")
    every.on_event_end(CBEventType.TEMPLATING, {}, event_id="e1")
    [run] = stored_runs(lunary_local)
    assert run["type"] == "chain" and run["name"] == "templating"
    assert run["input"] == {"template": "T {x}"} and run["status"] == "success"


def test_hidden_events_reparent_children(lunary_local: Any) -> None:
    h = LunaryCallbackHandler()
    h.on_event_start(CBEventType.QUERY, {"query_str": "q"}, event_id="q1", parent_id="root")
    h.on_event_start(CBEventType.SUB_QUESTION, {}, event_id="s1", parent_id="q1")
    h.on_event_start(CBEventType.RETRIEVE, {"query_str": "sub"}, event_id="r1", parent_id="s1")
    h.on_event_end(CBEventType.RETRIEVE, {"nodes": []}, event_id="r1")
    h.on_event_end(CBEventType.SUB_QUESTION, {}, event_id="s1")
    h.on_event_start(
        CBEventType.FUNCTION_CALL,
        {"function_call": '{"a": 1}', "tool": _Named("calc")},
        event_id="t1",
        parent_id="q1",
    )
    h.on_event_end(CBEventType.FUNCTION_CALL, {"function_call_response": "2"}, event_id="t1")
    h.on_event_end(CBEventType.QUERY, {"response": "done"}, event_id="q1")
    runs = stored_runs(lunary_local)
    root = one(runs, type="chain")
    assert [(r["type"], r["name"]) for r in children(runs, root["id"])] == [
        ("retriever", "retrieve"),
        ("tool", "calc"),
    ]
    tool = one(runs, type="tool")
    assert tool["input"] == {"a": 1} and tool["output"] == "2"
    assert root["output"] == "done"
    # Ids are UUIDs derived from the event ids: stable, 36 characters.
    assert all(len(r["id"]) == 36 for r in runs)


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name
