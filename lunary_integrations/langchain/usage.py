"""Token usage of an ``LLMResult`` as Lunary's ``tokensUsage``: prompt, completion, promptCached.

Order: the standardized ``usage_metadata`` of the generated message (present for invoke and,
summed over chunks, for streaming), then the provider's ``llm_output`` (``token_usage`` /
``usage``), then the message's ``response_metadata``. Real counts matter: without them the
server estimates with an OpenAI tokenizer, which is wrong for every other provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TokensUsage = dict[str, int]

# Provider spellings, most common first.
_PROMPT_KEYS = ("prompt_tokens", "input_tokens", "prompt_token_count", "inputTokens")
_COMPLETION_KEYS = (
    "completion_tokens",
    "output_tokens",
    "candidates_token_count",
    "outputTokens",
    "generated_token_count",
)
_CACHED_KEYS = ("cache_read_input_tokens", "cached_content_token_count", "cacheReadInputTokens")
_PROVIDER_USAGE_KEYS = ("token_usage", "usage", "usage_metadata")


def usage_from_result(response: Any) -> TokensUsage | None:
    """Token counts of one LLM run's result, or None when nothing reported them."""
    message = _first_message(response)
    if message is not None:
        usage = from_usage_metadata(getattr(message, "usage_metadata", None))
        if usage:
            return usage
    llm_output = getattr(response, "llm_output", None)
    usage = from_provider_container(llm_output)
    if usage:
        return usage
    if message is not None:
        return from_provider_container(getattr(message, "response_metadata", None))
    return None


def from_usage_metadata(um: Any) -> TokensUsage | None:
    """LangChain's ``UsageMetadata``: ``input_tokens``, ``output_tokens``,
    ``input_token_details.cache_read``."""
    if not isinstance(um, Mapping):
        return None
    usage: TokensUsage = {}
    _put(usage, "prompt", um.get("input_tokens"))
    _put(usage, "completion", um.get("output_tokens"))
    details = um.get("input_token_details")
    if isinstance(details, Mapping):
        _put(usage, "promptCached", details.get("cache_read"))
    return usage or None


def from_provider_container(container: Any) -> TokensUsage | None:
    """``llm_output`` / ``response_metadata``: the usage dict under one of the usual keys."""
    if not isinstance(container, Mapping):
        return None
    for key in _PROVIDER_USAGE_KEYS:
        usage = from_provider_usage(container.get(key))
        if usage:
            return usage
    return None


def from_provider_usage(raw: Any) -> TokensUsage | None:
    """A provider's usage dict: OpenAI (``prompt_tokens``, ``prompt_tokens_details.cached_tokens``),
    Anthropic (``input_tokens``, ``cache_read_input_tokens``), Gemini, Bedrock spellings."""
    if not isinstance(raw, Mapping):
        return None
    usage: TokensUsage = {}
    _put(usage, "prompt", _first(raw, _PROMPT_KEYS))
    _put(usage, "completion", _first(raw, _COMPLETION_KEYS))
    cached = _first(raw, _CACHED_KEYS)
    if cached is None:
        details = raw.get("prompt_tokens_details") or raw.get("input_token_details")
        if isinstance(details, Mapping):
            cached = details.get("cached_tokens", details.get("cache_read"))
    _put(usage, "promptCached", cached)
    return usage if ("prompt" in usage or "completion" in usage) else None


def _first_message(response: Any) -> Any:
    """The first generation's message (a ``ChatGenerationChunk`` when streamed), if any."""
    try:
        return getattr(response.generations[0][0], "message", None)
    except (AttributeError, IndexError, KeyError, TypeError):
        return None


def _first(raw: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = raw.get(key)
        if value is not None:
            return value
    return None


def _put(usage: TokensUsage, key: str, value: Any) -> None:
    """Only real counts: ints (or integral floats), never bools, negatives or garbage."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= 0:
        usage[key] = value


__all__ = [
    "TokensUsage",
    "from_provider_container",
    "from_provider_usage",
    "from_usage_metadata",
    "usage_from_result",
]
