"""10 000 hypothesis-generated hostile values through the real handlers.

Every event the handlers queue (captured by patching ``IngestClient.enqueue``, so the real
tracer, settings and translators run) must be valid JSON (``allow_nan=False``), validate as
``RunEvent``, and fit ``max_event_bytes`` once encoded by the worker's ``encode_event``.
Budget: 3500 + 2000 + 2500 + 2000 = 10 000 examples (``EXAMPLES``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from unittest import mock

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableLambda
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]

from lunary_integrations.events import RunEvent
from lunary_integrations.ingest.client import IngestClient, materialize
from lunary_integrations.ingest.encode import encode_event, iso_utc
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.llama_index import instrument, uninstrument
from lunary_integrations.llama_index.callback import (
    LunaryCallbackHandler as LlamaCallbackHandler,
)

from .reliability_support import KEY

#: Small caps, so that truncation and event shrinking run on most examples.
CAPS = {"max_field_bytes": 2048, "max_event_bytes": 6144}
URL = "http://127.0.0.1:9"  # never contacted: enqueue is captured
EXAMPLES = {"lc_callbacks": 3500, "lc_chain": 2000, "li_callbacks": 2500, "li_spans": 2000}
TOTAL_EXAMPLES = sum(EXAMPLES.values())


def hyp(n: int) -> Any:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# --------------------------------------------------------------------------- hostile values


class Boom(Exception):
    pass


#: The hostile methods raise only while the handlers run (``captured()``): hypothesis itself
#: reprs values to describe strategies and failing examples.
ARMED = [False]
#: How many times a hostile method raised during the current example.
RAISED = [0]


def boom(what: str) -> Any:
    if ARMED[0]:
        RAISED[0] += 1
        raise Boom(what)
    return f"<{what}>"


class ExplodingRepr:
    def __repr__(self) -> str:
        return str(boom("repr"))

    __str__ = __repr__


class ExplodingAttrs:
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return boom(name)

    def __repr__(self) -> str:
        return str(boom("repr"))


class HostileKey:
    """Hashable, but neither printable nor comparable."""

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return str(boom("key repr"))

    __str__ = __repr__


class LyingSequence(list):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[Any]:
        boom("iter")
        return super().__iter__()

    def __len__(self) -> int:
        return 10**6


class ExplodingMapping(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        boom("items")
        return super().items()

    def keys(self) -> Any:
        boom("keys")
        return super().keys()


class WeirdStr(str):
    def __str__(self) -> str:
        return str(boom("str"))


class ExplodingModel(pydantic.BaseModel):
    x: int = 1

    def model_dump(self, *args: Any, **kwargs: Any) -> Any:
        boom("dump")
        return super().model_dump(*args, **kwargs)


class ExplodingError(Exception):
    def __str__(self) -> str:
        return str(boom("str of exception"))


@dataclasses.dataclass
class Point:
    x: Any
    y: Any


def _gen() -> Iterator[int]:
    yield 1


def _cycle(value: Any) -> Any:
    box: list[Any] = [value]
    box.append(box)
    d: dict[str, Any] = {"v": value}
    d["self"] = d
    return [box, d]


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


HUGE = "Z" * 300_000
#: Factories (a fresh object per example; hypothesis only ever reprs the functions).
EVIL: list[Callable[[], Any]] = [
    lambda: ExplodingRepr(),
    lambda: ExplodingAttrs(),
    lambda: LyingSequence([1, 2]),
    lambda: ExplodingMapping(a=1),
    lambda: WeirdStr("weird"),
    lambda: ExplodingModel(),
    lambda: ExplodingError(),
    lambda: ValueError("plain"),
    lambda: _gen(),
    lambda: object(),
    lambda: type,
    lambda: print,
    lambda: _deep(500),
    lambda: HUGE,
    lambda: "\ud800 lone surrogate \udfff",
    lambda: float("nan"),
    lambda: float("-inf"),
    lambda: 10**400,
    lambda: -(2**64),
    lambda: b"\xff\xfe\x00raw",
    lambda: bytearray(b"x" * 5000),
    lambda: memoryview(b"mv"),
    lambda: Decimal("NaN"),
    lambda: complex(1, 2),
    lambda: dt.timedelta(days=-1),
    lambda: uuid.UUID(int=5),
    lambda: {1, 2, 3},
    lambda: frozenset({"a", None}),
    lambda: range(10**9),
]

text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
keys = st.one_of(
    text,
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(),
    st.tuples(st.integers(), text),
    st.just(HostileKey()),
    st.just(WeirdStr("k")),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63),
    st.floats(),  # NaN and infinities included
    text,
    st.binary(max_size=40),
    st.datetimes(),
    st.dates(),
    st.uuids(),
    st.decimals(),
    st.complex_numbers(),
    st.sampled_from(EVIL).map(lambda make: make()),
)


def _containers(children: Any) -> Any:
    return st.one_of(
        st.lists(children, max_size=6),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=4),
        st.builds(Point, children, children),
        st.builds(_cycle, children),
        st.builds(lambda c: ExplodingMapping(v=c), children),
    )


hostile = st.recursive(leaves, _containers, max_leaves=8)
hostile_dicts = st.dictionaries(keys, hostile, max_size=4)
hostile_tags = st.one_of(st.none(), st.lists(st.one_of(text, hostile), max_size=5), hostile)


# --------------------------------------------------------------------------- capture + checks


class Captured:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def enqueue(self, client: IngestClient, item: Any) -> bool:
        event = materialize(item)  # built at once, as the worker would
        if event is not None:
            self.events.append(event)
        return True


@contextmanager
def captured() -> Iterator[Captured]:
    cap = Captured()

    def enqueue(self: IngestClient, event: dict[str, Any]) -> bool:
        return cap.enqueue(self, event)

    with mock.patch.object(IngestClient, "enqueue", enqueue):
        ARMED[0], RAISED[0] = True, 0
        try:
            yield cap
        finally:
            ARMED[0] = False


def check_events(events: list[dict[str, Any]]) -> None:
    limit = CAPS["max_event_bytes"]
    for event in events:
        json.dumps(event, allow_nan=False)  # valid JSON as queued (no NaN, no objects)
        wire = {**event, "timestamp": iso_utc(event["timestamp"])}
        RunEvent.model_validate(wire)
        data = encode_event(event, limit)
        assert data is not None, "an event was dropped instead of cut"
        assert len(data) <= limit
        RunEvent.model_validate(json.loads(data))
    stats["events"] += len(events)


stats = {"events": 0}


def assert_complete(events: list[dict[str, Any]], expected: set[str]) -> None:
    """Exactly these runs were started, and each one ended (or failed) exactly once."""
    starts = [e["runId"] for e in events if e["event"] == "start"]
    ends = [e["runId"] for e in events if e["event"] in ("end", "error")]
    assert sorted(starts) == sorted(ends) == sorted(expected)


# --------------------------------------------------------------------------- LangChain


@pytest.fixture(scope="module")
def lc_handler() -> LunaryCallbackHandler:
    return LunaryCallbackHandler(public_key=KEY, api_url=URL, **CAPS)


@hyp(EXAMPLES["lc_callbacks"])
@given(
    inputs=hostile,
    outputs=hostile,
    serialized=st.one_of(st.none(), hostile_dicts, hostile),
    metadata=st.one_of(st.none(), hostile_dicts),
    tags=hostile_tags,
    name=st.one_of(st.none(), text, hostile),
    kind=st.sampled_from(["chain", "tool", "retriever", "llm", "chat", "error"]),
)
def test_langchain_callbacks_called_with_hostile_values(
    lc_handler: LunaryCallbackHandler,
    inputs: Any,
    outputs: Any,
    serialized: Any,
    metadata: Any,
    tags: Any,
    name: Any,
    kind: str,
) -> None:
    h = lc_handler
    root, child = uuid.uuid4(), uuid.uuid4()
    common = {"tags": tags, "metadata": metadata, "name": name}
    open_before = h.tracer.open_runs()
    with captured() as cap:
        h.on_chain_start(serialized, inputs, run_id=root, parent_run_id=None, **common)
        if kind == "chain":
            h.on_chain_start(serialized, inputs, run_id=child, parent_run_id=root, **common)
            h.on_chain_end(outputs, run_id=child, inputs=inputs)
        elif kind == "tool":
            h.on_tool_start(
                serialized,
                inputs,
                run_id=child,
                parent_run_id=root,
                inputs=inputs,
                tool_call_id=outputs,
                **common,
            )
            h.on_tool_end(outputs, run_id=child)
        elif kind == "retriever":
            h.on_retriever_start(serialized, inputs, run_id=child, parent_run_id=root, **common)
            h.on_retriever_end(outputs, run_id=child)
        elif kind == "llm":
            h.on_llm_start(
                serialized,
                [inputs, "p"],
                run_id=child,
                parent_run_id=root,
                invocation_params=metadata,
                **common,
            )
            h.on_llm_new_token("t", run_id=child)
            # model_construct: LangChain's own validators would refuse such content
            message = AIMessage.model_construct(content=outputs, response_metadata=metadata or {})
            generation = ChatGeneration.model_construct(message=message, text="")
            result = LLMResult.model_construct(
                generations=[[generation]], llm_output={"token_usage": outputs}
            )
            h.on_llm_end(result, run_id=child)
        elif kind == "chat":
            h.on_chat_model_start(
                serialized,
                [[inputs]],
                run_id=child,
                parent_run_id=root,
                invocation_params=outputs,
                **common,
            )
            h.on_llm_error(ExplodingError(), run_id=child)
        else:
            h.on_tool_start(serialized, "x", run_id=child, parent_run_id=root, **common)
            h.on_custom_event("ev", outputs, run_id=root)
            h.on_tool_error(ExplodingError(), run_id=child)
        h.on_chain_end(outputs, run_id=root)
    check_events(cap.events)
    if not RAISED[0]:  # hostile data, not hostile objects: the trace is complete too
        assert h.tracer.open_runs() == open_before  # nothing leaks in the open-run map
        assert_complete(cap.events, {str(root), str(child)})


def _const(value: Any) -> Any:
    return lambda _: value


@hyp(EXAMPLES["lc_chain"])
@given(value=hostile, output=hostile, metadata=st.dictionaries(text, hostile, max_size=4))
def test_a_runnable_chain_fed_hostile_values(
    lc_handler: LunaryCallbackHandler, value: Any, output: Any, metadata: Any
) -> None:
    chain = RunnableLambda(_const(output), name="Produce") | RunnableLambda(
        lambda x: x, name="Pass"
    )
    root = uuid.uuid4()
    open_before = lc_handler.tracer.open_runs()
    with captured() as cap:
        result = chain.invoke(
            value,
            config={
                "callbacks": [lc_handler],
                "run_id": root,
                "metadata": metadata,
                "tags": ["hostile"],
            },
        )
    assert result is output
    check_events(cap.events)
    if not RAISED[0]:
        assert lc_handler.tracer.open_runs() == open_before
        roots = {e["runId"] for e in cap.events if e["event"] == "start" and "parentRunId" not in e}
        assert roots == {str(root)}
        starts = {e["runId"] for e in cap.events if e["event"] == "start"}
        assert len(starts) == 3
        assert_complete(cap.events, starts)


# --------------------------------------------------------------------------- LlamaIndex

_TYPES = [
    CBEventType.QUERY,
    CBEventType.RETRIEVE,
    CBEventType.LLM,
    CBEventType.FUNCTION_CALL,
    CBEventType.AGENT_STEP,
    CBEventType.SYNTHESIZE,
    CBEventType.EMBEDDING,
]
payload_keys = st.sampled_from([p.value for p in EventPayload])
payloads = st.one_of(st.none(), hostile, st.dictionaries(payload_keys, hostile, max_size=6))


@pytest.fixture(scope="module")
def li_handler() -> LlamaCallbackHandler:
    return LlamaCallbackHandler(public_key=KEY, api_url=URL, **CAPS)


@hyp(EXAMPLES["li_callbacks"])
@given(
    kind=st.sampled_from(_TYPES),
    start=payloads,
    end=payloads,
    fail=st.booleans(),
)
def test_llama_index_callback_handler_fed_hostile_payloads(
    li_handler: LlamaCallbackHandler, kind: CBEventType, start: Any, end: Any, fail: bool
) -> None:
    h = li_handler
    root, child = str(uuid.uuid4()), str(uuid.uuid4())
    if fail:
        end = {EventPayload.EXCEPTION.value: ExplodingError()}
    with captured() as cap:
        h.start_trace(root)
        h.on_event_start(
            CBEventType.QUERY,
            {EventPayload.QUERY_STR.value: start},
            event_id=root,
            parent_id="root",
        )
        h.on_event_start(kind, start, event_id=child, parent_id=root)
        h.on_event_end(kind, end, event_id=child)
        h.on_event_end(CBEventType.QUERY, end, event_id=root)
        h.end_trace(root)
    check_events(cap.events)
    if not RAISED[0]:
        assert_complete(cap.events, {e["runId"] for e in cap.events if e["event"] == "start"})
        assert str(root) in {e["runId"] for e in cap.events}


_dispatcher = get_dispatcher("tests.hostile")


@_dispatcher.span  # type: ignore[misc]
def hostile_step(value: Any, *, extra: Any = None, output: Any = None) -> Any:
    return inner_step(output)


@_dispatcher.span  # type: ignore[misc]
def inner_step(output: Any) -> Any:
    return output


@_dispatcher.span  # type: ignore[misc]
def failing_step(value: Any) -> Any:
    raise ValueError("step failed")  # (LlamaIndex's dispatcher itself calls str() on it)


@pytest.fixture(scope="module")
def li_instrumented() -> Iterator[None]:
    root = get_dispatcher()
    before = (list(root.span_handlers), list(root.event_handlers))
    instrument(public_key=KEY, api_url=URL, **CAPS)
    try:
        yield
    finally:
        uninstrument()
        root.span_handlers[:], root.event_handlers[:] = before


@hyp(EXAMPLES["li_spans"])
@given(value=hostile, extra=hostile, output=hostile, fail=st.booleans())
def test_llama_index_instrumentation_fed_hostile_values(
    li_instrumented: None, value: Any, extra: Any, output: Any, fail: bool
) -> None:
    with captured() as cap:
        if fail:
            with pytest.raises(ValueError):
                failing_step(value)
        else:
            assert hostile_step(value, extra=extra, output=output) is output
    check_events(cap.events)
    if not RAISED[0]:
        started = {e["runId"] for e in cap.events if e["event"] == "start"}
        assert len(started) == (1 if fail else 2)
        assert_complete(cap.events, started)


def test_the_budget_adds_up_to_ten_thousand() -> None:
    assert TOTAL_EXAMPLES >= 10_000


# --------------------------------------------------------------------------- known gaps
# A translator that raises on a hostile user object must not lose the run's event: the
# translators are `tolerant` (they fall back to the raw value, snapshotted safely), so the
# run is still started and ended.


def test_langchain_chain_end_is_kept_when_the_output_mapping_raises(
    lc_handler: LunaryCallbackHandler,
) -> None:
    rid = uuid.uuid4()
    output = ExplodingMapping(answer=42)
    with captured() as cap:
        RunnableLambda(lambda _: output, name="Lazy").invoke(
            "q", config={"callbacks": [lc_handler], "run_id": rid}
        )
    check_events(cap.events)
    assert [e["event"] for e in cap.events if e["runId"] == str(rid)] == ["start", "end"]


def test_langchain_chat_model_start_is_kept_when_invocation_params_raise(
    lc_handler: LunaryCallbackHandler,
) -> None:
    root, llm = uuid.uuid4(), uuid.uuid4()
    with captured() as cap:
        lc_handler.on_chain_start(None, {"q": 1}, run_id=root)
        lc_handler.on_chat_model_start(
            None,
            [[]],
            run_id=llm,
            parent_run_id=root,
            invocation_params=ExplodingMapping(model="m"),
        )
        lc_handler.on_llm_end(LLMResult(generations=[]), run_id=llm)
        lc_handler.on_chain_end({"a": 1}, run_id=root)
    check_events(cap.events)
    assert_complete(cap.events, {str(root), str(llm)})


def test_llama_index_llm_end_is_kept_when_the_completion_cannot_be_printed(
    li_handler: LlamaCallbackHandler,
) -> None:
    root, llm = str(uuid.uuid4()), str(uuid.uuid4())
    with captured() as cap:
        li_handler.on_event_start(
            CBEventType.QUERY, {EventPayload.QUERY_STR.value: "q"}, event_id=root, parent_id="root"
        )
        li_handler.on_event_start(
            CBEventType.LLM, {EventPayload.PROMPT.value: "p"}, event_id=llm, parent_id=root
        )
        li_handler.on_event_end(
            CBEventType.LLM, {EventPayload.COMPLETION.value: ExplodingRepr()}, event_id=llm
        )
        li_handler.on_event_end(
            CBEventType.QUERY, {EventPayload.RESPONSE.value: "a"}, event_id=root
        )
    check_events(cap.events)
    assert_complete(cap.events, {root, llm})
