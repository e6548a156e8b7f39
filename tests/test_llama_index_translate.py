"""Pure translators (no HTTP) and garbage-in robustness of both handlers."""

from __future__ import annotations

import inspect
import logging
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    ImageBlock,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.callbacks import CBEventType
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.llms import MockLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.tools import FunctionTool

import lunary_integrations
from lunary_integrations.llama_index import LunaryCallbackHandler, instrumentation
from lunary_integrations.llama_index import messages as msg
from lunary_integrations.llama_index import translate as tr
from lunary_integrations.llama_index.ids import span_label, to_run_id
from lunary_integrations.llama_index.kinds import (
    KINDS_BY_LENGTH,
    SpanKind,
    builtin_step,
    classify,
    classify_span,
)
from lunary_integrations.llama_index.usage import tokens_usage

from .llama_index_support import UsageLLM, instrumented, stored_runs

__all__ = ["instrumented"]


# --------------------------------------------------------------------------- ids


def test_span_ids_map_to_their_uuid_suffix() -> None:
    u = str(uuid.uuid4())
    assert to_run_id(f"RetrieverQueryEngine.query-{u}") == u
    assert span_label(f"RetrieverQueryEngine.query-{u}") == "RetrieverQueryEngine.query"
    assert to_run_id(u.upper()) == u
    other = to_run_id("not-a-uuid-span")
    assert other == to_run_id("not-a-uuid-span") and str(uuid.UUID(other)) == other
    assert to_run_id("") != to_run_id("x") and len(to_run_id("")) == 36


# --------------------------------------------------------------------------- messages


def test_messages_to_openai_format() -> None:
    assistant = ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text="let me check"),
            ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs={"a": 1}),
        ],
    )
    legacy = ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={
            "tool_calls": [
                {"id": "c2", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}},
                ToolSelection(tool_id="c3", tool_name="g", tool_kwargs={"y": 2}),
            ]
        },
    )
    tool = ChatMessage(role="tool", content="2", additional_kwargs={"tool_call_id": "c1"})
    image = ChatMessage(
        role="user", blocks=[TextBlock(text="what is this"), ImageBlock(url="http://x/i.png")]
    )
    out = msg.messages([ChatMessage(role="system", content="sys"), assistant, legacy, tool, image])
    assert out[0] == {"role": "system", "content": "sys"}
    assert out[1] == {
        "role": "assistant",
        "content": "let me check",
        "tool_calls": [
            {"type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}, "id": "c1"}
        ],
    }
    assert [c["function"] for c in out[2]["tool_calls"]] == [
        {"name": "f", "arguments": '{"x": 1}'},
        {"name": "g", "arguments": '{"y": 2}'},
    ]
    assert out[3] == {"role": "tool", "content": "2", "tool_call_id": "c1"}
    assert out[4]["content"] == [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "http://x/i.png"}},
    ]
    assert msg.messages(None) == [] and msg.messages("hi") == [{"role": "user", "content": "hi"}]


def test_response_message() -> None:
    chat = ChatResponse(message=ChatMessage(role="assistant", content="yo"))
    assert msg.response_message(chat) == {"role": "assistant", "content": "yo"}
    assert msg.response_message(CompletionResponse(text="t")) == {
        "role": "assistant",
        "content": "t",
    }
    assert msg.response_message(None) is None


def test_params_drop_secrets_and_convert_tools() -> None:
    tool = FunctionTool.from_defaults(fn=lambda a: a, name="echo", description="Echo.")
    params = msg.call_params(
        {
            "temperature": 0.9,
            "api_key": "sk-x",
            "http_client": object(),
            "default_headers": {"Authorization": "x"},
            "access_token": "t",
            "formatted": True,
            "tools": [tool, {"type": "function", "function": {"name": "raw"}}],
            "response_format": object(),
            "stop": ["\n"],
        },
        {"max_tokens": 64},
    )
    assert params["temperature"] == 0.9 and params["max_tokens"] == 64 and params["stop"] == ["\n"]
    assert set(params) == {"temperature", "max_tokens", "stop", "tools"}
    assert params["tools"][0]["type"] == "function"
    assert params["tools"][0]["function"]["name"] == "echo"
    assert params["tools"][0]["function"]["parameters"]["type"] == "object"
    assert params["tools"][1] == {"type": "function", "function": {"name": "raw"}}


# --------------------------------------------------------------------------- usage


class _Obj:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def test_usage_sources() -> None:
    openai_like = _Obj(
        raw=_Obj(
            usage=_Obj(
                prompt_tokens=9,
                completion_tokens=2,
                prompt_tokens_details=_Obj(cached_tokens=4),
            )
        ),
        additional_kwargs={},
    )
    assert tokens_usage(openai_like) == {"prompt": 9, "completion": 2, "promptCached": 4}
    gemini = _Obj(
        raw={"usage_metadata": {"prompt_token_count": 7, "candidates_token_count": 3}},
        additional_kwargs={},
    )
    assert tokens_usage(gemini) == {"prompt": 7, "completion": 3}
    anthropic = _Obj(
        raw={"usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 2}},
        additional_kwargs={},
    )
    assert tokens_usage(anthropic) == {"prompt": 5, "completion": 1, "promptCached": 2}
    kwargs_only = CompletionResponse(text="x", additional_kwargs={"prompt_tokens": 3})
    assert tokens_usage(kwargs_only) == {"prompt": 3}
    assert tokens_usage(CompletionResponse(text="x")) is None
    assert (
        tokens_usage(_Obj(raw={"usage": {"prompt_tokens": True}}, additional_kwargs=None)) is None
    )


# --------------------------------------------------------------------------- classification


def test_classification() -> None:
    assert classify(MockLLM, "MockLLM.chat", False) == SpanKind.LLM
    assert classify(MockLLM, "MockLLM.predict", False) == SpanKind.HIDDEN
    assert classify(MockLLM, "MockLLM._prepare_chat_with_tools", False) == SpanKind.HIDDEN
    assert classify(SentenceSplitter, "SentenceSplitter.__call__", False) == SpanKind.HIDDEN
    assert classify(FunctionTool, "FunctionTool.__call__", False) == SpanKind.TOOL
    assert classify(None, "MyFlow.step", True) == SpanKind.STEP
    assert classify(None, "my_function", False) == SpanKind.CHAIN
    from llama_index.core.agent.workflow import FunctionAgent

    assert builtin_step(FunctionAgent, "BaseWorkflowAgent.run_agent_step") is True
    assert builtin_step(FunctionAgent, "Mine.step") is False
    assert tr.llm_name({"model_name": "gpt-4o"}, None, "X.chat") == "gpt-4o"
    assert tr.llm_name({"model_name": "unknown", "class_name": "MockLLM"}, None, "X.y") == "MockLLM"
    assert tr.llm_name(None, None, "Foo.chat") == "Foo"


def test_span_kinds_cached_by_class_and_id_length_are_checked_against_the_label(
    instrumented: Any,
) -> None:
    """``_chat`` and ``achat``: one class, names of one length, different kinds. The cache
    keyed by class and id length must not give one's kind to the other."""
    installed = instrumentation._installed
    assert installed is not None
    spans, _ = installed
    llm = MockLLM()
    hidden, sent = f"MockLLM._chat-{uuid.uuid4()}", f"MockLLM.achat-{uuid.uuid4()}"
    assert classify_span(hidden, llm, None) == ("MockLLM._chat", SpanKind.HIDDEN)
    assert KINDS_BY_LENGTH[MockLLM][len(hidden)][:2] == ("MockLLM._chat", SpanKind.HIDDEN)
    assert classify_span(sent, llm, None) == ("MockLLM.achat", SpanKind.LLM)
    # Not a dispatcher's id: classified by its whole text, and not cached by length.
    assert classify_span("MockLLM.chat", llm, None) == ("MockLLM.chat", SpanKind.LLM)
    assert len("MockLLM.chat") not in KINDS_BY_LENGTH[MockLLM]
    # Through the handler, in both orders, each entered twice (the second one a cache hit).
    core = spans.core
    for order in ((hidden, sent), (sent, hidden)):
        for _ in range(2):
            ids = [f"{span_id[:-37]}-{uuid.uuid4()}" for span_id in order]
            for span_id in ids:
                spans.span_enter(span_id, _bound(), llm, None, None)
            assert [core.spans[i].kind for i in ids] == [
                SpanKind.HIDDEN if "._chat" in i else SpanKind.LLM for i in ids
            ]
            for span_id in reversed(ids):
                core.spans.pop(span_id)
    # An id of the same length that starts with a cached label but is not ``label-<uuid>``.
    odd = "MockLLM.achat" + "Z" * 37
    spans.span_enter(odd, _bound(), llm, None, None)
    assert core.spans.pop(odd).kind == SpanKind.HIDDEN  # method "achatZZZ...": not an LLM call


def test_call_prompt_reads_the_arguments_as_the_decorator_does() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    assert msg.call_prompt({"args": ("positional",), "kwargs": {"prompt": "kw"}}) == "positional"
    assert msg.call_prompt({"args": (), "kwargs": {"prompt": "kw"}}) == "kw"
    assert msg.call_prompt({"prompt": "undecorated", "formatted": True}) == "undecorated"
    assert msg.call_prompt({"args": (42,)}) == "42"
    assert msg.call_prompt({"args": (Hostile(),)}) is None
    assert msg.call_prompt({"kwargs": {}}) is None


def test_tool_output_errors_and_control_flow() -> None:
    from llama_index.core.tools.types import ToolOutput

    bad = ToolOutput(content="boom", tool_name="t", raw_input={}, raw_output=None, is_error=True)
    assert tr.tool_error(bad) == "boom"
    assert tr.output(ToolOutput(content="12", tool_name="t", raw_input={}, raw_output=12)) == "12"
    import asyncio

    assert tr.is_control_flow(asyncio.CancelledError())
    assert not tr.is_control_flow(ValueError())


def test_a_tool_that_reports_a_failure_is_an_error_run(instrumented: Any) -> None:
    from llama_index.core.tools.types import ToolOutput

    installed = instrumentation._installed
    assert installed is not None
    spans = installed[0]
    tool = FunctionTool.from_defaults(fn=lambda city: city, name="lookup")
    failed, fine = f"FunctionTool.call-{uuid.uuid4()}", f"FunctionTool.call-{uuid.uuid4()}"
    spans.span_enter(failed, _bound("Paris"), tool, None, None)
    spans.span_exit(
        failed,
        _bound(),
        tool,
        ToolOutput(
            content="boom", tool_name="lookup", raw_input={}, raw_output=None, is_error=True
        ),
    )
    spans.span_enter(fine, _bound("Rome"), tool, None, None)
    spans.span_exit(
        fine,
        _bound(),
        tool,
        ToolOutput(content="ok", tool_name="lookup", raw_input={}, raw_output="ok"),
    )
    paris, rome = sorted(stored_runs(instrumented), key=lambda r: r["status"])
    assert paris["type"] == "tool" and paris["name"] == "lookup" and "Paris" in str(paris["input"])
    assert paris["status"] == "error" and paris["error"]["message"] == "boom"
    assert rome["status"] == "success" and rome["output"] == "ok" and "Rome" in str(rome["input"])


# --------------------------------------------------------------------------- garbage in

_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


class _Exploding:
    """Every attribute access fails: an instance a handler must survive."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


def _chat_call(messages: Any, **kwargs: Any) -> inspect.BoundArguments:
    """A chat call's arguments as LlamaIndex's decorator binds them."""

    def chat(messages: Any, **kwargs: Any) -> None: ...

    return inspect.signature(chat).bind(messages, **kwargs)


def _bound(*args: Any) -> inspect.BoundArguments:
    def f(*args: Any) -> None: ...

    return inspect.signature(f).bind(*args)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(span_id=st.text(max_size=60), payload=_junk, parent=st.none() | st.text(max_size=40))
def test_instrumentation_handlers_never_raise(
    instrumented: Any, span_id: str, payload: Any, parent: str | None
) -> None:
    installed = instrumentation._installed
    assert installed is not None
    spans, events = installed
    for instance in (None, _Exploding(), FunctionTool.from_defaults(fn=lambda: 1, name="n")):
        spans.span_enter(span_id, _bound(payload), instance, parent, payload)  # type: ignore[arg-type]
        spans.span_exit(span_id, _bound(), instance, payload)
        spans.span_enter(span_id, None, instance, parent, None)  # type: ignore[arg-type]
        spans.span_drop(span_id, None, instance, payload)  # type: ignore[arg-type]
    events.handle(ExceptionEvent(exception=ValueError("x"), span_id=span_id))
    events.handle(LLMChatEndEvent(messages=[], response=None, span_id=span_id))
    events.handle(LLMChatStartEvent(messages=[], additional_kwargs={}, model_dict={}))


def test_instrumentation_garbage_llm_flow_is_still_a_run(
    instrumented: Any, caplog: pytest.LogCaptureFixture
) -> None:
    installed = instrumentation._installed
    assert installed is not None
    spans, events = installed
    span_id = f"UsageLLM.chat-{uuid.uuid4()}"
    llm = UsageLLM()
    garbage = {"weird": object(), "temperature": float("nan"), "prompt": object()}
    spans.span_enter(span_id, _chat_call([ChatMessage(content="hi")], **garbage), llm, None, None)
    events.handle(
        LLMChatStartEvent(
            messages=[ChatMessage(content="hi")],
            additional_kwargs=garbage,
            model_dict={"model_name": 42},
            span_id=span_id,
        )
    )
    events.handle(
        LLMChatEndEvent(
            messages=[],
            response=ChatResponse(message=ChatMessage(content="x"), raw=_Exploding()),
            span_id=span_id,
        )
    )
    spans.span_exit(span_id, _bound(), llm, object())
    # An attribute that raises (read on the worker, where the tool's name is made) is logged
    # once, never raised: the tool is still a run, named after its span.
    tool_span = f"X.call-{uuid.uuid4()}"
    with caplog.at_level(logging.WARNING, logger="lunary_integrations"):
        spans.span_enter(tool_span, _bound(), _ExplodingTool(), None, None)
        spans.span_exit(tool_span, _bound(), _ExplodingTool(), "done")
        lunary_integrations.flush(10)
    assert any("metadata exploded" in r.getMessage() for r in caplog.records)
    llm_run, tool_run = sorted(stored_runs(instrumented), key=lambda r: r["type"])
    assert llm_run["type"] == "llm" and llm_run["status"] == "success"
    assert llm_run["name"] == "fake-model-1" and llm_run["params"]["temperature"] == "NaN"
    assert llm_run["input"] == [{"role": "user", "content": "hi"}]
    assert "prompt" not in llm_run["params"] and "weird" not in llm_run["params"]
    assert tool_run["type"] == "tool" and tool_run["name"] == "X.call"
    assert tool_run["output"] == "done" and tool_run["status"] == "success"


def test_events_of_a_hidden_span_below_an_llm_run_are_not_its_own(instrumented: Any) -> None:
    """A ``CustomLLM``'s ``chat`` calls its own ``complete``: the inner span is hidden (same
    instance and kind) and shares the chat's record, but its start/end events belong to the
    inner call: the run starts and ends on the chat's own events only."""
    installed = instrumentation._installed
    assert installed is not None
    spans, events = installed
    llm = UsageLLM()
    chat_id, complete_id = f"UsageLLM.chat-{uuid.uuid4()}", f"UsageLLM.complete-{uuid.uuid4()}"
    spans.span_enter(chat_id, _chat_call([ChatMessage(content="outer")]), llm, None, None)
    events.handle(
        LLMChatStartEvent(
            messages=[ChatMessage(content="outer")],
            additional_kwargs={},
            model_dict={"model_name": "m"},
            span_id=chat_id,
        )
    )
    spans.span_enter(complete_id, _bound("inner"), llm, chat_id, None)
    events.handle(
        LLMCompletionStartEvent(
            prompt="inner", additional_kwargs={}, model_dict={}, span_id=complete_id
        )
    )
    events.handle(
        LLMCompletionEndEvent(
            prompt="inner", response=CompletionResponse(text="inner answer"), span_id=complete_id
        )
    )
    spans.span_exit(complete_id, _bound(), llm, None)
    events.handle(
        LLMChatEndEvent(
            messages=[],
            response=ChatResponse(message=ChatMessage(role="assistant", content="outer answer")),
            span_id=chat_id,
        )
    )
    spans.span_exit(chat_id, _bound(), llm, None)
    [run] = stored_runs(instrumented)
    assert run["type"] == "llm" and run["status"] == "success"
    assert run["input"] == [{"role": "user", "content": "outer"}]
    assert run["output"]["content"] == "outer answer"


class _ExplodingTool(FunctionTool):
    def __init__(self) -> None:
        pass

    @property
    def metadata(self) -> Any:
        raise RuntimeError("metadata exploded")


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    event_type=st.sampled_from([*CBEventType, "nonsense", None]),
    payload=st.none()
    | st.dictionaries(
        st.sampled_from(
            [
                "query_str",
                "messages",
                "response",
                "formatted_prompt",
                "serialized",
                "nodes",
                "exception",
                "tool",
                "function_call",
                "additional_kwargs",
                "completion",
                "x",
            ]
        ),
        _junk,
    ),
    event_id=st.text(max_size=40),
    parent_id=st.none() | st.text(max_size=40),
)
def test_callback_handler_never_raises(
    lunary_local: Any, event_type: Any, payload: Any, event_id: str, parent_id: Any
) -> None:
    h = LunaryCallbackHandler()
    h.start_trace("query")
    h.on_event_start(event_type, payload, event_id=event_id, parent_id=parent_id)
    h.on_event_end(event_type, payload, event_id=event_id)
    h.on_event_end(event_type, {"exception": ValueError("x")}, event_id=event_id)
    h.end_trace("query", {"root": [event_id]})


def test_every_span_kind_is_one_entry_of_the_table_that_both_handlers_read() -> None:
    from lunary_integrations.llama_index import kinds

    assert list(kinds.SPECS) != [] and set(kinds.SPECS) == set(SpanKind)
    assert all(kinds.BY_KIND[kind] is kinds.SPECS[kind] for kind in SpanKind)
    # The span handler's hot-path tuples are the table's fields, indexed by kind.
    assert tuple(kinds.SPECS[k].result for k in SpanKind) == instrumentation._RESULT
    assert tuple(kinds.SPECS[k].resolve for k in SpanKind) == instrumentation._RESOLVE
    # The legacy handler's event types map to the same kinds (and run types).
    legacy = {event: kinds.SPECS[kind].run_type for event, kind in kinds.LEGACY_KINDS.items()}
    assert legacy == {
        CBEventType.QUERY.value: "chain",
        CBEventType.SYNTHESIZE.value: "chain",
        CBEventType.RETRIEVE.value: "retriever",
        CBEventType.LLM.value: "llm",
        CBEventType.FUNCTION_CALL.value: "tool",
        CBEventType.AGENT_STEP.value: "agent",
    }
    assert kinds.LEGACY_KINDS[CBEventType.LLM.value] is SpanKind.LLM
    # IntEnum: the hot path's tests are int ones.
    assert not SpanKind.HIDDEN and SpanKind.LLM == 2 and hash(SpanKind.LLM) == hash(2)
