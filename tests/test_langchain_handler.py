"""The callback handler against a recording client: robustness, dedupe, annotations.

These call the handler directly (as LangChain's callback manager does) or run real
runnables, and assert on the queued wire events, without HTTP.
"""

from __future__ import annotations

import math
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.callbacks import dispatch_custom_event
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableConfig, RunnableLambda

from lunary_integrations import config
from lunary_integrations.config import Settings
from lunary_integrations.events import RunEvent
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.langchain.callback import RUNTIME
from lunary_integrations.tracer import RunTracer

from .lc_fakes import UsageFakeChatModel
from .recorder import Recorder


def recorded(**options: Any) -> tuple[LunaryCallbackHandler, Recorder]:
    """A handler whose tracer queues into a Recorder (the shared-tracer cache is bypassed)."""
    rec = Recorder()
    handler = LunaryCallbackHandler(**options)
    handler.tracer = RunTracer(
        runtime=RUNTIME,
        settings=Settings(public_key="k"),
        client=rec,  # type: ignore[arg-type]
        ignore=handler._ignore,
    )
    return handler, rec


def assert_valid_wire(events: list[dict[str, Any]]) -> None:
    """Every event validates as a RunEvent once the worker formats its timestamp."""
    for event in events:
        RunEvent.model_validate({**event, "timestamp": "2026-01-01T00:00:00.000Z"})


# --------------------------------------------------------------------------- garbage in


GARBAGE: list[Any] = [
    None,
    object(),
    float("nan"),
    {"k": {1, 2, 3}},
    b"\xff\xfe",
    "x" * 2_000_000,
    [object()] * 3,
    lambda: None,
    math.inf,
]


@pytest.mark.parametrize("junk", GARBAGE, ids=[type(g).__name__ for g in GARBAGE])
def test_every_callback_survives_garbage(junk: Any, caplog: pytest.LogCaptureFixture) -> None:
    handler, rec = recorded()
    rid, child, tool, ret = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # Wrong types everywhere LangChain's annotations promise something better.
    handler.on_chain_start(junk, junk, run_id=rid, tags=junk, metadata=junk, name=junk)
    handler.on_chat_model_start(
        junk,
        [[junk, HumanMessage("x")]],
        run_id=child,
        parent_run_id=rid,
        tags=None,
        metadata={"ls_model_name": junk},
        invocation_params=junk,
    )
    handler.on_llm_new_token(junk, run_id=child, chunk=junk)
    handler.on_llm_end(junk, run_id=child)
    handler.on_llm_start(junk, [junk], run_id=uuid.uuid4(), parent_run_id=rid, metadata=None)
    handler.on_llm_end(SimpleNamespace(generations=[[junk]], llm_output=junk), run_id=uuid.uuid4())
    handler.on_tool_start(junk, junk, run_id=tool, parent_run_id=rid, inputs=junk)
    handler.on_tool_end(junk, run_id=tool)
    handler.on_retriever_start(junk, junk, run_id=ret, parent_run_id=rid, metadata=junk)
    handler.on_retriever_end(junk, run_id=ret)
    handler.on_custom_event(junk, junk, run_id=rid)
    handler.on_agent_action(junk, run_id=rid)
    handler.on_agent_finish(junk, run_id=rid)
    handler.on_retry(junk, run_id=rid)
    handler.on_chain_end(junk, run_id=rid, inputs=junk)
    handler.on_chain_error(junk, run_id=uuid.uuid4())  # not even an exception
    handler.on_tool_error(ValueError(junk), run_id=uuid.uuid4())
    handler.on_chain_start(None, junk, run_id=junk)  # not even a UUID

    assert rec.events, "valid runs were still traced"
    assert_valid_wire(rec.events)
    starts = {e["runId"] for e in rec.of("start")}
    assert {str(rid), str(tool), str(ret)} <= starts
    # Handled by the translators, not merely swallowed by ``guard``.
    assert not [r for r in caplog.records if "failed" in r.getMessage()]


def test_none_serialized_and_missing_usage_do_not_break_a_real_chain() -> None:
    handler, rec = recorded()
    chain = RunnableLambda(lambda x: {"v": object(), "n": x}) | RunnableLambda(lambda d: d["n"] + 1)
    assert chain.invoke(1, config={"callbacks": [handler]}) == 2
    assert [e["event"] for e in rec.events].count("end") == 3
    assert_valid_wire(rec.events)


def test_handler_never_raises_even_if_the_tracer_breaks() -> None:
    handler, rec = recorded()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracer bug")

    handler.tracer.start_event = boom  # type: ignore[method-assign]
    chain = RunnableLambda(lambda x: x * 2)
    assert chain.invoke(21, config={"callbacks": [handler]}) == 42
    assert rec.events == []


# --------------------------------------------------------------------------- behaviour


def test_duplicate_handlers_on_one_run_send_each_event_once() -> None:
    handler, rec = recorded()
    twin = LunaryCallbackHandler()
    twin.tracer = handler.tracer  # what the shared-tracer cache gives equal settings
    model = UsageFakeChatModel().with_config(callbacks=[twin])
    chain = RunnableLambda(lambda x: [HumanMessage(x)]) | model
    chain.invoke("hi", config={"callbacks": [handler]})
    starts = [e["runId"] for e in rec.of("start")]
    ends = [e["runId"] for e in rec.of("end")]
    assert len(starts) == len(set(starts)) == 3
    assert sorted(ends) == sorted(starts)


def test_hidden_runs_are_skipped_and_children_reparented() -> None:
    handler, rec = recorded()
    root, hidden, child = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    handler.on_chain_start(None, {}, run_id=root, name="root")
    handler.on_chain_start(None, {}, run_id=hidden, parent_run_id=root, tags=["langsmith:hidden"])
    handler.on_chain_start(None, {}, run_id=child, parent_run_id=hidden, name="child")
    for rid in (child, hidden, root):
        handler.on_chain_end({}, run_id=rid)
    sent = {e["runId"]: e for e in rec.of("start")}
    assert set(sent) == {str(root), str(child)}
    assert sent[str(child)]["parentRunId"] == str(root)


def test_time_to_first_token_and_stream_input_on_end() -> None:
    handler, rec = recorded()
    model = UsageFakeChatModel()
    chain = RunnableLambda(lambda x: [HumanMessage(x)]) | model
    chunks = list(chain.stream("hi", config={"callbacks": [handler]}))
    assert "".join(str(c.content) for c in chunks) == "hello there friend"
    llm_end = next(e for e in rec.of("end") if e["type"] == "llm")
    assert isinstance(llm_end["metadata"]["timeToFirstToken"], int)
    assert llm_end["tokensUsage"] == {"prompt": 11, "completion": 3}
    root_start = next(e for e in rec.of("start") if e["name"] == "RunnableSequence")
    assert "input" not in root_start  # the placeholder is not sent ...
    root_end = next(e for e in rec.of("end") if e["runId"] == root_start["runId"])
    assert root_end["input"] == "hi"  # ... the real input comes with the end


def test_custom_events_and_retries_annotate_the_enclosing_run() -> None:
    handler, rec = recorded()

    def step(x: int, config: RunnableConfig) -> int:
        dispatch_custom_event("progress", {"done": x}, config=config)
        dispatch_custom_event("progress", {"done": x + 1}, config=config)
        return x

    RunnableLambda(step, name="step").invoke(1, config={"callbacks": [handler]})
    (end,) = rec.of("end")
    assert '"name": "progress"' in end["metadata"]["customEvents"]
    assert '"done": 2' in end["metadata"]["customEvents"]


def test_graph_interrupt_is_not_an_error() -> None:
    handler, rec = recorded()

    class GraphBubbleUp(Exception):  # langgraph's names, matched without importing it
        pass

    class GraphInterrupt(GraphBubbleUp):
        pass

    rid = uuid.uuid4()
    handler.on_chain_start(None, {"q": 1}, run_id=rid, name="node")
    handler.on_chain_error(GraphInterrupt(["approve?"]), run_id=rid)
    assert rec.of("error") == []
    (end,) = rec.of("end")
    assert end["output"] == {"interrupted": "GraphInterrupt", "value": ["approve?"]}
    assert end["metadata"] == {"interrupted": True}


def test_errors_carry_their_own_traceback() -> None:
    handler, rec = recorded()

    def fail(x: int) -> int:
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        RunnableLambda(fail).invoke(1, config={"callbacks": [handler]})
    (err,) = rec.of("error")
    assert err["error"]["message"] == "bad input"
    assert "in fail" in err["error"]["stack"] and "ValueError: bad input" in err["error"]["stack"]


def test_ignore_rules_filter_content() -> None:
    handler, rec = recorded(ignore=[{"type": "chain", "name": "secret*"}])
    RunnableLambda(lambda x: x, name="secret_step").invoke("pw", config={"callbacks": [handler]})
    (start,) = rec.of("start")
    assert start["input"] == "__NOT_INGESTED__"


def test_handler_options_user_tags_metadata() -> None:
    handler, rec = recorded(
        tags=["h"], user_id="u0", user_props={"plan": "free"}, metadata={"app": "x"}
    )
    handler.on_chain_start(
        None, {}, run_id=uuid.uuid4(), tags=["seq:step:1", "t"], metadata={"k": 1}
    )
    handler.on_chain_start(None, {}, run_id=uuid.uuid4(), metadata={"user_id": "u1"})
    first, second = rec.of("start")
    assert first["tags"] == ["t", "h"]
    assert first["metadata"] == {"app": "x", "k": 1}
    assert (first["userId"], first["userProps"]) == ("u0", {"plan": "free"})
    assert second["userId"] == "u1" and "user_id" not in second["metadata"]


def test_llm_run_fields_from_a_direct_call() -> None:
    handler, rec = recorded()
    result = LLMResult(
        generations=[[ChatGeneration(message=AIMessage("ok"))]],
        llm_output={"token_usage": {"prompt_tokens": 5, "completion_tokens": 1}},
    )
    rid = uuid.uuid4()
    handler.on_chat_model_start(
        {"id": ["x", "ChatOpenAI"], "kwargs": {}},
        [[HumanMessage("hi")]],
        run_id=rid,
        metadata={"ls_model_name": "gpt-4o-mini", "ls_temperature": 0.1, "ls_provider": "openai"},
        invocation_params={"model": "gpt-4o-mini", "temperature": 0.1, "api_key": "sk-x"},
    )
    handler.on_llm_end(result, run_id=rid)
    start, end = rec.events
    assert start["name"] == "gpt-4o-mini"
    assert start["params"] == {"temperature": 0.1}
    assert start["input"] == [{"role": "user", "content": "hi"}]
    assert "metadata" not in start  # only ls_* internals: nothing left to store
    assert end["output"] == {"role": "assistant", "content": "ok"}
    assert end["tokensUsage"] == {"prompt": 5, "completion": 1}


# --------------------------------------------------------------------------- construction


def test_construction_is_free_and_handlers_share_a_tracer() -> None:
    config.configure(public_key="pk", api_url="http://127.0.0.1:9", flush_interval=60)
    a, b = LunaryCallbackHandler(), LunaryCallbackHandler()
    assert a._b._tracer is None and a._b._settings is None  # nothing resolved yet
    assert a.tracer is b.tracer
    assert LunaryCallbackHandler(tags=["x"]).tracer is a.tracer  # per-handler options
    assert LunaryCallbackHandler(api_url="http://127.0.0.1:8").tracer is not a.tracer
    assert LunaryCallbackHandler(ignore=[{"type": "tool"}]).tracer is not a.tracer


def test_bad_explicit_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError):
        LunaryCallbackHandler(api_url="not a url")
    with pytest.raises(ValueError):
        LunaryCallbackHandler(no_such_setting=1)


def test_bad_environment_disables_without_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNARY_PUBLIC_KEY", "pk")
    monkeypatch.setenv("LUNARY_SAMPLE_RATE", "lots")
    handler = LunaryCallbackHandler()
    assert RunnableLambda(lambda x: x + 1).invoke(1, config={"callbacks": [handler]}) == 2
    assert handler.tracer.enabled is False


def test_no_key_means_no_events_and_no_error() -> None:
    handler = LunaryCallbackHandler()
    assert RunnableLambda(lambda x: x + 1).invoke(1, config={"callbacks": [handler]}) == 2
    assert handler.tracer.enabled is False and handler.tracer.open_runs() == 0
