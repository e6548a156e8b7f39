"""A :class:`Run` as text a model can read, plus flat metadata, for retrievers and readers.

* llm, chat and thread runs (and any input/output that is a list of chat messages) read as a
  conversation, one message per line: ``system: ...``, ``user: ...``, ``assistant: ...``;
  tool calls as ``assistant: calls multiply({"a": 3, "b": 4})`` and tool results as
  ``tool (multiply): 12``.
* Other runs read as ``input: ...`` / ``output: ...`` (JSON for structured values).
* An error adds ``error: <message>``.

The formatter is pluggable: retrievers and the reader take ``formatter: Callable[[Run], str]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ..events import Run

Formatter = Callable[[Run], str]

_CONVERSATION_TYPES = frozenset(("llm", "chat", "thread"))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _is_message(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("role"), str)


def _messages(value: Any) -> list[Mapping[str, Any]] | None:
    """The chat messages in ``value`` (one message or a list of them), else None."""
    if _is_message(value):
        return [value]
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return value
    return None


def _content(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # multimodal parts: keep the text, name the rest
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, Mapping) and "type" in part:
                parts.append(f"[{part['type']}]")
            else:
                parts.append(_text(part))
        return " ".join(parts)
    return _text(content)


def _tool_call(call: Mapping[str, Any]) -> str:
    inner = call.get("function")
    function: Mapping[str, Any] = inner if isinstance(inner, Mapping) else call
    name = function.get("name", "tool")
    arguments = function.get("arguments", "")
    return f"calls {name}({_text(arguments)})"


def message_lines(message: Mapping[str, Any]) -> list[str]:
    """One OpenAI-format message (as stored: camel-cased keys) as text lines."""
    role = message.get("role", "message")
    if role in ("tool", "function"):
        label = message.get("name") or message.get("toolCallId") or message.get("tool_call_id")
        role = f"{role} ({label})" if label else role
    lines = []
    text = _content(message.get("content"))
    calls = message.get("toolCalls") or message.get("tool_calls") or []
    legacy = message.get("functionCall") or message.get("function_call")
    if legacy:
        calls = [*calls, {"function": legacy}]
    if text or not calls:
        lines.append(f"{role}: {text}")
    lines.extend(f"{role}: {_tool_call(c)}" for c in calls if isinstance(c, Mapping))
    return lines


def _conversation(run: Run) -> list[Mapping[str, Any]] | None:
    if run.type == "thread":
        # Export rows carry every message; list/get rows the first and the last one.
        full = _messages((run.model_extra or {}).get("messages"))
        if full:
            return full
        ends = [m for m in (_messages(run.first_message), _messages(run.input)) if m]
        return [m for chunk in ends for m in chunk] or None
    inputs, outputs = _messages(run.input), _messages(run.output)
    if inputs is None and outputs is None:
        return None
    if run.type not in _CONVERSATION_TYPES and (
        (run.input is not None and inputs is None) or (run.output is not None and outputs is None)
    ):
        return None  # a chain mixing messages and other data reads better as input/output
    return [*(inputs or []), *(outputs or [])]


def _error_text(error: Any) -> str:
    if isinstance(error, Mapping) and "message" in error:
        return _text(error["message"])
    return _text(error)


def run_to_text(run: Run) -> str:
    """The default formatter (see the module docstring)."""
    conversation = _conversation(run)
    if conversation is not None:
        lines = [line for message in conversation for line in message_lines(message)]
    else:
        lines = []
        if run.input is not None:
            lines.append(f"input: {_text(run.input)}")
        if run.output is not None:
            lines.append(f"output: {_text(run.output)}")
    if run.error is not None:
        lines.append(f"error: {_error_text(run.error)}")
    return "\n".join(lines)


def _iso(run: Run) -> str | None:
    if run.created_at is None:
        return None
    return run.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_metadata(run: Run) -> dict[str, Any]:
    """Flat metadata (str, number or list of str values; absent values left out).

    Keys: ``id, type, name, status, model`` (llm runs), ``created_at`` (ISO), ``duration``
    (seconds), ``prompt_tokens, completion_tokens, total_tokens, cost, tags, user`` (external
    id), ``trace_id, parent_run_id, params`` (JSON text), ``feedback`` (thumb).
    """
    prompt, completion = run.prompt_token_count, run.completion_token_count
    has_tokens = prompt is not None or completion is not None
    total = (run.tokens.total if run.tokens else None) or run.total_tokens
    meta: dict[str, Any] = {
        "id": run.id,
        "type": run.type,
        "name": run.name,
        "status": run.status,
        "model": run.name if run.type == "llm" else None,
        "created_at": _iso(run),
        "duration": run.duration_seconds,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total if has_tokens else None,
        "cost": run.cost,
        "tags": list(run.tags) if run.tags else None,
        "user": run.user.external_id if run.user else None,
        "trace_id": run.trace_id,
        "parent_run_id": run.parent_run_id,
        "params": json.dumps(run.params, sort_keys=True, ensure_ascii=False)
        if run.params
        else None,
        "feedback": run.feedback.thumb if run.feedback else None,
    }
    return {key: value for key, value in meta.items() if value is not None}


__all__ = ["Formatter", "message_lines", "run_metadata", "run_to_text"]
