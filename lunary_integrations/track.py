"""``track_event``: send one run event from code outside the frameworks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .config import resolve
from .events import RunEvent, as_wire_event
from .ingest import get_client
from .serialize import to_jsonable
from .tracer import error_info, flatten_metadata

RUNTIME = "lunary-integrations"


def track_event(
    *,
    type: str,
    event: str,
    run_id: str | uuid.UUID,
    parent_run_id: str | uuid.UUID | None = None,
    name: str | None = None,
    input: Any = None,
    output: Any = None,
    error: BaseException | Mapping[str, Any] | str | None = None,
    extra: Mapping[str, Any] | None = None,
    tokens_usage: Mapping[str, int] | None = None,
    tags: Sequence[str] | None = None,
    user_id: str | None = None,
    user_props: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    timestamp: datetime | float | str | None = None,
    feedback: Mapping[str, Any] | None = None,
    template_id: int | None = None,
    **settings: Any,
) -> bool:
    """Queue one event, with the official SDK's snake_case keywords.

    Validates its arguments (a ``ValueError`` for a malformed event), then returns at once:
    True if the event was queued, False if tracing is off or the queue is full.
    ``settings`` (``public_key=``, ``api_url=``, ...) pick the project for this event.
    """
    cap = resolve(**settings)
    limit = cap.max_field_bytes
    fields: dict[str, Any] = {
        "type": type,
        "event": event,
        "run_id": str(run_id),
        "parent_run_id": str(parent_run_id) if parent_run_id is not None else None,
        "timestamp": _timestamp(timestamp),
        "name": name,
        "input": to_jsonable(input, limit) if input is not None else None,
        "output": to_jsonable(output, limit) if output is not None else None,
        "error": _error(error),
        "extra": to_jsonable(dict(extra), limit) if extra else None,
        "tokens_usage": dict(tokens_usage) if tokens_usage else None,
        "tags": list(tags) if tags else None,
        "user_id": user_id,
        "user_props": to_jsonable(dict(user_props), limit) if user_props else None,
        "metadata": flatten_metadata(metadata) if metadata else None,
        "feedback": dict(feedback) if feedback else None,
        "template_id": template_id,
        "runtime": RUNTIME,
    }
    wire = as_wire_event(RunEvent.model_validate(fields).to_wire())
    return get_client(cap).enqueue(wire)


def _timestamp(value: datetime | float | str | None) -> str:
    from .ingest.encode import iso_utc

    if value is None:
        return iso_utc(time.time())
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return iso_utc(value.timestamp())
    if isinstance(value, (int, float)):
        return iso_utc(float(value))
    return value


def _error(error: BaseException | Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        return dict(error_info(error))
    if isinstance(error, str):
        return {"message": error}
    return dict(error)
