"""LlamaIndex ids -> Lunary run ids (36-char UUIDs).

Span ids look like ``RetrieverQueryEngine.query-<uuid4>``; the real server hashes any id that
is not 36 characters long, so the ids we send must be UUIDs for runs to be found again by the
id we know. The uuid4 suffix is used as is (it is already unique); anything else gets a stable
uuid5 of the whole id, so start, end and children agree without keeping a map.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f1d3c1e-58a4-4c55-9a39-5b0c0f3a2d71")
_HEX = frozenset("0123456789abcdefABCDEF")


def _looks_like_uuid(text: str) -> bool:
    # Cheap structural check (no UUID object): 8-4-4-4-12 hex digits.
    if len(text) != 36 or text[8] != "-" or text[13] != "-" or text[18] != "-" or text[23] != "-":
        return False
    return _HEX.issuperset(text.replace("-", ""))


def to_run_id(llama_id: str) -> str:
    """The UUID run id for a span id, an event id or any other string id (stable)."""
    if len(llama_id) > 37 and llama_id[-37] == "-":
        tail = llama_id[-36:]
        if _looks_like_uuid(tail):
            return tail.lower()
    elif _looks_like_uuid(llama_id):
        return llama_id.lower()
    return str(uuid.uuid5(_NAMESPACE, llama_id))


def span_label(span_id: str) -> str:
    """``RetrieverQueryEngine.query-<uuid4>`` -> ``RetrieverQueryEngine.query``."""
    if len(span_id) > 37 and span_id[-37] == "-":
        return span_id[:-37]
    return span_id


__all__ = ["span_label", "to_run_id"]
