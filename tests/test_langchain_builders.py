"""Every callback's queued item fits its builder: the link between the two halves of the
LangChain handler (``callback.py`` queues ``(builder, run_id, parent_run_id, *args)``,
``builders.py`` is called with the rest) is checked here, not left to slot positions."""

from __future__ import annotations

import inspect
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from lunary_integrations.ingest import materialize
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.langchain.builders import NAMES, Builders

RUN, PARENT = uuid.uuid4(), uuid.uuid4()
START = {"run_id": RUN, "parent_run_id": PARENT, "tags": ["t"], "metadata": {"m": 1}}
RESPONSE = LLMResult(generations=[[ChatGeneration(message=AIMessage("ok"))]])

#: One call per callback that queues an item: (callback, positional args, keyword args).
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("on_chain_start", (None, {"q": "hi"}), {**START, "name": "chain"}),
    ("on_chain_end", ({"a": 1},), {"run_id": RUN, "inputs": {"q": "hi"}}),
    ("on_chain_error", (ValueError("bad"),), {"run_id": RUN}),
    (
        "on_chat_model_start",
        ({"name": "M"}, [[HumanMessage("hi")]]),
        {**START, "invocation_params": {"model": "gpt-x"}},
    ),
    ("on_llm_start", ({"name": "M"}, ["hi"]), {**START, "invocation_params": {"model": "m"}}),
    ("on_llm_end", (RESPONSE,), {"run_id": RUN}),
    ("on_llm_error", (ValueError("bad"),), {"run_id": RUN}),
    (
        "on_tool_start",
        ({"name": "mul"}, "{'a': 3}"),
        {**START, "inputs": {"a": 3}, "tool_call_id": "call_1"},
    ),
    ("on_tool_end", (12,), {"run_id": RUN}),
    ("on_tool_error", (ValueError("bad"),), {"run_id": RUN}),
    ("on_retriever_start", (None, "paris"), {**START, "name": "R"}),
    ("on_retriever_end", ([Document("doc")],), {"run_id": RUN}),
    ("on_retriever_error", (ValueError("bad"),), {"run_id": RUN}),
    ("on_agent_action", (SimpleNamespace(tool="t", tool_input="x", log="l"),), {"run_id": RUN}),
    ("on_agent_finish", (SimpleNamespace(log="done"),), {"run_id": RUN}),
    ("on_custom_event", ("progress", {"pct": 50}), {"run_id": RUN}),
    ("on_retry", (SimpleNamespace(attempt_number=2),), {"run_id": RUN}),
]


def queued_callbacks() -> set[str]:
    """The handler's callbacks written with the ``queued`` skeleton."""
    return {
        name
        for name, value in vars(LunaryCallbackHandler).items()
        if name.startswith("on_") and getattr(value, "__wrapped__", None) is not None
    }


def queue_of(handler: LunaryCallbackHandler) -> list[Any]:
    items: list[Any] = []

    class Capture:
        enabled = True

        def enqueue(self, item: Any) -> bool:
            items.append(item)
            return True

    handler._client = Capture()  # type: ignore[assignment]
    return items


def test_every_queued_callback_is_driven_here() -> None:
    assert {name for name, _, _ in CALLS} == queued_callbacks()


@pytest.mark.parametrize(("callback", "args", "kwargs"), CALLS, ids=[c[0] for c in CALLS])
def test_each_queued_item_binds_to_its_builders_signature(
    callback: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    handler = LunaryCallbackHandler(public_key="pk-builders", api_url="http://127.0.0.1:9")
    items = queue_of(handler)
    getattr(handler, callback)(*args, **kwargs)
    assert len(items) == 1, callback  # queued, not swallowed by the skeleton's guard
    build, *rest = items[0]
    assert getattr(build, "__self__", None) is handler._b  # a builder of this handler
    assert build.__name__ in NAMES
    inspect.signature(build).bind(*rest)  # TypeError if the slots do not fit
    assert rest[0] == RUN  # every item's run key is the callback's run id


def test_builders_are_bound_once_per_handler() -> None:
    builders = LunaryCallbackHandler()._b
    assert isinstance(builders, Builders)
    assert NAMES and all(getattr(builders, n) is getattr(builders, n) for n in NAMES)


STARTS = {"chain": 0, "llm": 3, "tool": 7, "retriever": 10}  # index in CALLS


def test_each_queued_item_builds_the_event_its_callback_means() -> None:
    """Built by a real tracer: each start opens a run; each end or error, after its start,
    closes it with an event of its kind; annotations land on the open run's end."""
    handler = LunaryCallbackHandler(public_key="pk-builders", api_url="http://127.0.0.1:9")
    items = queue_of(handler)

    def run(callback: str, args: tuple[Any, ...], kwargs: dict[str, Any], rid: Any) -> Any:
        getattr(handler, callback)(*args, **{**kwargs, "run_id": rid, "parent_run_id": None})
        return materialize(items.pop())

    for callback, args, kwargs in CALLS:
        kind = callback.split("_")[1]
        rid = uuid.uuid4()
        if callback.endswith("_start"):
            event = run(callback, args, kwargs, rid)
            assert event["event"] == "start" and event["runId"] == str(rid), callback
            continue
        opener = CALLS[STARTS.get(kind, 0)]
        run(*opener, rid)
        event = run(callback, args, kwargs, rid)
        if kind in STARTS:
            expected = "end" if callback.endswith("_end") else "error"
            assert event["event"] == expected and event["runId"] == str(rid), callback
        else:  # an annotation: nothing of its own, kept for the run's end
            assert event is None
            end = run("on_chain_end", ({"a": 1},), {}, rid)
            assert end["metadata"], callback
