"""The local collector's model prices: what an LLM run costs, as the real server computes it."""

from __future__ import annotations

# USD per 1e9 tokens: (input, cached input, output). Derived from the costs the real server
# reported (README cost table: gpt-4o-mini 0.15/0.60 $/M, gpt-4o 2.50/10 $/M); the others are
# the providers' public list prices. Longest prefix wins, so dated snapshots match too.
MODEL_PRICES: dict[str, tuple[int, int, int]] = {
    "gpt-4o-mini": (150, 75, 600),
    "gpt-4o": (2500, 1250, 10000),
    "gpt-4.1-nano": (100, 25, 400),
    "gpt-4.1-mini": (400, 100, 1600),
    "gpt-4.1": (2000, 500, 8000),
    "gpt-3.5-turbo": (500, 500, 1500),
}
_PRICE_PREFIXES = sorted(MODEL_PRICES, key=len, reverse=True)
#: LLM runs shorter than this get no cost (the server treats them as cached: protocol doc).
MIN_COST_DURATION_MS = 10


def price_for(model: str | None) -> tuple[int, int, int] | None:
    """The model's prices (exact name, else the longest known prefix); None if unknown."""
    if not model:
        return None
    if model in MODEL_PRICES:
        return MODEL_PRICES[model]
    for prefix in _PRICE_PREFIXES:
        if model.startswith(prefix):
            return MODEL_PRICES[prefix]
    return None


def compute_cost(
    model: str | None, prompt: int | None, completion: int | None, cached: int | None
) -> float | None:
    """USD for these token counts (cached ones at the cached price); None if unpriced."""
    price = price_for(model)
    if price is None or prompt is None or completion is None:
        return None
    cached = min(cached or 0, prompt)
    per_billion = (prompt - cached) * price[0] + cached * price[1] + completion * price[2]
    return per_billion / 1e9
