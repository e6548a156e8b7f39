"""A LangGraph tool-calling agent (``StateGraph`` + ``ToolNode`` + ``tools_condition``) traced
with a ``LunaryCallbackHandler``.

    python examples/langgraph_agent.py

The compiled graph is the trace's root ``agent`` run; each node is a chain run, the model calls
are ``llm`` runs (with the tool calls the model asked for) and each tool is a ``tool`` run.
Uses an offline tool-calling model reporting ``gpt-4o-mini`` usage (a real ChatOpenAI when
``OPENAI_API_KEY`` is set) and the embedded local collector unless ``LUNARY_PUBLIC_KEY`` is set.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import chat_model, lunary_target, print_trace
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import lunary_integrations
from lunary_integrations.langchain import LunaryCallbackHandler


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def build_agent() -> Any:
    model = chat_model().bind_tools([multiply])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([multiply]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)  # tool calls? -> "tools", else end
    graph.add_edge("tools", "agent")
    return graph.compile(name="math_agent")


def main() -> int:
    with lunary_target():
        run_id = uuid.uuid4()
        handler = LunaryCallbackHandler(tags=["examples", "langgraph"], user_id="user-3")
        result = build_agent().invoke(
            {"messages": [("user", "Please multiply 6 and 7")]},
            config={"callbacks": [handler], "run_id": run_id},
        )
        print(f"Agent: {result['messages'][-1].content}")

        lunary_integrations.flush()
        print("Stored trace:")
        print_trace(run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
