"""Run attributes from LangChain's callback arguments: tags, metadata, user, run type.

LangChain and LangGraph add internal tags and metadata to every run (and children inherit
them); this module keeps what a user of the dashboard can act on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

HIDDEN_TAG = "langsmith:hidden"
_INTERNAL_TAG_PREFIXES = ("seq:step:", "graph:step:", "langsmith:", "retry:attempt:")

#: Metadata that is LangChain/LangGraph plumbing, or that is sent in its own field.
_DROPPED_METADATA = frozenset(
    {
        "lc_versions",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
        "checkpoint_ns",
        "user_id",
        "userId",
        "user_props",
        "userProps",
    }
)

#: LangGraph's control-flow exceptions (matched by name: langgraph may not be installed).
#: ``GraphInterrupt``, ``NodeInterrupt`` and ``ParentCommand`` derive from ``GraphBubbleUp``.
_CONTROL_FLOW = frozenset({"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand"})


def split_tags(tags: Sequence[str] | None) -> tuple[list[str], bool]:
    """``(user tags, hidden)``: the run's tags without LangChain's internal ones
    (``seq:step:1``, ``graph:step:2``, ``langsmith:*``...), and whether it is
    ``langsmith:hidden``. One pass: this runs for every run."""
    if not tags or not isinstance(tags, (list, tuple)):
        return [], False
    kept = [t for t in tags if isinstance(t, str) and not t.startswith(_INTERNAL_TAG_PREFIXES)]
    return kept, len(kept) != len(tags) and HIDDEN_TAG in tags


def split_metadata(metadata: Mapping[str, Any] | None) -> tuple[dict[str, Any], Any, Any]:
    """``(metadata worth storing, user_id, user_props)``.

    Dropped: ``ls_*`` internals (they become params), LangGraph plumbing, and the user fields
    (sent as ``userId``/``userProps``, either spelling). ``langgraph_node``,
    ``langgraph_step``, ``thread_id`` and ``session_id`` stay."""
    if not metadata or not isinstance(metadata, (dict, Mapping)):  # dict: skips the ABC check
        return {}, None, None
    kept = {
        k: v
        for k, v in metadata.items()
        if k not in _DROPPED_METADATA and not (isinstance(k, str) and k.startswith(("ls_", "__")))
    }
    uid = metadata.get("user_id")
    if uid is None:
        uid = metadata.get("userId")
    props = metadata.get("user_props")
    if props is None:
        props = metadata.get("userProps")
    return kept, uid, props if isinstance(props, (dict, Mapping)) else None


def chain_run_type(name: str | None, metadata: Mapping[str, Any] | None, parent_run_id: Any) -> str:
    """``agent`` for agent roots, else ``chain``.

    Agent roots are: a LangGraph graph that is not nested in another graph's node (LangGraph
    marks its graph run with ``ls_integration='langgraph'``; runs inside a node inherit
    ``langgraph_node``), a legacy ``AgentExecutor``, and a root run whose metadata names an
    agent (``agent_name``, or ``lc_agent_name`` set by ``create_agent``).
    """
    if name == "AgentExecutor":
        return "agent"
    if isinstance(metadata, (dict, Mapping)):
        if "langgraph_node" in metadata:
            return "chain"
        if metadata.get("ls_integration") == "langgraph":
            return "agent"
        if parent_run_id is None and (
            metadata.get("agent_name") is not None or metadata.get("lc_agent_name") is not None
        ):
            return "agent"
    if parent_run_id is None and name == "LangGraph":
        return "agent"
    return "chain"


def is_control_flow(error: BaseException) -> bool:
    """LangGraph interrupts and commands travel as exceptions; they are not failures."""
    return any(cls.__name__ in _CONTROL_FLOW for cls in type(error).__mro__)


def control_flow_output(error: BaseException) -> dict[str, Any]:
    """What an interrupted run ends with: the exception's kind and what it carries
    (the ``Interrupt`` values, or the ``Command`` sent to the parent graph)."""
    out: dict[str, Any] = {"interrupted": type(error).__name__}
    if error.args:
        out["value"] = error.args[0] if len(error.args) == 1 else list(error.args)
    return out


__all__ = [
    "HIDDEN_TAG",
    "chain_run_type",
    "control_flow_output",
    "is_control_flow",
    "split_metadata",
    "split_tags",
]
