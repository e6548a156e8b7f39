"""LangGraph graphs traced into the local collector: agent roots, tool loops, interrupts."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt

from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.local import LocalLunary

from .lc_fakes import TOOLS, ToolCallingFakeModel
from .lc_helpers import children, no_duplicates_sent, one, plain, roots, stored


def tool_loop_graph(**compile_kwargs: Any) -> Any:
    model = ToolCallingFakeModel().bind_tools(TOOLS)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(**compile_kwargs)


def test_tool_calling_loop(lunary_local: LocalLunary) -> None:
    app = tool_loop_graph()
    result = app.invoke(
        {"messages": [HumanMessage("What is 3 times 4?")]},
        config={
            "callbacks": [LunaryCallbackHandler()],
            "metadata": {"user_id": "u7"},
            "configurable": {"thread_id": "t-1"},
        },
    )
    assert result["messages"][-1].content == "The answer is 12."
    runs = stored(lunary_local)

    (root,) = roots(runs)
    assert (root["type"], root["name"]) == ("agent", "LangGraph")
    assert root["user"]["externalId"] == "u7"
    assert root["metadata"]["threadId"] == "t-1"
    assert [m["role"] for m in plain(root["output"])["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]

    nodes = sorted(children(runs)[root["id"]], key=lambda r: r["metadata"]["langgraphStep"])
    assert [(n["type"], n["name"]) for n in nodes] == [
        ("chain", "agent"),
        ("chain", "tools"),
        ("chain", "agent"),
    ]
    assert [n["metadata"]["langgraphNode"] for n in nodes] == ["agent", "tools", "agent"]
    for node in nodes:
        assert not {"langgraphTriggers", "langgraphPath", "checkpointNs"} & set(node["metadata"])
        assert not [t for t in node["tags"] or [] if t.startswith("graph:step")]

    first, second = sorted((r for r in runs if r["type"] == "llm"), key=lambda r: r["createdAt"])
    for llm, node in ((first, nodes[0]), (second, nodes[2])):
        assert llm["name"] == "fake-tools-1"
        assert llm["parentRunId"] == node["id"]
        tools = llm["params"]["tools"]
        assert tools[0]["type"] == "function" and tools[0]["function"]["name"] == "multiply"

    call = plain(first["output"])["toolCalls"][0]
    assert call == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "multiply", "arguments": '{"a": 3, "b": 4}'},
    }
    assert json.loads(call["function"]["arguments"]) == {"a": 3, "b": 4}
    assert first["tokens"]["prompt"] == 20 and first["tokens"]["completion"] == 5

    tool = one(runs, type="tool")
    assert tool["name"] == "multiply"
    assert tool["parentRunId"] == nodes[1]["id"]
    assert plain(tool["input"]) == {"a": 3, "b": 4}
    assert tool["output"] == "12"
    assert tool["metadata"]["toolCallId"] == "call_1"

    history = plain(second["input"])
    assert [m["role"] for m in history] == ["user", "assistant", "tool"]
    assert history[1]["toolCalls"][0]["function"]["arguments"] == '{"a": 3, "b": 4}'
    assert history[2] == {
        "role": "tool",
        "content": "12",
        "toolCallId": "call_1",
        "name": "multiply",
    }
    assert plain(second["output"]) == {"role": "assistant", "content": "The answer is 12."}

    assert all(r["status"] == "success" for r in runs)
    no_duplicates_sent(2 * len(runs))


def test_interrupt_is_not_an_error(lunary_local: LocalLunary) -> None:
    def ask(state: dict[str, Any]) -> dict[str, Any]:
        answer = interrupt({"question": "approve?"})
        return {"answer": answer}

    graph = StateGraph(dict)  # type: ignore[type-var]
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", END)
    app = graph.compile(checkpointer=InMemorySaver(), name="approval_flow")
    config: Any = {"callbacks": [LunaryCallbackHandler()], "configurable": {"thread_id": "t-9"}}

    paused = app.invoke({"answer": None}, config=config)
    assert "__interrupt__" in paused
    runs = stored(lunary_local)
    assert [r for r in runs if r["status"] != "success"] == []
    (root,) = roots(runs)
    assert (root["type"], root["name"]) == ("agent", "approval_flow")  # compile(name=...)
    node = one(runs, name="ask")
    assert node["output"]["interrupted"] == "GraphInterrupt"
    assert "approve?" in json.dumps(node["output"]["value"])

    resumed = app.invoke(Command(resume="yes"), config=config)
    assert resumed["answer"] == "yes"
    runs = stored(lunary_local)
    assert len(roots(runs)) == 2  # the resume is a trace of its own
    assert [r for r in runs if r["status"] != "success"] == []
