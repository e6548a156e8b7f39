"""Chain, tool and retriever inputs/outputs as the values worth showing in Lunary.

Only the LangChain types the dashboard renders better in another shape are converted:
messages become OpenAI messages, prompt values their messages or text, documents
``{pageContent, metadata}``, tool messages their content. Everything else is handed to the
serializer as it is, and containers are looked into one level deep (a LangGraph state is a
dict whose ``messages`` is a list of messages), so the cost stays proportional to the top level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue

from ..serialize import truncate_text
from ..tracer import tolerant
from .messages import message_to_openai, messages_to_openai

#: Retrieved documents kept per run, and characters kept per document (the serializer then
#: caps the whole field): enough to debug retrieval, not a copy of the index.
MAX_DOCUMENTS = 50
MAX_DOCUMENT_CHARS = 8_000


@tolerant(lambda value: value)  # the serializer snapshots the raw value safely
def render(value: Any) -> Any:
    """A chain input or output, with LangChain types rendered (one level into containers)."""
    converted = _render_one(value)
    if converted is not _SAME:
        return converted
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for key, item in value.items():
            new = _render_one(item)
            if new is _SAME and isinstance(item, list) and item:
                new = _render_list(item)
            if new is not _SAME:
                if out is None:
                    out = dict(value)  # copy only when something changes
                out[key] = new
        return value if out is None else out
    if isinstance(value, list) and value:
        rendered = _render_list(value)
        return value if rendered is _SAME else rendered
    return value


_SAME: Any = object()
#: Types that are never rendered differently: skips the (ABC-backed, slower) class checks.
_PLAIN = frozenset({str, int, float, bool, type(None), dict, list, tuple})


def _render_one(value: Any) -> Any:
    if type(value) in _PLAIN:
        return _SAME
    if isinstance(value, BaseMessage):
        return message_to_openai(value)
    if isinstance(value, PromptValue):
        if isinstance(value, ChatPromptValue):
            return messages_to_openai(value.messages)
        return value.to_string()
    if isinstance(value, Document):
        return document(value)
    return _SAME


def _render_list(items: list[Any]) -> Any:
    first = items[0]
    if isinstance(first, BaseMessage):
        return messages_to_openai(items)
    if isinstance(first, Document):
        return documents(items)
    return _SAME


def document(doc: Any) -> dict[str, Any]:
    content = getattr(doc, "page_content", None)
    out: dict[str, Any] = {
        "pageContent": truncate_text(content, MAX_DOCUMENT_CHARS)
        if isinstance(content, str)
        else content
    }
    metadata = getattr(doc, "metadata", None)
    if metadata:
        out["metadata"] = metadata
    doc_id = getattr(doc, "id", None)
    if doc_id is not None:
        out["id"] = doc_id
    return out


def documents(docs: Any) -> Any:
    """A retriever's output: the first :data:`MAX_DOCUMENTS` documents, each capped."""
    if not isinstance(docs, Sequence) or isinstance(docs, (str, bytes)):
        return render(docs)
    items = [document(d) if isinstance(d, Document) else d for d in docs[:MAX_DOCUMENTS]]
    if len(docs) > MAX_DOCUMENTS:
        items.append(f"... {len(docs) - MAX_DOCUMENTS} more documents")
    return items


def tool_output(output: Any) -> Any:
    """A tool's result; invoked with a ``ToolCall`` it arrives wrapped in a ``ToolMessage``."""
    if isinstance(output, ToolMessage):
        return output.content
    return render(output)


__all__ = ["MAX_DOCUMENTS", "MAX_DOCUMENT_CHARS", "document", "documents", "render", "tool_output"]
