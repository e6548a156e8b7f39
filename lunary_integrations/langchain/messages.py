"""LangChain messages -> OpenAI-format message dicts (what Lunary renders for ``llm`` runs).

Pure and cheap: one small dict per message, content passed through untouched (strings and
multimodal block lists alike; the serializer snapshots them), dispatch on the ``type``
string rather than ``isinstance`` chains.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

#: ``BaseMessage.type`` -> OpenAI role. Chunk types appear when a caller feeds streamed chunks.
_ROLES = {
    "human": "user",
    "HumanMessageChunk": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "SystemMessageChunk": "system",
    "developer": "developer",
    "tool": "tool",
    "ToolMessageChunk": "tool",
    "function": "function",
    "FunctionMessageChunk": "function",
}
#: Roles a ``ChatMessage(role=...)`` may use in LangChain's own vocabulary.
_CHAT_ROLES = {"human": "user", "ai": "assistant", "user": "user", "assistant": "assistant"}


def message_to_openai(message: BaseMessage) -> dict[str, Any]:
    """One message as ``{role, content, tool_calls?, tool_call_id?, name?}``."""
    mtype = message.type
    role = _ROLES.get(mtype)
    if role is None:
        raw_role = getattr(message, "role", None)  # ChatMessage; anything else keeps its type
        role = _CHAT_ROLES.get(raw_role, raw_role) if isinstance(raw_role, str) else str(mtype)
    out: dict[str, Any] = {"role": role, "content": message.content}
    if role == "assistant":
        calls = tool_calls_to_openai(message)
        if calls:
            out["tool_calls"] = calls
        function_call = message.additional_kwargs.get("function_call")
        if function_call:  # legacy OpenAI functions API
            out["function_call"] = function_call
    elif role == "tool":
        out["tool_call_id"] = getattr(message, "tool_call_id", None)
        status = getattr(message, "status", None)
        if status == "error":
            out["status"] = status
    if message.name:
        out["name"] = message.name
    return out


def tool_calls_to_openai(message: BaseMessage) -> list[dict[str, Any]]:
    """``AIMessage.tool_calls`` (parsed, args a dict) as OpenAI tool calls (args a JSON string).

    Falls back to the provider's raw ``additional_kwargs['tool_calls']`` (already OpenAI
    shaped) for messages built without parsed calls; malformed calls keep their raw text.
    """
    parsed: Sequence[Mapping[str, Any]] = getattr(message, "tool_calls", None) or ()
    invalid: Sequence[Mapping[str, Any]] = getattr(message, "invalid_tool_calls", None) or ()
    if not parsed and not invalid:
        raw = message.additional_kwargs.get("tool_calls")
        return list(raw) if isinstance(raw, list) else []
    calls = [_call(c.get("id"), c.get("name"), dumps_args(c.get("args"))) for c in parsed]
    calls.extend(_call(c.get("id"), c.get("name"), c.get("args") or "") for c in invalid)
    return calls


def _call(call_id: Any, name: Any, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def dumps_args(args: Any) -> str:
    """Tool arguments as the JSON string OpenAI sends (non-JSON values as their ``str``)."""
    if isinstance(args, str):
        return args
    try:
        return json.dumps(args if args is not None else {}, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # circular or NaN-laden arguments
        return str(args)


def messages_to_openai(messages: Iterable[Any]) -> list[Any]:
    """A message list; items that are not messages (dicts, tuples, ...) pass through."""
    return [message_to_openai(m) if isinstance(m, BaseMessage) else m for m in messages]


def chat_input(messages: Sequence[Sequence[Any]]) -> Any:
    """``on_chat_model_start``'s ``messages``: LangChain calls it with one list per run."""
    if len(messages) == 1:
        return messages_to_openai(messages[0])
    return [messages_to_openai(batch) for batch in messages]


def text_input(prompts: Sequence[Any]) -> Any:
    """``on_llm_start``'s prompts for a completion model: the prompt text itself."""
    return prompts[0] if len(prompts) == 1 else list(prompts)


__all__ = [
    "chat_input",
    "dumps_args",
    "message_to_openai",
    "messages_to_openai",
    "text_input",
    "tool_calls_to_openai",
]
