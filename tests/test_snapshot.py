"""Snapshots taken on the caller's thread, read later by the ingest worker: what the caller
mutates after a callback returns must not reach the trace."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage

from lunary_integrations.ingest import materialize
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.langchain.callback import VALUE_TYPES
from lunary_integrations.snapshot import MAX_NODES, Snapshotter

snap = Snapshotter(VALUE_TYPES, 65_536)


class Opaque:
    def __init__(self) -> None:
        self.items = ["a"]


def mutate_everything(value: Any, depth: int = 0) -> None:
    """Append to / overwrite every list and dict reachable in ``value``."""
    if depth > 40:
        return
    if isinstance(value, list):
        for item in list(value):
            mutate_everything(item, depth + 1)
        value.append("mutated")
    elif isinstance(value, dict):
        for item in list(value.values()):
            mutate_everything(item, depth + 1)
        value["mutated"] = True
    elif isinstance(value, tuple):
        for item in value:
            mutate_everything(item, depth + 1)


json_like = st.recursive(
    st.one_of(st.text(max_size=5), st.integers(), st.none(), st.booleans(), st.floats()),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=4), children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=json_like)
def test_later_mutation_never_reaches_a_snapshot(value: Any) -> None:
    expected = copy.deepcopy(value)
    taken = snap(value)
    mutate_everything(value)
    assert taken == expected or expected != expected  # NaN never equals itself


@settings(max_examples=200, deadline=None)
@given(arguments=st.dictionaries(st.sampled_from(["q", "nodes", "self", "ctx"]), json_like))
def test_call_arguments_are_copied_and_plumbing_left_out(arguments: dict[str, Any]) -> None:
    skip = frozenset({"self", "ctx"})
    expected = {k: copy.deepcopy(v) for k, v in arguments.items() if k not in skip}
    taken = snap.arguments(arguments, skip)
    mutate_everything(arguments)
    shown = {k: v for k, v in taken.items() if k not in skip}  # kept when all are scalars
    assert taken is not arguments
    assert shown == expected or expected != expected  # NaN never equals itself


def test_arguments_of_kept_values_are_one_plain_copy() -> None:
    question, message = "hi?", HumanMessage("hi")
    arguments = {"q": question, "message": message, "self": Opaque()}
    taken = snap.arguments(arguments, frozenset({"self"}))
    arguments["q"] = "changed"
    assert taken["q"] is question and taken["message"] is message


def test_common_shapes_are_copied_at_every_level() -> None:
    state = {"messages": [HumanMessage("hi")], "step": 1}  # a graph's state
    batches = [[HumanMessage("a"), AIMessage("b")]]  # a chat model's input
    flat = {"q": "hi?"}
    taken = [snap(state), snap(batches), snap(flat)]
    state["messages"].append(AIMessage("later"))
    state["step"] = 2
    batches[0].append(HumanMessage("later"))
    flat["q"] = "changed"
    assert taken[0] == {"messages": [HumanMessage("hi")], "step": 1}
    assert len(taken[1][0]) == 2
    assert taken[2] == {"q": "hi?"}


def test_values_that_cannot_change_are_kept_by_reference() -> None:
    message, text, key = HumanMessage("hi"), "x" * 100, uuid.uuid4()
    assert snap(message) is message and snap(text) is text and snap(key) is key
    kept = (1, "a", message)
    assert snap(kept) is kept  # a tuple of kept values is immutable already


def test_other_objects_are_serialized_at_once() -> None:
    obj = Opaque()
    taken = snap({"obj": obj})
    obj.items.append("later")
    assert taken == {"obj": {"items": ["a"]}}


def test_a_huge_or_cyclic_value_costs_no_more_than_the_bounded_serializer() -> None:
    huge = [[i, str(i)] for i in range(MAX_NODES)]
    taken = snap(huge)
    assert isinstance(taken, list) and len(taken) <= 1001  # to_jsonable's width limit
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    assert snap(cyclic) == [1, "<cycle>"]


def test_the_handler_sends_inputs_as_they_were_at_the_callback() -> None:
    # The worker builds events later: queue items without building them, mutate, then build.
    queued: list[Any] = []

    class Later:
        enabled = True

        def enqueue(self, item: Any) -> bool:
            queued.append(item)
            return True

    handler = LunaryCallbackHandler(public_key="pk-snapshot", api_url="http://127.0.0.1:9")
    handler._client = Later()  # type: ignore[assignment]
    run_id = uuid.uuid4()
    state = {"messages": [HumanMessage("hi")], "notes": {"n": 1}}
    handler.on_chain_start(None, state, run_id=run_id, name="node", tags=["t"], metadata={"m": 1})
    state["messages"].append(AIMessage("appended by the node"))
    state["notes"]["n"] = 2
    output = {"answer": ["a"]}
    handler.on_chain_end(output, run_id=run_id)
    output["answer"].append("changed after the end")
    start, end = (materialize(item) for item in queued)
    assert start is not None and end is not None
    assert start["input"] == {"messages": [{"role": "user", "content": "hi"}], "notes": {"n": 1}}
    assert end["output"] == {"answer": ["a"]}
