"""instrument(): LlamaIndex spans and events -> Lunary runs, through real HTTP to the local
collector, asserting the stored runs."""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    LLMMetadata,
)
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.span_handlers import NullSpanHandler, SimpleSpanHandler
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context, Event, StartEvent, StopEvent, Workflow, step

from lunary_integrations.llama_index import instrument, uninstrument
from lunary_integrations.llama_index.instrumentation import (
    LunaryEventHandler,
    LunarySpanHandler,
    is_instrumented,
)

from .llama_index_support import (
    DOCS,
    USAGE,
    BoomLLM,
    UsageLLM,
    build_index,
    children,
    descendants,
    instrumented,
    li_settings,
    one,
    shape,
    stored_runs,
)

__all__ = ["instrumented", "li_settings"]  # fixtures used by name

QUESTION = "What is the capital of France?"


# --------------------------------------------------------------------------- query engine


def test_query_engine_tree(instrumented: Any, li_settings: None) -> None:
    index = build_index()
    answer = index.as_query_engine(similarity_top_k=1).query(QUESTION)

    runs = stored_runs(instrumented)
    root = one(runs, name="RetrieverQueryEngine.query")
    assert root["type"] == "chain" and root["parentRunId"] is None
    assert root["status"] == "success"
    assert root["input"] == QUESTION and root["output"] == str(answer)

    kids = children(runs, root["id"])
    retriever = one(kids, type="retriever")
    assert retriever["name"] == "VectorIndexRetriever.retrieve"
    assert retriever["input"] == QUESTION
    [node] = retriever["output"]
    assert node["text"] in DOCS and isinstance(node["score"], float) and node["id"]

    below = descendants(runs, root["id"])
    llm = one(below, type="llm")
    assert llm["name"] == "MockLLM"  # model_name is 'unknown': the class name instead
    assert llm["input"][0]["role"] == "user" and node["text"] in llm["input"][0]["content"]
    assert QUESTION in llm["input"][0]["content"]
    assert llm["output"] == {"role": "assistant", "content": "text text text text"}
    assert llm["params"] == {"maxTokens": 4}  # the server camel-cases keys
    assert llm["status"] == "success"
    # Noise control: only the program's structure is sent.
    assert sorted((r["type"], r["name"]) for r in [root, *below]) == [
        ("chain", "CompactAndRefine.synthesize"),
        ("chain", "RetrieverQueryEngine.query"),
        ("llm", "MockLLM"),
        ("retriever", "VectorIndexRetriever.retrieve"),
    ]
    assert shape(runs, root) == ("chain", (("chain", (("llm", ()),)), ("retriever", ())))
    # Building the index sent one embedding batch, nothing else at the top level.
    assert sorted((r["type"], r["name"]) for r in children(runs, None)) == [
        ("chain", "RetrieverQueryEngine.query"),
        ("embed", "MockEmbedding"),
    ]


def test_all_spans_sends_the_plumbing(lunary_local: Any, li_settings: None) -> None:
    index = build_index()
    instrument(all_spans=True)
    try:
        index.as_query_engine().query(QUESTION)
    finally:
        uninstrument()
    names = {r["name"] for r in stored_runs(lunary_local)}
    assert {"RetrieverQueryEngine._query", "DefaultRefineProgram.__call__"} <= names
    assert {"MockEmbedding.get_query_embedding", "MockLLM.predict"} <= names


async def test_aquery_20_concurrent_tasks(instrumented: Any, li_settings: None) -> None:
    engine = build_index().as_query_engine(similarity_top_k=1)
    questions = [f"question {i}" for i in range(20)]
    answers = await asyncio.gather(*(engine.aquery(q) for q in questions))
    assert len(answers) == 20

    runs = stored_runs(instrumented)
    roots = [r for r in runs if r["name"] == "RetrieverQueryEngine.aquery"]
    assert sorted(r["input"] for r in roots) == sorted(questions)
    for root in roots:
        assert root["parentRunId"] is None and root["status"] == "success"
        below = descendants(runs, root["id"])
        retriever = one(below, type="retriever")
        assert retriever["input"] == root["input"]  # its own question: trees are not mixed
        llm = one(below, type="llm")
        assert root["input"] in llm["input"][0]["content"]
        assert llm["status"] == "success"
    assert len([r for r in runs if r["type"] == "llm"]) == 20


def test_threads_keep_their_parent(instrumented: Any, li_settings: None) -> None:
    engine = build_index().as_query_engine(similarity_top_k=1)
    dispatcher = get_dispatcher("tests.user_code")

    @dispatcher.span  # type: ignore[misc]
    def ask_in_threads(questions: list[str]) -> list[str]:
        # Work handed to threads with the caller's context keeps its parent span.
        with ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, engine.query, q) for q in questions
            ]
            return [str(f.result()) for f in futures]

    ask_in_threads(["a?", "b?", "c?", "d?"])
    runs = stored_runs(instrumented)
    outer = one(runs, type="chain", name="test_threads_keep_their_parent.<locals>.ask_in_threads")
    assert outer["input"] == ["a?", "b?", "c?", "d?"]
    queries = children(runs, outer["id"])
    assert sorted(q["input"] for q in queries) == ["a?", "b?", "c?", "d?"]
    for q in queries:
        assert one(descendants(runs, q["id"]), type="retriever")["input"] == q["input"]


def test_arguments_and_results_are_sent_as_they_were(instrumented: Any) -> None:
    # Runs are built on the ingest worker, later: a span's arguments mutated by its own body,
    # and a result changed after it returned, must still be sent as they were at the time.
    dispatcher = get_dispatcher("tests.user_code")
    kept: list[list[str]] = []

    @dispatcher.span  # type: ignore[misc]
    def plan(steps: list[str], notes: dict[str, int]) -> list[str]:
        steps.append("added inside the span")
        notes["n"] = 2
        result = ["done"]
        kept.append(result)
        return result

    steps, notes = ["first"], {"n": 1}
    plan(steps, notes)
    kept[0].append("changed after the span")
    runs = stored_runs(instrumented)
    run = one(runs, name="test_arguments_and_results_are_sent_as_they_were.<locals>.plan")
    assert run["input"] == {"steps": ["first"], "notes": {"n": 1}}
    assert run["output"] == ["done"]


# --------------------------------------------------------------------------- llm


def test_chat_usage_model_and_params(instrumented: Any) -> None:
    llm = UsageLLM()
    llm.chat([ChatMessage(role="system", content="Be brief."), ChatMessage(content="hi")],
             temperature=0.9, api_key="sk-secret")  # fmt: skip

    [run] = stored_runs(instrumented)
    assert run["type"] == "llm" and run["name"] == "fake-model-1"
    assert run["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert run["output"] == {"role": "assistant", "content": "ok!"}
    assert run["tokens"]["prompt"] == 9 and run["tokens"]["completion"] == 2
    assert run["params"] == {"temperature": 0.9, "maxTokens": 64}  # per call wins; no secret
    assert run["status"] == "success" and run["parentRunId"] is None


def test_stream_chat_assembled_with_usage(instrumented: Any) -> None:
    llm = UsageLLM()
    stream = llm.stream_chat([ChatMessage(content="hi")], temperature=0.5)
    chunks = [c.delta for c in stream]
    assert chunks == ["Hel", "lo", " world"]

    [run] = stored_runs(instrumented)
    assert run["name"] == "fake-model-1" and run["status"] == "success"
    assert run["output"] == {"role": "assistant", "content": "Hello world"}
    assert run["tokens"]["prompt"] == 5 and run["tokens"]["completion"] == 3
    assert run["params"]["temperature"] == 0.5
    assert run["endedAt"] is not None


def test_unconsumed_stream_stays_open_until_consumed(instrumented: Any) -> None:
    llm = UsageLLM()
    stream = llm.stream_chat([ChatMessage(content="hi")])
    [run] = stored_runs(instrumented)
    assert run["status"] == "started"  # the span exited, the stream has not run yet
    list(stream)
    [run] = stored_runs(instrumented)
    assert run["status"] == "success" and run["output"]["content"] == "Hello world"


def test_complete_is_one_llm_run_with_usage(instrumented: Any) -> None:
    UsageLLM().complete("Say done")
    [run] = stored_runs(instrumented)
    assert run["input"] == [{"role": "user", "content": "Say done"}]
    assert run["output"] == {"role": "assistant", "content": "done"}
    assert run["tokens"]["prompt"] == 9 and run["tokens"]["completion"] == 2


def test_custom_llm_chat_is_one_run(instrumented: Any, li_settings: None) -> None:
    from llama_index.core import Settings

    Settings.llm.chat([ChatMessage(content="hi there")])  # MockLLM: chat -> complete inside
    [run] = stored_runs(instrumented)
    assert run["type"] == "llm" and run["input"] == [{"role": "user", "content": "hi there"}]
    assert run["output"]["role"] == "assistant"


class _PlainLLM(UsageLLM):
    """``chat``/``complete`` overridden without LlamaIndex's callback decorators: the
    dispatcher still makes spans of them, but no LLM event is sent."""

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(
            message=ChatMessage(role="assistant", content="plain"), raw={"usage": dict(USAGE)}
        )

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise ValueError("plain failure")


def test_llm_without_events_is_a_run_from_its_call(instrumented: Any) -> None:
    messages = [ChatMessage(content="hi")]
    _PlainLLM().chat(messages, temperature=0.3)
    messages.append(ChatMessage(content="appended after the call"))
    with pytest.raises(ValueError):
        _PlainLLM().complete("Say done")

    complete_run, chat_run = sorted(stored_runs(instrumented), key=lambda r: r["status"])
    assert chat_run["type"] == "llm" and chat_run["name"] == "fake-model-1"
    assert chat_run["input"] == [{"role": "user", "content": "hi"}]
    assert chat_run["output"] == {"role": "assistant", "content": "plain"}
    assert chat_run["params"]["temperature"] == 0.3
    assert chat_run["tokens"]["prompt"] == 9 and chat_run["status"] == "success"
    assert complete_run["status"] == "error" and complete_run["error"]["message"] == (
        "plain failure"
    )
    assert complete_run["input"] == [{"role": "user", "content": "Say done"}]


class _DeployedLLM(UsageLLM):
    """An LLM whose metadata names the model differently from its ``model`` field."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="gpt-4o-2024-08-06", is_chat_model=False)


def test_decorated_completions_are_runs_from_their_call(instrumented: Any) -> None:
    # LlamaIndex's decorator binds ``complete``'s prompt as ``args`` (or ``prompt=`` in the
    # keyword arguments); the model id is the metadata's, as in the start event's model_dict.
    _DeployedLLM().complete("positional prompt", temperature=0.5)
    _DeployedLLM().complete(prompt="keyword prompt")

    runs = sorted(stored_runs(instrumented), key=lambda r: r["input"][0]["content"])
    assert [r["input"] for r in runs] == [
        [{"role": "user", "content": "keyword prompt"}],
        [{"role": "user", "content": "positional prompt"}],
    ]
    assert {r["name"] for r in runs} == {"gpt-4o-2024-08-06"}
    assert runs[1]["params"] == {"temperature": 0.5, "maxTokens": 64}
    assert "prompt" not in runs[0]["params"] and runs[0]["params"]["temperature"] == 0.1
    assert all(r["output"] == {"role": "assistant", "content": "done"} for r in runs)


def test_llm_error(instrumented: Any) -> None:
    with pytest.raises(ValueError, match="provider 500"):
        BoomLLM().chat([ChatMessage(content="hi")])
    [run] = stored_runs(instrumented)
    assert run["type"] == "llm" and run["status"] == "error"
    assert run["error"]["message"] == "provider 500"
    assert "ValueError" in run["error"]["stack"]
    assert run["input"] == [{"role": "user", "content": "hi"}]


def test_stream_breaks_midway(instrumented: Any) -> None:
    stream = BoomLLM().stream_chat([ChatMessage(content="hi")])
    got = []
    with pytest.raises(ConnectionError, match="stream cut"):
        for chunk in stream:
            got.append(chunk.delta)
    assert got == ["par"]
    [run] = stored_runs(instrumented)
    assert run["status"] == "error" and run["error"]["message"] == "stream cut"


def test_error_propagates_to_parents(instrumented: Any) -> None:
    dispatcher = get_dispatcher("tests.user_code")

    @dispatcher.span  # type: ignore[misc]
    def answer(question: str) -> str:
        return str(BoomLLM().chat([ChatMessage(content=question)]))

    with pytest.raises(ValueError):
        answer(QUESTION)
    runs = stored_runs(instrumented)
    root = one(runs, type="chain")
    assert root["name"].endswith("answer") and root["input"] == QUESTION
    assert root["status"] == "error" and root["error"]["message"] == "provider 500"
    [llm] = children(runs, root["id"])
    assert llm["status"] == "error" and llm["name"] == "fake-model-1"


# --------------------------------------------------------------------------- agents


def multiply(a: int = 3, b: int = 4) -> int:
    """Multiply two integers."""
    return a * b


async def test_function_agent(instrumented: Any) -> None:
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(multiply)], llm=MockFunctionCallingLLM()
    )
    result = await agent.run("what is 3*4?")
    assert str(result) == "Tool calls complete."

    runs = stored_runs(instrumented)
    root = one(runs, type="agent")
    assert root["name"] == "FunctionAgent.run" and root["parentRunId"] is None
    assert root["input"] == "what is 3*4?"
    assert root["output"]["content"] == "Tool calls complete."
    assert root["status"] == "success"

    kids = children(runs, root["id"])
    assert [r["type"] for r in kids] == ["llm", "tool", "llm"]  # steps are hidden
    assert descendants(runs, root["id"]) == kids
    tool = kids[1]
    assert tool["name"] == "multiply" and tool["input"] == {"a": 3, "b": 4}
    assert tool["output"] == "12" and tool["status"] == "success"

    first, second = kids[0], kids[2]
    assert first["params"]["tools"][0]["function"]["name"] == "multiply"
    assert first["input"] == [{"role": "user", "content": "what is 3*4?"}]
    [call] = first["output"]["toolCalls"]  # the server camel-cases keys
    assert call["function"]["name"] == "multiply"
    assert json.loads(call["function"]["arguments"]) == {"a": 3, "b": 4}
    roles = [m["role"] for m in second["input"]]
    assert roles == ["user", "assistant", "tool"]
    assert second["input"][2]["content"] == "12"
    assert second["output"]["content"] == "Tool calls complete."


class Drafted(Event):
    draft: str


class TwoSteps(Workflow):
    @step
    async def draft(self, ev: StartEvent) -> Drafted:
        return Drafted(draft=f"draft about {ev.topic}")

    @step
    async def polish(self, ctx: Context, ev: Drafted) -> StopEvent:
        return StopEvent(result=ev.draft.upper())


async def test_user_workflow_steps_are_chains(instrumented: Any) -> None:
    assert await TwoSteps(timeout=10).run(topic="cats") == "DRAFT ABOUT CATS"
    runs = stored_runs(instrumented)
    root = one(runs, type="agent", name="TwoSteps.run")
    assert root["input"] == {"topic": "cats"} and root["output"] == "DRAFT ABOUT CATS"
    steps = children(runs, root["id"])
    assert [(s["type"], s["name"]) for s in steps] == [
        ("chain", "TwoSteps.draft"),
        ("chain", "TwoSteps.polish"),
    ]
    assert steps[1]["output"] == "DRAFT ABOUT CATS"


# --------------------------------------------------------------------------- options


def test_options_tags_user_metadata_and_ignore(lunary_local: Any) -> None:
    instrument(
        tags=["prod"],
        user_id="u1",
        user_props={"plan": "pro"},
        metadata={"app": "demo"},
        ignore=[{"type": "llm", "name": "fake-*"}],
    )
    try:
        UsageLLM().chat([ChatMessage(content="secret prompt")])
    finally:
        uninstrument()
    [run] = stored_runs(lunary_local)
    assert run["tags"] == ["prod"] and run["metadata"] == {"app": "demo"}
    assert run["user"]["externalId"] == "u1" and run["user"]["props"] == {"plan": "pro"}
    assert run["input"] == "__NOT_INGESTED__" and run["output"] == "__NOT_INGESTED__"


@pytest.fixture
def root_span_handlers() -> Iterator[list[Any]]:
    """The root dispatcher's span handlers, restored afterwards (the tests set them)."""
    root = get_dispatcher()
    saved = list(root.span_handlers)
    try:
        yield root.span_handlers
    finally:
        root.span_handlers[:] = saved


def test_instrument_twice_then_uninstrument_restores_dispatcher(
    lunary_local: Any, root_span_handlers: list[Any]
) -> None:
    root = get_dispatcher()
    llm_events = get_dispatcher("llama_index.core.llms.callbacks")  # where LLM events start
    placeholder, other = NullSpanHandler(), SimpleSpanHandler()
    root_span_handlers[:] = [placeholder, other]  # as LlamaIndex ships it, plus another tracer
    events_before = list(root.event_handlers)
    llm_before = list(llm_events.event_handlers)

    instrument()
    instrument(tags=["ignored: already instrumented"])
    assert is_instrumented()
    # The span handler takes the place of the placeholder, which does nothing but is called
    # twice per span; the other tracer is untouched.
    [ours, kept] = root.span_handlers
    assert isinstance(ours, LunarySpanHandler) and kept is other
    added_events = [h for h in llm_events.event_handlers if isinstance(h, LunaryEventHandler)]
    assert len(added_events) == 1
    # Only LLM events matter: the handler is not called for the others, sent to the root.
    assert [id(h) for h in root.event_handlers] == [id(h) for h in events_before]
    assert len(llm_events.event_handlers) == len(llm_before) + 1

    uninstrument()
    uninstrument()  # harmless
    assert not is_instrumented()
    assert [id(h) for h in root.span_handlers] == [id(placeholder), id(other)]
    assert [id(h) for h in llm_events.event_handlers] == [id(h) for h in llm_before]

    UsageLLM().chat([ChatMessage(content="hi")])  # nothing traced any more
    assert stored_runs(lunary_local) == []


def test_instrument_without_a_placeholder_appends_and_removes_its_handler(
    lunary_local: Any, root_span_handlers: list[Any]
) -> None:
    other = SimpleSpanHandler()
    root_span_handlers[:] = [other]  # someone removed LlamaIndex's placeholder
    instrument()
    try:
        assert root_span_handlers[0] is other
        assert [type(h) for h in root_span_handlers] == [SimpleSpanHandler, LunarySpanHandler]
        UsageLLM().chat([ChatMessage(content="hi")])
    finally:
        uninstrument()
    assert [id(h) for h in root_span_handlers] == [id(other)]  # no placeholder made up
    [run] = stored_runs(lunary_local)  # traced while instrumented, beside the other tracer
    assert run["type"] == "llm" and run["output"]["content"] == "ok!"
    assert [s.id_.split("-")[0] for s in other.completed_spans] == ["UsageLLM.chat"]


def test_uninstrument_does_not_double_a_placeholder_put_back_by_someone_else(
    lunary_local: Any, root_span_handlers: list[Any]
) -> None:
    placeholder = NullSpanHandler()
    root_span_handlers[:] = [placeholder]
    instrument()
    root_span_handlers.insert(0, NullSpanHandler())  # e.g. a library resetting the root
    uninstrument()
    assert [type(h) for h in root_span_handlers] == [NullSpanHandler]


def test_without_key_nothing_is_sent_and_calls_work(lunary_local: Any) -> None:
    from lunary_integrations import config

    config.reset()  # no key at all: a disabled tracer
    instrument()
    try:
        assert UsageLLM().chat([ChatMessage(content="hi")]).message.content == "ok!"
    finally:
        uninstrument()
    assert lunary_local.all_runs() == []


def test_bad_settings_raise_at_instrument_time() -> None:
    with pytest.raises(ValueError):
        instrument(api_url="not a url")
    with pytest.raises(ValueError):
        instrument(ignore=[{"colour": "blue"}])
    assert not is_instrumented()
