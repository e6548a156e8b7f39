"""Model id and model parameters of a chat model / LLM start.

The ``name`` of an ``llm`` run is the provider's model id: the server prices the run and
counts tokens from it, so a class name is used only when no model id exists anywhere.
Parameters come from an allow-list, so API keys, tokens, clients and callbacks that
integrations keep in their invocation params can never leak into a trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..tracer import tolerant

#: Invocation-param keys that hold the model id, in order of trust.
_MODEL_KEYS = (
    "model",
    "model_name",
    "model_id",
    "deployment_name",
    "azure_deployment",
    "deployment_id",
    "repo_id",
)

#: Parameters worth showing next to an LLM run (what changes the output or the bill).
PARAM_KEYS = frozenset(
    {
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "max_new_tokens",
        "num_predict",
        "num_ctx",
        "top_p",
        "top_k",
        "min_p",
        "stop",
        "stop_sequences",
        "seed",
        "n",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "repeat_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "reasoning_effort",
        "reasoning",
        "thinking",
        "verbosity",
        "service_tier",
        "modalities",
        "safety_settings",
    }
)

#: ``ls_*`` metadata standing for a parameter (LangChain's ``LangSmithParams``).
_LS_PARAMS = (
    ("ls_temperature", "temperature"),
    ("ls_max_tokens", "max_tokens"),
    ("ls_stop", "stop"),
)


def model_name(
    metadata: Mapping[str, Any] | None,
    invocation_params: Mapping[str, Any] | None,
    serialized: Any,
    run_name: Any = None,
) -> str | None:
    """``ls_model_name``, then invocation params, then the serialized constructor kwargs;
    the run name or the class name only when no model id is known."""
    if metadata:
        name = metadata.get("ls_model_name")
        if isinstance(name, str) and name:
            return name
    found = _model_in(invocation_params)
    if found:
        return found
    if isinstance(serialized, Mapping):
        found = _model_in(serialized.get("kwargs"))
        if found:
            return found
    if isinstance(run_name, str) and run_name:
        return run_name
    return class_name(serialized)


def class_name(serialized: Any) -> str | None:
    """The name LangChain serialized for a component: ``name``, else the last ``id`` part."""
    if not isinstance(serialized, Mapping):
        return None
    name = serialized.get("name")
    if isinstance(name, str) and name:
        return name
    ident = serialized.get("id")
    if isinstance(ident, list) and ident and isinstance(ident[-1], str):
        return ident[-1]
    return None


def _model_in(params: Any) -> str | None:
    if not isinstance(params, Mapping):
        return None
    for key in _MODEL_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@tolerant(lambda *args: {})  # no params rather than no run
def model_params(
    invocation_params: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The allow-listed parameters (``None`` values skipped), ``tools`` as OpenAI schemas."""
    params: dict[str, Any] = {}
    if isinstance(invocation_params, Mapping):
        _collect(params, invocation_params)
        nested = invocation_params.get("model_kwargs")  # e.g. Bedrock, HuggingFace
        if isinstance(nested, Mapping):
            _collect(params, nested)
    if metadata:
        for ls_key, key in _LS_PARAMS:
            value = metadata.get(ls_key)
            if value is not None and key not in params:
                params[key] = value
    tools = params.get("tools")
    if tools is not None:
        params["tools"] = tools_to_openai(tools)
    return params


def _collect(params: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if value is not None and key in PARAM_KEYS and key not in params:
            params[key] = value


def tools_to_openai(tools: Any) -> Any:
    """Bound tools as OpenAI function schemas ``{type: function, function: {...}}``.

    OpenAI-shaped dicts are kept, Anthropic-style ``{name, input_schema}`` and bare
    ``{name, parameters}`` are wrapped, provider built-ins (``{"type": "web_search"}``) kept;
    tool objects go through LangChain's converter.
    """
    if not isinstance(tools, (list, tuple)):
        return tools
    return [_tool_to_openai(tool) for tool in tools]


def _tool_to_openai(tool: Any) -> Any:
    if isinstance(tool, Mapping):
        if "type" in tool or "name" not in tool:  # OpenAI-shaped, or a provider built-in
            return tool
        schema = tool.get("parameters", tool.get("input_schema"))
        function: dict[str, Any] = {"name": tool.get("name")}
        if tool.get("description"):
            function["description"] = tool["description"]
        if schema is not None:
            function["parameters"] = schema
        return {"type": "function", "function": function}
    try:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return convert_to_openai_tool(tool)
    except Exception:  # an unconvertible object: its name is better than nothing
        return {"type": "function", "function": {"name": getattr(tool, "name", repr(tool))}}


__all__ = ["PARAM_KEYS", "class_name", "model_name", "model_params", "tools_to_openai"]
