"""LangChain messages in the serializer: registered by ``lunary_integrations.langchain``."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")

import lunary_integrations.langchain  # noqa: F401  (registers the message handler)
from lunary_integrations.serialize import to_jsonable


def test_langchain_messages() -> None:
    msgs = pytest.importorskip("langchain_core.messages")
    out = to_jsonable([msgs.SystemMessage("be nice"), msgs.HumanMessage("hi", id="1")])
    assert out == [
        {"content": "be nice", "type": "system"},
        {"content": "hi", "type": "human", "id": "1"},
    ]
    ai = msgs.AIMessage("", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c1"}])
    assert to_jsonable(ai) == {
        "content": "",
        "type": "ai",
        "tool_calls": [{"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}],
    }
