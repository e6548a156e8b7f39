"""Token usage from a LlamaIndex ``ChatResponse`` / ``CompletionResponse``.

Same order as LlamaIndex's own ``get_tokens_from_response``: ``raw["usage"]`` (OpenAI
objects or dicts), then ``raw["usage_metadata"]`` (Gemini / LangChain style), then the
response's ``additional_kwargs`` (where ``llama-index-llms-openai`` copies the counts).
Cached prompt tokens are read from the OpenAI, Anthropic and Gemini spellings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PROMPT = ("prompt_tokens", "input_tokens", "prompt_token_count")
_COMPLETION = ("completion_tokens", "output_tokens", "candidates_token_count")


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if value >= 0 else None


def _first(obj: Any, names: tuple[str, ...]) -> int | None:
    for name in names:
        value = _int(_get(obj, name))
        if value is not None:
            return value
    return None


def _cached(usage: Any) -> int | None:
    for details, key in (
        ("prompt_tokens_details", "cached_tokens"),  # OpenAI
        ("input_token_details", "cache_read"),  # LangChain usage_metadata
        ("input_tokens_details", "cached_tokens"),  # OpenAI responses API
    ):
        value = _int(_get(_get(usage, details), key))
        if value is not None:
            return value
    return _first(usage, ("cache_read_input_tokens", "cached_content_token_count", "cached_tokens"))


def _counts(usage: Any) -> dict[str, int] | None:
    if usage is None:
        return None
    prompt, completion = _first(usage, _PROMPT), _first(usage, _COMPLETION)
    if prompt is None and completion is None:
        return None
    out: dict[str, int] = {}
    if prompt is not None:
        out["prompt"] = prompt
    if completion is not None:
        out["completion"] = completion
    cached = _cached(usage)
    if cached is not None:
        out["promptCached"] = cached
    return out


def tokens_usage(response: Any) -> dict[str, int] | None:
    """``{"prompt", "completion", "promptCached"?}`` or None when the response reports none."""
    raw = _get(response, "raw")
    if raw is not None:
        for key in ("usage", "usage_metadata"):
            found = _counts(_get(raw, key))
            if found:
                return found
    return _counts(_get(response, "additional_kwargs"))


__all__ = ["tokens_usage"]
