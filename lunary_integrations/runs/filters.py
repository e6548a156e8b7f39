"""Pythonic filters → the Runs API query string, as the real server reads it.

The server splits each filter value on ``.`` (parts) and ``,`` (list items) *before*
percent-decoding, so a literal dot, comma, ``&`` or ``=`` inside a value must be
percent-encoded (``%2E`` for dots: plain URL quoting leaves dots alone). The pairs returned
here are therefore already encoded, and the client glues them into the URL itself: letting
httpx encode ``params`` would either keep the dots or double-encode the ``%``.

Parameters the public docs list but the server ignores are mapped to what it implements:
``start_time``/``end_time`` → ``date=gt.…``/``date=lt.…``, ``min_duration``/``max_duration``
→ ``duration=gte.…``/``duration=lte.…``, ``order`` → ``sortField``/``sortDirection``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal, TypedDict
from urllib.parse import quote
from uuid import UUID

from pydantic import TypeAdapter
from pydantic.alias_generators import to_camel

#: One encoded ``key=value`` pair of the query string.
QueryParam = tuple[str, str]

Order = Literal["asc", "desc"]
SortBy = Literal["created_at", "duration", "tokens", "cost", "messages_count"]
TimeBound = datetime | date | str
Seconds = float | timedelta
StrList = str | Sequence[str]
Scalar = str | int | float | bool

#: The server's sortField for each pythonic name (its own spelling is accepted too).
SORT_FIELDS: dict[str, str] = {
    "created_at": "createdAt",
    "duration": "duration",
    "tokens": "tokens",
    "cost": "cost",
    "messages_count": "messagesCount",
}


class RunFilters(TypedDict, total=False):
    """Keyword filters shared by ``list``, ``iter_runs``, ``count``, ``export`` and the retrievers.

    All given filters must match (AND). Lists match any of their items.
    """

    #: ``llm``, ``trace`` (root chain/agent runs), ``thread``, ``chat``, ``chain``, ``agent``,
    #: ``tool``, ``retriever``, ``embed``, or a list of them.
    type: StrList | None
    #: Case-insensitive substring of the input or output.
    search: str | None
    #: Exact model names (the llm run's ``name``).
    models: StrList | None
    #: Runs carrying any of these tags.
    tags: StrList | None
    #: ``success`` or ``error``.
    status: StrList | None
    #: The server's *internal* integer user ids (``run.user.id``), not external ids.
    user_ids: int | Sequence[int] | None
    #: Flat ``{key: value}`` equality on run metadata; keys are camel-cased like the server
    #: stores them (``thread_id`` → ``threadId``).
    metadata: Mapping[str, Scalar] | None
    #: The same on the user's props.
    user_props: Mapping[str, Scalar] | None
    #: ``"up"``, ``"down"`` or a feedback object such as ``{"thumb": "up"}``.
    feedback: str | Mapping[str, Scalar | None] | None
    #: Direct children of this run.
    parent_run_id: str | UUID | None
    #: ``createdAt`` strictly after / before; datetimes (naive = UTC), dates or ISO strings.
    start_time: TimeBound | None
    end_time: TimeBound | None
    #: Bounds in seconds (inclusive).
    min_duration: Seconds | None
    max_duration: Seconds | None
    #: Bounds in USD (inclusive).
    min_cost: float | None
    max_cost: float | None
    #: Token bounds (inclusive): total, prompt and completion.
    min_tokens: int | None
    max_tokens: int | None
    min_prompt_tokens: int | None
    max_prompt_tokens: int | None
    min_completion_tokens: int | None
    max_completion_tokens: int | None
    #: Sort order; ``sort_by`` alone sorts descending, ``order`` alone sorts by creation time.
    sort_by: SortBy | str | None
    order: Order | None


_DATETIME = TypeAdapter(datetime)


def encode_value(value: str) -> str:
    """Percent-encode one value part, dots included; ``:`` stays readable in timestamps."""
    return quote(value, safe=":").replace(".", "%2E")


def _parts(*parts: str) -> str:
    return ".".join(encode_value(p) for p in parts)


def _items(values: str | int | Sequence[str] | Sequence[int]) -> str:
    items = [values] if isinstance(values, (str, int)) else list(values)
    if not items:
        raise ValueError("an empty list matches nothing; leave the filter out instead")
    return ",".join(encode_value(str(v)) for v in items)


def _number(value: float | int | Decimal) -> str:
    """Plain positional notation: the server parses ``0.000001``, not always ``1e-06``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)) if isinstance(value, float) else value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scalar(value: Scalar) -> str:
    # The server compares the stored JSON member's text: booleans read as true/false.
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else _number(value)


def _seconds(value: Seconds) -> str:
    return _number(value.total_seconds() if isinstance(value, timedelta) else value)


def format_time(value: TimeBound) -> str:
    """ISO-8601 UTC with ``Z``; milliseconds only when present (the server keeps ms)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        dt = _DATETIME.validate_python(value)  # ValueError on a malformed string
    dt = dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
    spec = "milliseconds" if dt.microsecond else "seconds"
    return dt.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def run_id_of(run_id: str | UUID) -> str:
    """The canonical id, or ``ValueError``: the server answers a malformed id with a 500."""
    try:
        return str(run_id if isinstance(run_id, UUID) else UUID(str(run_id).strip()))
    except ValueError:
        raise ValueError(f"run id must be a UUID, got {run_id!r}") from None


def _camel(key: str) -> str:
    return to_camel(key) if "_" in key else key


def _feedback(value: str | Mapping[str, Scalar | None]) -> str:
    if isinstance(value, str):
        if value not in ("up", "down"):
            raise ValueError(f'feedback must be "up", "down" or a mapping, got {value!r}')
        value = {"thumb": value}
    text = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False)
    return quote(text, safe="").replace(".", "%2E")


def sort_params(sort_by: str | None, order: str | None) -> list[QueryParam]:
    if sort_by is None and order is None:
        return []
    if order not in (None, "asc", "desc"):
        raise ValueError(f'order must be "asc" or "desc", got {order!r}')
    field = SORT_FIELDS.get(sort_by or "created_at") or (
        sort_by if sort_by in SORT_FIELDS.values() else None
    )
    if field is None:
        raise ValueError(f"sort_by must be one of {', '.join(SORT_FIELDS)}, got {sort_by!r}")
    # The server sorts descending only for "desc" and ascending for anything else.
    return [("sortField", field), ("sortDirection", order or "desc")]


def filter_params(filters: RunFilters) -> list[QueryParam]:
    """The encoded query pairs for ``filters`` (filters first, then ``parentRunId`` and sort).

    Raises ``ValueError`` for an unknown filter name or a malformed value.
    """
    unknown = set(filters) - set(RunFilters.__annotations__)
    if unknown:
        raise ValueError(f"unknown run filter(s): {', '.join(sorted(unknown))}")
    out: list[QueryParam] = []
    lists: tuple[tuple[str, StrList | int | Sequence[int] | None], ...] = (
        ("type", filters.get("type")),
        ("models", filters.get("models")),
        ("tags", filters.get("tags")),
    )
    out.extend((key, _items(v)) for key, v in lists if v is not None)
    if (search := filters.get("search")) is not None:
        out.append(("search", _parts(search)))
    if (status := filters.get("status")) is not None:
        out.append(("status", _items(status)))
    if (user_ids := filters.get("user_ids")) is not None:
        out.append(("users", _items(user_ids)))
    for key, mapping in (
        ("metadata", filters.get("metadata")),
        ("user-props", filters.get("user_props")),
    ):
        out.extend((key, _parts(_camel(k), _scalar(v))) for k, v in (mapping or {}).items())
    if (feedback := filters.get("feedback")) is not None:
        out.append(("feedback", _feedback(feedback)))
    if (start := filters.get("start_time")) is not None:
        out.append(("date", _parts("gt", format_time(start))))
    if (end := filters.get("end_time")) is not None:
        out.append(("date", _parts("lt", format_time(end))))
    for op, seconds in (("gte", filters.get("min_duration")), ("lte", filters.get("max_duration"))):
        if seconds is not None:
            out.append(("duration", _parts(op, _seconds(seconds))))
    for op, usd in (("gte", filters.get("min_cost")), ("lte", filters.get("max_cost"))):
        if usd is not None:
            out.append(("cost", _parts(op, _number(usd))))
    token_bounds = (
        ("total", "gte", filters.get("min_tokens")),
        ("total", "lte", filters.get("max_tokens")),
        ("prompt", "gte", filters.get("min_prompt_tokens")),
        ("prompt", "lte", filters.get("max_prompt_tokens")),
        ("completion", "gte", filters.get("min_completion_tokens")),
        ("completion", "lte", filters.get("max_completion_tokens")),
    )
    out.extend(
        ("tokens", _parts(kind, op, _number(n))) for kind, op, n in token_bounds if n is not None
    )
    if (parent := filters.get("parent_run_id")) is not None:
        out.append(("parentRunId", run_id_of(parent)))
    out.extend(sort_params(filters.get("sort_by"), filters.get("order")))
    return out


def page_params(limit: int | None, page: int | None) -> list[QueryParam]:
    """``limit``/``page``; ``None`` leaves the server default (50 rows, page 0)."""
    out: list[QueryParam] = []
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        out.append(("limit", str(limit)))
    if page is not None:
        if isinstance(page, bool) or not isinstance(page, int) or page < 0:
            raise ValueError(
                f"page must be a non-negative integer (pages start at 0), got {page!r}"
            )
        out.append(("page", str(page)))
    return out


def query_string(params: Sequence[QueryParam]) -> str:
    return "&".join(f"{k}={v}" for k, v in params)


def wants_llm_only(filters: RunFilters) -> bool:
    """True when the list asks for ``type=llm``: then the server truncates each run's content."""
    value = filters.get("type")
    return value == "llm" or (not isinstance(value, str) and value is not None and "llm" in value)


__all__ = [
    "SORT_FIELDS",
    "Order",
    "QueryParam",
    "RunFilters",
    "SortBy",
    "encode_value",
    "filter_params",
    "format_time",
    "page_params",
    "query_string",
    "run_id_of",
    "sort_params",
    "wants_llm_only",
]
