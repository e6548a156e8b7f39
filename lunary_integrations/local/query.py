"""The Runs API query string → SQL (filters, sorting, pagination), as the real server reads it.

Filter values are split on `.` (parts) and `,` (lists) BEFORE percent-decoding, so a literal
dot must be sent as `%2E`. A filter whose value has the wrong number of parts is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .util import parse_ts

PLAIN_PARAMS = frozenset(("page", "limit", "sortField", "sortDirection", "parentRunId"))
EXPORT_PARAMS = frozenset(("exportFormat", "exportType"))
FILTERS = frozenset(
    (
        "type",
        "search",
        "models",
        "tags",
        "status",
        "date",
        "duration",
        "cost",
        "tokens",
        "metadata",
        "users",
        "user-props",
        "feedback",
    )
)
OPS = {"eq": "=", "neq": "!=", "gt": ">", "lt": "<", "gte": ">=", "lte": "<="}
RUN_TYPES = frozenset(("llm", "thread", "chat", "chain", "agent", "tool", "retriever", "embed"))

_DURATION_SQL = "(r.ended_at - r.created_at)"
_TOKENS_SQL = {
    "prompt": "r.prompt_tokens",
    "completion": "r.completion_tokens",
    "total": "(COALESCE(r.prompt_tokens, 0) + COALESCE(r.completion_tokens, 0))",
}
MESSAGES_COUNT_SQL = (
    "(SELECT COALESCE(SUM(COALESCE(json_array_length(c.input), 0)"
    " + COALESCE(json_array_length(c.output), 0)), 0)"
    " FROM runs c WHERE c.parent_run_id = r.id AND c.type = 'chat')"
)
_SORT_SQL = {
    "createdAt": "r.created_at",
    "duration": _DURATION_SQL,
    "tokens": _TOKENS_SQL["total"],
    "cost": "r.cost",
    "messagesCount": MESSAGES_COUNT_SQL,
}


@dataclass
class Query:
    """A parsed Runs API query string."""

    plain: dict[str, str] = field(default_factory=dict)  # decoded plain/export parameters
    filters: list[tuple[str, str]] = field(default_factory=list)  # (key, raw value)
    use_or: bool = False

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.plain.get(key, default)

    def filter_values(self, key: str) -> list[str]:
        return [v for k, v in self.filters if k == key]


def parse_query_string(qs: str) -> Query:
    q = Query()
    first = True
    for pair in qs.split("&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition("=")
        key = unquote(raw_key.replace("+", " "))
        value = raw_value.replace("+", " ")
        if first and key == "OR" and not value:
            q.use_or = True
            first = False
            continue
        first = False
        if key in PLAIN_PARAMS or key in EXPORT_PARAMS:
            q.plain[key] = unquote(value)
        else:
            q.filters.append((key, value))
    return q


def _parts(raw: str, n: int) -> list[str] | None:
    """Split a raw value on '.', then decode each part; None when the arity is wrong."""
    pieces = raw.split(".")
    if len(pieces) != n:
        return None
    return [unquote(p) for p in pieces]


def _list(raw: str) -> list[str] | None:
    parts = _parts(raw, 1)
    if parts is None:
        return None
    return [unquote(v) for v in raw.split(",") if v]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _json_text_equals(column: str) -> str:
    """SQL comparing a JSON member's text (as Postgres' ->> gives it) with a parameter."""
    return (
        f"(CASE json_type({column}, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
        f" ELSE CAST(json_extract({column}, ?) AS TEXT) END) = ?"
    )


@dataclass
class Where:
    sql: str
    args: list[Any]
    truncate_llm: bool  # `type=llm` lists shorten each run's input


def build_where(q: Query, *, default_llm: bool = True) -> Where:
    """WHERE clause (over `runs r`) for the filters and `parentRunId` of a query."""
    conds: list[str] = []
    args: list[Any] = []
    any_filter = False
    truncate = False
    for key, raw in q.filters:
        if key not in FILTERS:
            continue  # unknown keys (startTime, order, ...) are ignored
        any_filter = True
        cond = _filter_sql(key, raw, args)
        if cond is not None:
            conds.append(cond)
        if key == "type" and _list(raw) == ["llm"]:
            truncate = True
    if not any_filter and default_llm:
        conds.append("r.type = 'llm'")
    joiner = " OR " if q.use_or else " AND "
    where = "(" + joiner.join(conds) + ")" if conds else "1"
    parent = q.get("parentRunId")
    if parent:
        where += " AND r.parent_run_id = ?"
        args.append(parent.lower())
    return Where(where, args, truncate)


def _filter_sql(key: str, raw: str, args: list[Any]) -> str | None:
    """One filter → SQL condition (appending its parameters), or None when malformed."""
    if key == "type":
        values = _list(raw)
        if not values:
            return None
        ors = []
        for v in values:
            if v == "trace":
                ors.append("(r.type IN ('chain', 'agent') AND r.parent_run_id IS NULL)")
            else:
                ors.append("r.type = ?")
                args.append(v)
        return "(" + " OR ".join(ors) + ")"
    if key in ("models", "status"):
        values = _list(raw)
        if not values:
            return None
        args.extend(values)
        column = "r.name" if key == "models" else "r.status"
        return f"{column} IN ({','.join('?' * len(values))})"
    if key == "tags":
        values = _list(raw)
        if not values:
            return None
        args.extend(values)
        return (
            "EXISTS (SELECT 1 FROM json_each(r.tags) t"
            f" WHERE t.value IN ({','.join('?' * len(values))}))"
        )
    if key == "search":
        parts = _parts(raw, 1)
        if parts is None or not parts[0]:
            return None
        pattern = "%" + parts[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        args.extend((pattern, pattern))
        return "(r.input LIKE ? ESCAPE '\\' OR r.output LIKE ? ESCAPE '\\')"
    if key == "date":
        parts = _parts(raw, 2)
        if parts is None or parts[0] not in OPS:
            return None
        ms = parse_ts(parts[1])
        if ms is None:
            return None
        args.append(ms)
        return f"r.created_at {OPS[parts[0]]} ?"
    if key in ("duration", "cost"):
        parts = _parts(raw, 2)
        if parts is None or parts[0] not in OPS:
            return None
        number = _number(parts[1])
        if number is None:
            return None
        if key == "duration":
            args.append(number * 1000)
            return f"(r.ended_at IS NOT NULL AND {_DURATION_SQL} {OPS[parts[0]]} ?)"
        args.append(number)
        return f"r.cost {OPS[parts[0]]} ?"
    if key == "tokens":
        parts = _parts(raw, 3)
        if parts is None or parts[0] not in _TOKENS_SQL or parts[1] not in OPS:
            return None
        number = _number(parts[2])
        if number is None:
            return None
        args.append(number)
        return f"{_TOKENS_SQL[parts[0]]} {OPS[parts[1]]} ?"
    if key in ("metadata", "user-props"):
        parts = _parts(raw, 2)
        if parts is None:
            return None
        path = _json_path(parts[0])
        args.extend((path, path, parts[1]))
        if key == "metadata":
            return _json_text_equals("r.metadata")
        return (
            "EXISTS (SELECT 1 FROM users u2 WHERE u2.id = r.user_id AND "
            + _json_text_equals("u2.props")
            + ")"
        )
    if key == "users":
        values = _list(raw)
        ids = [int(v) for v in values or [] if v.lstrip("-").isdigit()]
        if not ids:
            return None
        args.extend(ids)
        return f"r.user_id IN ({','.join('?' * len(ids))})"
    if key == "feedback":
        try:
            wanted = json.loads(unquote(raw))
        except ValueError:
            return None
        if not isinstance(wanted, dict) or not wanted:
            return None
        conds = []
        for k, v in wanted.items():
            path = _json_path(str(k))
            if v is None:
                conds.append("json_extract(r.feedback, ?) IS NULL")
                args.append(path)
            else:
                conds.append(_json_text_equals("r.feedback"))
                text = v if isinstance(v, str) else json.dumps(v)
                args.extend((path, path, text))
        return "(r.feedback IS NOT NULL AND " + " AND ".join(conds) + ")"
    return None


def order_by(q: Query) -> str:
    """ORDER BY: newest first unless `sortField` is given (`desc`, anything else ascending)."""
    field_sql = _SORT_SQL.get(q.get("sortField") or "")
    if field_sql is None:
        return "r.created_at DESC, r.seq DESC"
    direction = "DESC" if q.get("sortDirection") == "desc" else "ASC"
    return f"{field_sql} {direction} NULLS LAST, r.seq {direction}"


def _int_param(value: str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number > 0 else default


def page_limit(q: Query) -> tuple[int, int]:
    """(page, limit): page is 0-based, limit defaults to 50 (no maximum)."""
    page = _int_param(q.get("page"), 0)
    limit = _int_param(q.get("limit"), 50)
    return page, limit
