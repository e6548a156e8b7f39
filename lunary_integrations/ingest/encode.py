"""Pure functions that turn queued events into request bodies (run on the worker thread)."""

from __future__ import annotations

import gzip
import time
from collections.abc import Mapping
from typing import Any, cast

from ..serialize import dumps, fit

#: Fields that can be large; everything else in an event is small by construction.
_BULKY = (
    "input",
    "output",
    "params",
    "extra",
    "metadata",
    "error",
    "message",
    "feedback",
    "userProps",
    "tags",
)
_BATCH_HEAD = b'{"events":['
_BATCH_TAIL = b"]}"
#: Bodies smaller than this are sent as they are: gzip would cost more than it saves.
GZIP_MIN_BYTES = 1024


#: The last second formatted (``strftime`` costs microseconds, and events come in runs).
_last_second: tuple[int, str] = (-1, "")


def iso_utc(ts: float) -> str:
    """Epoch seconds -> ``2026-11-23T16:38:49.422Z`` (the server's millisecond format)."""
    global _last_second
    whole = int(ts)
    millis = int((ts - whole) * 1000)
    second, prefix = _last_second
    if second != whole:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second = (whole, prefix)
    return f"{prefix}.{millis:03d}Z"


def encode_event(event: Mapping[str, Any], max_event_bytes: int) -> bytes | None:
    """One event (a ``WireEvent``, or any event-shaped mapping) as compact JSON, cut to
    ``max_event_bytes``; None if even that cannot fit."""
    ts = event.get("timestamp")
    if not isinstance(ts, str):
        event = {**event, "timestamp": iso_utc(ts if isinstance(ts, (int, float)) else time.time())}
    data = dumps(cast("dict[str, Any]", event))  # values are JSON-safe once finished
    if len(data) <= max_event_bytes:
        return data
    return _shrink(event, max_event_bytes)


def _shrink(event: Mapping[str, Any], max_event_bytes: int) -> bytes | None:
    bulky = [k for k in _BULKY if event.get(k) is not None]
    rest = {k: v for k, v in event.items() if k not in bulky}
    # Keys and commas take a few bytes each, hence the margin.
    room = max_event_bytes - len(dumps(rest)) - 16 * (len(bulky) + 1)
    if room <= 64 * len(bulky):
        return None
    # Water-filling: the small fields keep all they need, the large ones share what is left
    # equally (an equal share for every field would waste the room a tiny one does not use).
    sizes = sorted((len(dumps(event[k])), k) for k in bulky)
    shrunk: dict[str, Any] = dict(rest)
    for i, (size, key) in enumerate(sizes):
        share = room // (len(sizes) - i)
        value = event[key] if size <= share else fit(event[key], share)
        shrunk[key] = value
        room -= size if size <= share else len(dumps(value))
    data = dumps(shrunk)
    return data if len(data) <= max_event_bytes else None


def batch_body(parts: list[bytes]) -> bytes:
    """``{"events":[...]}`` from already encoded events (no re-encoding)."""
    return _BATCH_HEAD + b",".join(parts) + _BATCH_TAIL


def batch_overhead(n_events: int) -> int:
    return len(_BATCH_HEAD) + len(_BATCH_TAIL) + max(n_events - 1, 0)


def compress(body: bytes) -> bytes:
    # mtime=0 keeps bodies reproducible. Level 3 (zlib's fast strategy): on a batch of graph
    # events, 6% more bytes than level 5 for 40% of its CPU (benchmarks/, issue #6).
    return gzip.compress(body, compresslevel=3, mtime=0)
