"""LlamaIndex chat messages, responses and call arguments -> the OpenAI shapes Lunary renders.

Pure functions on duck-typed objects (``ChatMessage``, ``ChatResponse``,
``CompletionResponse``, tools), shared by the instrumentation handlers and the legacy
callback handler. They never raise on odd input: unknown things are skipped or stringified.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from llama_index.core.base.llms.types import ChatResponse, CompletionResponse

from ..serialize import to_jsonable
from ..tracer import tolerant

#: LlamaIndex roles that OpenAI spells differently.
_ROLES = {
    "model": "assistant",
    "chatbot": "assistant",
    "developer": "system",
    "function": "tool",
}

#: LLM attributes that are model parameters (read from the instance when it has them).
PARAM_FIELDS = (
    "temperature",
    "max_tokens",
    "max_new_tokens",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "stop",
)

#: Per-call keyword arguments that steer LlamaIndex, not the model.
_NOT_PARAMS = frozenset(
    {"formatted", "callback_manager", "verbose", "allow_parallel_tool_calls", "prompt", "messages"}
)
_SECRET_PARTS = ("key", "secret", "password", "passwd", "auth", "credential", "header", "cookie")
_SECRET_NAMES = frozenset({"client", "async_client", "http_client", "session", "token"})
_JSON_SCALARS = (str, int, float, bool, type(None))


def role_of(message: Any) -> str:
    role = getattr(message, "role", None)
    value = getattr(role, "value", role)
    text = value if isinstance(value, str) else "user"
    return _ROLES.get(text, text)


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    try:
        return json.dumps(to_jsonable(arguments, 64 * 1024), ensure_ascii=False)
    except Exception:
        return str(arguments)


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def tool_call(call: Any) -> dict[str, Any] | None:
    """One tool call (OpenAI object or dict, ``ToolSelection``, ``ToolCallBlock``) as
    ``{id, type: function, function: {name, arguments: <JSON string>}}``."""
    function = _get(call, "function")
    if function is not None:
        name, arguments = _get(function, "name"), _get(function, "arguments")
        call_id = _get(call, "id")
    else:
        name = _get(call, "tool_name")
        if name is None:
            return None
        arguments = _get(call, "tool_kwargs")
        call_id = _get(call, "tool_call_id") or _get(call, "tool_id")
    out: dict[str, Any] = {
        "type": "function",
        "function": {
            "name": str(name),
            "arguments": _arguments_text({} if arguments is None else arguments),
        },
    }
    if call_id:
        out["id"] = str(call_id)
    return out


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, Iterable) or isinstance(raw, (str, bytes, Mapping)):
        return []
    return [c for c in (tool_call(item) for item in raw) if c is not None]


def _content(message: Any, calls: list[dict[str, Any]]) -> Any:
    blocks = getattr(message, "blocks", None)
    if not isinstance(blocks, list):
        content = getattr(message, "content", None)
        return content if content is None or isinstance(content, str) else str(content)
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        kind = getattr(block, "block_type", None)
        if kind == "text":
            texts.append(str(getattr(block, "text", "")))
            parts.append({"type": "text", "text": texts[-1]})
        elif kind == "tool_call":
            call = tool_call(block)
            if call is not None:
                calls.append(call)
        elif kind == "image":
            url = getattr(block, "url", None)
            if url:
                parts.append({"type": "image_url", "image_url": {"url": str(url)}})
            else:
                parts.append({"type": "text", "text": "[image]"})
        elif kind is not None and kind != "thinking":
            parts.append({"type": "text", "text": f"[{kind}]"})
    if len(parts) == len(texts):  # text only: the plain string OpenAI uses
        return "\n".join(texts) if texts else None
    return parts


@tolerant(lambda msg: {"role": "user", "content": to_jsonable(msg, 4096)})
def message(msg: Any) -> dict[str, Any]:
    """A ``ChatMessage`` as an OpenAI message (``tool_calls[].function.arguments`` a string)."""
    if isinstance(msg, str):
        return {"role": "user", "content": msg}
    if isinstance(msg, Mapping):
        return {str(k): v for k, v in msg.items()}
    extra = getattr(msg, "additional_kwargs", None)
    extra = extra if isinstance(extra, Mapping) else {}
    calls = _tool_calls(extra.get("tool_calls"))
    out: dict[str, Any] = {"role": role_of(msg), "content": _content(msg, calls)}
    if calls:
        out["tool_calls"] = calls
    call_id = extra.get("tool_call_id")
    if call_id:
        out["tool_call_id"] = str(call_id)
    name = extra.get("name")
    if isinstance(name, str) and name:
        out["name"] = name
    return out


def messages(msgs: Any) -> list[dict[str, Any]]:
    if msgs is None:
        return []
    if isinstance(msgs, (str, Mapping)) or not isinstance(msgs, Iterable):
        return [message(msgs)]
    return [message(m) for m in msgs]


def prompt_messages(prompt: Any) -> list[dict[str, Any]]:
    """A completion prompt, shown as the one user message it is."""
    return [{"role": "user", "content": prompt if isinstance(prompt, str) else str(prompt)}]


@tolerant(lambda response: {"role": "assistant", "content": to_jsonable(response, 4096)})
def response_message(response: Any) -> dict[str, Any] | None:
    """``ChatResponse`` -> its message; ``CompletionResponse`` / str -> an assistant message.

    Streams: LlamaIndex responses are cumulative (the last chunk holds the whole message)."""
    if response is None:
        return None
    if isinstance(response, CompletionResponse):  # exact types first: no failing lookups
        return {"role": "assistant", "content": response.text}
    msg = (
        response.message
        if isinstance(response, ChatResponse)
        else getattr(response, "message", None)
    )
    if msg is not None:
        out = message(msg)
        out["role"] = "assistant" if out.get("role") in (None, "user") else out["role"]
        return out
    text = getattr(response, "text", response)
    return {"role": "assistant", "content": text if isinstance(text, str) else str(text)}


def _secret(key: str) -> bool:
    low = key.lower()
    return low in _SECRET_NAMES or low.endswith("_token") or any(p in low for p in _SECRET_PARTS)


def tool_schema(tool: Any) -> Any:
    """A LlamaIndex tool as an OpenAI tool schema; dicts pass through."""
    if isinstance(tool, Mapping):
        return tool
    meta = getattr(tool, "metadata", None)
    to_openai = getattr(meta, "to_openai_tool", None)
    if to_openai is not None:
        try:
            return to_openai(skip_length_check=True)
        except Exception:
            pass
    name = getattr(meta, "name", None) or getattr(tool, "__name__", None) or type(tool).__name__
    return {"type": "function", "function": {"name": str(name)}}


def _plain(value: Any) -> bool:
    """JSON-like data (no clients, no callables)."""
    if isinstance(value, _JSON_SCALARS):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def call_prompt(arguments: Mapping[str, Any]) -> str | None:
    """A completion call's prompt from its bound arguments, read as LlamaIndex's decorator
    reads it: the first positional argument, else ``prompt`` (an undecorated override's
    parameter, or ``prompt=`` among the keyword arguments); None if there is none."""
    positional = arguments.get("args")  # the decorator's ``(_self, *args, **kwargs)``
    if type(positional) is tuple and positional:
        prompt = positional[0]
    elif "prompt" in arguments:  # an undecorated ``complete(self, prompt, ...)``
        prompt = arguments["prompt"]
    else:
        kwargs = arguments.get("kwargs")
        prompt = kwargs.get("prompt") if isinstance(kwargs, Mapping) else None
    if prompt is None or type(prompt) is str:
        return prompt
    try:
        return str(prompt)
    except Exception:  # a prompt object whose __str__ raises: the run starts without input
        return None


def call_params(call_kwargs: Any, instance_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Model parameters: the instance's (temperature, max_tokens...) updated with the call's
    keyword arguments. Secrets, clients and other objects are left out; tools become schemas."""
    params: dict[str, Any] = dict(instance_params) if instance_params else {}
    if not isinstance(call_kwargs, Mapping):
        return params
    for key, value in call_kwargs.items():
        if not isinstance(key, str) or key in _NOT_PARAMS or _secret(key):
            continue
        if key == "tools" and isinstance(value, (list, tuple)):
            params["tools"] = [tool_schema(t) for t in value]
        elif key == "tool_choice" and not _plain(value):
            params[key] = tool_schema(value)
        elif _plain(value):
            params[key] = value
    return params


def instance_params(instance: Any, fields: Iterable[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in fields:
        value = getattr(instance, name, None)
        if value is not None and _plain(value):
            params[name] = value
    return params


__all__ = [
    "PARAM_FIELDS",
    "call_params",
    "call_prompt",
    "instance_params",
    "message",
    "messages",
    "prompt_messages",
    "response_message",
    "role_of",
    "tool_call",
    "tool_schema",
]
