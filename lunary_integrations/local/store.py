"""sqlite storage and the ingest semantics of the real Lunary server.

One `Store` owns one sqlite connection guarded by a lock (the HTTP server is threaded).
An ingest request is one transaction: the runs a batch touches are fetched with one query,
every event is applied to in-memory rows, and the result is written with `executemany`.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from .prices import MIN_COST_DURATION_MS, compute_cost
from .util import (
    JSON,
    InvalidUUID,
    camelize,
    dumps,
    normalize_run_id,
    now_ms,
    parse_ts,
)

DUPLICATE_ERROR = "Run with this ID already exists in the database."

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT,
    name TEXT,
    status TEXT,
    created_at INTEGER,
    ended_at INTEGER,
    parent_run_id TEXT,
    tags TEXT,
    input TEXT,
    output TEXT,
    error TEXT,
    params TEXT,
    metadata TEXT,
    feedback TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cached_prompt_tokens INTEGER,
    cost REAL,
    user_id INTEGER,
    template_version_id INTEGER,
    runtime TEXT
);
CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent_run_id);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id TEXT NOT NULL UNIQUE,
    created_at INTEGER,
    last_seen INTEGER,
    props TEXT
);
"""

# Columns written by ingest, in table order (seq is sqlite's).
COLUMNS: tuple[str, ...] = (
    "id",
    "type",
    "name",
    "status",
    "created_at",
    "ended_at",
    "parent_run_id",
    "tags",
    "input",
    "output",
    "error",
    "params",
    "metadata",
    "feedback",
    "prompt_tokens",
    "completion_tokens",
    "cached_prompt_tokens",
    "cost",
    "user_id",
    "template_version_id",
    "runtime",
)
JSON_COLUMNS = frozenset(("tags", "input", "output", "error", "params", "metadata", "feedback"))

_LIGHT_COLUMNS = tuple(c for c in COLUMNS if c not in JSON_COLUMNS)
_SELECT_LIGHT = f"SELECT seq, {', '.join(_LIGHT_COLUMNS)} FROM runs"
_UNLOADED: Any = object()  # a JSON column the prefetch did not read (see _Batch.field)
_UNLOADED_ROW: dict[str, Any] = dict.fromkeys(JSON_COLUMNS, _UNLOADED)

_NO_ID: Any = object()  # marks an event sent without a `runId` key
# An event's (runId, parentRunId) normalized, or the error message of an invalid one.
_Ids = tuple[str | None, str | None] | str
_NO_IDS: _Ids = (None, None)


class RawJSON(str):
    """JSON text loaded from sqlite and not decoded (yet): written back unchanged."""


Row = dict[str, Any]


def decode(value: JSON) -> JSON:
    """The Python value of a row field (decodes `RawJSON` lazily)."""
    if isinstance(value, RawJSON):
        return json.loads(value)
    return value


def _sql_value(column: str, value: Any) -> Any:
    """A non-null column value for sqlite: JSON columns encoded (RawJSON written as is)."""
    if column in JSON_COLUMNS and value.__class__ is not RawJSON:
        return dumps(value)
    return value


@functools.cache
def _insert_sql(columns: tuple[str, ...]) -> str:
    return f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


@functools.cache
def _update_sql(columns: tuple[str, ...], nulls: tuple[str, ...]) -> str:
    assignments = [c + " = ?" for c in columns] + [c + " = NULL" for c in nulls]
    return f"UPDATE runs SET {', '.join(assignments)} WHERE seq = ?"


def estimate_tokens(value: JSON) -> int:
    """A rough tokenizer stand-in: about 4 characters of JSON text per token, at least 1."""
    if value is None:
        return 0
    text = value if isinstance(value, str) else dumps(value)
    return max(1, (len(text) + 3) // 4)


_PRIMITIVES = (str, int, float, bool)
OUTPUT_ROLES = frozenset(("assistant", "tool", "bot"))
INPUT_ROLES = frozenset(("user", "system"))


def clean_metadata(value: JSON) -> JSON:
    """The server's cleanMetadata: keep top-level strings, numbers, booleans and lists of
    those (and `enrichment`); drop nulls, nested objects and mixed lists. None if absent."""
    if not isinstance(value, dict):
        return None
    return {
        k: v
        for k, v in value.items()
        if k == "enrichment"
        or isinstance(v, _PRIMITIVES)
        or (isinstance(v, list) and all(isinstance(x, _PRIMITIVES) for x in v))
    }


def _clean_start_metadata(ev: dict[str, JSON]) -> JSON:
    return clean_metadata(ev.get("metadata"))


def truthy(value: JSON) -> bool:
    """JavaScript truthiness of a JSON value (objects and arrays are always true)."""
    if isinstance(value, (dict, list)):
        return True
    return bool(value)


def _int_or_none(value: JSON) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class _Batch:
    """The rows and users one ingest request touches, applied in memory, then flushed."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.rows: dict[str, Row] = {}  # id -> row (loaded or new)
        self.missing: set[str] = set()  # ids known not to exist
        self.new: list[Row] = []
        self.dirty: dict[int, Row] = {}  # seq -> loaded row to update
        self.users: dict[str, Row] = {}
        self.dirty_users: dict[int, Row] = {}
        self.reparent: list[tuple[str, str]] = []

    # runs -----------------------------------------------------------------------------------
    def prefetch(self, ids: Iterable[str]) -> None:
        """Load the rows of these ids, without their JSON columns (see `field`)."""
        todo = [i for i in set(ids) if i not in self.rows and i not in self.missing]
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            marks = ",".join("?" * len(chunk))
            cur = self.conn.execute(f"{_SELECT_LIGHT} WHERE id IN ({marks})", chunk)
            for rec in cur:
                self.rows[rec[1]] = self._row(rec, light=True)
            self.missing.update(i for i in chunk if i not in self.rows)

    @staticmethod
    def _row(rec: Sequence[Any], *, light: bool = False) -> Row:
        if light:
            row: Row = _UNLOADED_ROW.copy()
            row.update(zip(_LIGHT_COLUMNS, rec[1:], strict=True))
        else:
            row = dict(zip(COLUMNS, rec[1:], strict=True))
            for c in JSON_COLUMNS:
                if row[c] is not None:
                    row[c] = RawJSON(row[c])
        row["seq"] = rec[0]
        row["_orig"] = row.copy()  # to write back only the columns an event changed
        return row

    def field(self, row: Row, column: str) -> JSON:
        """The decoded value of a JSON column, loading it if the prefetch skipped it."""
        value = row[column]
        if value is _UNLOADED:
            rec = self.conn.execute(f"SELECT {column} FROM runs WHERE seq = ?", (row["seq"],))
            text = rec.fetchone()[0]
            value = None if text is None else RawJSON(text)
            row[column] = value
            row["_orig"][column] = value  # loaded, not changed
        return decode(value)

    def get(self, run_id: str | None) -> Row | None:
        if run_id is None:
            return None
        row = self.rows.get(run_id)
        if row is None and run_id not in self.missing:
            self.prefetch([run_id])
            row = self.rows.get(run_id)
        return row

    def add(self, row: Row) -> None:
        row["seq"] = None
        self.rows[row["id"]] = row
        self.missing.discard(row["id"])
        self.new.append(row)

    def touch(self, row: Row) -> None:
        if row["seq"] is not None:
            self.dirty[row["seq"]] = row

    def rename(self, row: Row, new_id: str) -> None:
        old_id = row["id"]
        self.rows.pop(old_id, None)
        self.missing.add(old_id)
        row["id"] = new_id
        self.rows[new_id] = row
        self.missing.discard(new_id)
        self.touch(row)
        for other in self.rows.values():
            if other["parent_run_id"] == old_id:
                other["parent_run_id"] = new_id
                self.touch(other)
        self.reparent.append((new_id, old_id))

    def last_child(self, parent_id: str) -> Row | None:
        """The parent's most recent child run (by createdAt), stored or from this batch."""
        rec = self.conn.execute(
            f"SELECT seq, {', '.join(COLUMNS)} FROM runs WHERE parent_run_id = ?"
            " ORDER BY created_at DESC, seq DESC LIMIT 1",
            (parent_id,),
        ).fetchone()
        best: Row | None = None
        if rec is not None:
            best = self.rows.get(rec[1]) or self._row(rec)
            self.rows.setdefault(best["id"], best)
            if best["parent_run_id"] != parent_id:  # re-parented earlier in this batch
                best = None
        for row in self.rows.values():
            if row["parent_run_id"] == parent_id and (
                best is None or (row["created_at"] or 0) >= (best["created_at"] or 0)
            ):
                best = row
        return best

    # users ----------------------------------------------------------------------------------
    def user(self, external_id: str, props: JSON, ts: int) -> int:
        """Upsert a user as a start event does: props are replaced (null when not sent)."""
        u = self.users.get(external_id)
        if u is None:
            rec = self.conn.execute(
                "SELECT id, last_seen FROM users WHERE external_id = ?", (external_id,)
            ).fetchone()
            if rec is None:
                cur = self.conn.execute(
                    "INSERT INTO users (external_id, created_at, last_seen, props)"
                    " VALUES (?, ?, ?, ?)",
                    (external_id, now_ms(), ts, None if props is None else dumps(props)),
                )
                u = {"id": cur.lastrowid, "external_id": external_id}
                self.users[external_id] = u
                return int(u["id"])
            u = {"id": rec[0], "external_id": external_id}
            self.users[external_id] = u
        u["props"] = props
        u["last_seen"] = ts
        self.dirty_users[int(u["id"])] = u
        return int(u["id"])

    # write ----------------------------------------------------------------------------------
    def flush(self) -> None:
        # NULLs are never bound (omitted from an INSERT, literal in an UPDATE): sqlite3 binds
        # None through its adapter lookup, ~2 µs each here, and a new row is mostly NULLs.
        self._insert_new()
        self._update_dirty()
        conn = self.conn
        for new_id, old_id in self.reparent:
            conn.execute(
                "UPDATE runs SET parent_run_id = ? WHERE parent_run_id = ?", (new_id, old_id)
            )
        if self.dirty_users:
            conn.executemany(
                "UPDATE users SET props = ?, last_seen = ? WHERE id = ?",
                [
                    (None if u["props"] is None else dumps(u["props"]), u["last_seen"], uid)
                    for uid, u in self.dirty_users.items()
                ],
            )

    def _insert_new(self) -> None:
        """INSERT the new rows, grouped by their non-null columns; explicit seqs keep the
        send order across groups."""
        if not self.new:
            return
        seq = self.conn.execute("SELECT coalesce(max(seq), 0) FROM runs").fetchone()[0]
        groups: dict[tuple[str, ...], list[list[Any]]] = {}
        for row in self.new:
            seq += 1
            columns = ["seq"]
            values = [seq]
            for c in COLUMNS:
                v = row[c]
                if v is not None:
                    columns.append(c)
                    values.append(_sql_value(c, v))
            groups.setdefault(tuple(columns), []).append(values)
        for names, params in groups.items():
            self.conn.executemany(_insert_sql(names), params)

    def _update_dirty(self) -> None:
        """UPDATE only the columns an event changed (fewer index writes), grouped likewise."""
        groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[list[Any]]] = {}
        for seq, row in self.dirty.items():
            orig = row["_orig"]
            changed = [c for c in COLUMNS if row[c] is not orig[c]]
            if changed:
                columns = tuple(c for c in changed if row[c] is not None)
                nulls = tuple(c for c in changed if row[c] is None)
                params = [_sql_value(c, row[c]) for c in columns]
                groups.setdefault((columns, nulls), []).append([*params, seq])
        for (columns, nulls), rows in groups.items():
            self.conn.executemany(_update_sql(columns, nulls), rows)


class Store:
    """The collector's database: runs and users, with Lunary's ingest rules."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute(
            "PRAGMA synchronous = OFF" if path == ":memory:" else "PRAGMA synchronous = NORMAL"
        )
        if path != ":memory:":
            self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # ingest ---------------------------------------------------------------------------------
    def ingest(
        self, events: list[JSON], *, sent_run_id: set[int] | None = None
    ) -> list[dict[str, JSON]]:
        """Apply a batch of events; returns one result per event, in processing order.

        `events` are the events as sent, or, with `sent_run_id`, already camel-cased by
        `loads_camel` (then `sent_run_id` holds the id() of those that carried `runId`).
        """
        now = now_ms()
        prepared: list[tuple[int, JSON, dict[str, JSON] | None, _Ids]] = []
        ids: list[str] = []  # to prefetch
        for raw in events:
            if not isinstance(raw, dict):
                prepared.append((now, _NO_ID, None, _NO_IDS))
                continue
            if sent_run_id is None:
                echo = raw.get("runId", _NO_ID)
                ev = camelize(raw)
            else:
                ev = raw
                echo = raw.get("runId") if id(raw) in sent_run_id else _NO_ID
            ts = parse_ts(ev.get("timestamp"))
            try:
                run_ids = (
                    normalize_run_id(ev.get("runId")),
                    normalize_run_id(ev.get("parentRunId")),
                )
            except InvalidUUID as exc:
                prepared.append((now if ts is None else ts, echo, ev, str(exc)))
                continue
            ids.extend(i for i in run_ids if i is not None)
            prepared.append((now if ts is None else ts, echo, ev, run_ids))
        prepared.sort(key=lambda item: item[0])  # stable: send order among equal timestamps

        with self.lock:
            batch = _Batch(self.conn)
            self.conn.execute("BEGIN")
            try:
                batch.prefetch(ids)
                results = [self._apply(batch, *item) for item in prepared]
                batch.flush()
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return results

    def _apply(
        self, batch: _Batch, ts: int, echo: JSON, ev: dict[str, JSON] | None, ids: _Ids
    ) -> dict[str, JSON]:
        result: dict[str, JSON] = {}
        if echo is not _NO_ID:  # the id is echoed exactly as sent, and only from `runId`
            result["id"] = echo
        if ev is None:
            result.update(success=False, error="Invalid event")
            return result
        error = self._apply_event(batch, ts, ev, ids)
        if error is None:
            result["success"] = True
        else:
            result.update(success=False, error=error)
        return result

    def _apply_event(self, batch: _Batch, ts: int, ev: dict[str, JSON], ids: _Ids) -> str | None:
        run_type = ev.get("type")
        kind = ev.get("event")
        if run_type == "log":
            return 'relation "log" does not exist'
        if isinstance(ids, str):
            return ids
        run_id, parent_id = ids
        user_id: int | None = None
        external = ev.get("userId")
        if isinstance(external, str) and kind not in ("end", "error"):
            # every event but end/error upserts its user: props are replaced (null if absent)
            user_id = batch.user(external, ev.get("userProps"), ts)
        if kind == "start":
            return self._start(batch, ts, ev, run_id, parent_id, user_id)
        if kind == "chat":
            return self._chat(batch, ts, ev, run_id, parent_id, user_id)
        row = batch.get(run_id)
        if row is None:  # end/error/feedback for an unknown run: nothing to update
            return None
        if kind == "end":
            self._end(batch, row, ts, ev)
        elif kind == "error":
            row["ended_at"] = ts
            row["status"] = "error"
            row["error"] = ev.get("error")
        elif kind == "feedback":
            old = batch.field(row, "feedback")
            merged: dict[str, JSON] = {}
            for part in (old, ev.get("feedback"), ev.get("extra")):  # extra: legacy
                if isinstance(part, dict):
                    merged.update(part)
            row["feedback"] = merged
        elif kind == "update" and run_type == "llm":
            row["metadata"] = _clean_start_metadata(ev) or {}
        else:
            return None  # custom-event, unknown events: accepted, nothing stored
        batch.touch(row)
        return None

    def _end(self, batch: _Batch, row: Row, ts: int, ev: dict[str, JSON]) -> None:
        row["ended_at"] = ts
        row["status"] = "success"
        output = ev.get("output")
        row["output"] = json.dumps(output) if isinstance(output, bool) else output
        run_input = ev.get("input")
        if truthy(run_input):  # e.g. agent contexts send their input with the end
            row["input"] = run_input
        metadata = clean_metadata(ev.get("metadata"))
        if metadata is not None:  # merged into the start's metadata
            old = batch.field(row, "metadata")
            row["metadata"] = {**old, **metadata} if isinstance(old, dict) else metadata
        usage = ev.get("tokensUsage")
        usage = usage if isinstance(usage, dict) else {}
        prompt = _int_or_none(usage.get("prompt"))
        completion = _int_or_none(usage.get("completion"))
        cached = _int_or_none(usage.get("promptCached"))
        if ev.get("type") == "llm":
            if not prompt:  # the server estimates missing counts with a tokenizer
                prompt = estimate_tokens(batch.field(row, "input"))
            if not completion:
                completion = estimate_tokens(row["output"])
            duration = ts - (row["created_at"] or 0)
            row["cost"] = (
                compute_cost(row["name"], prompt, completion, cached)
                if duration >= MIN_COST_DURATION_MS
                else None
            )
        if prompt is not None or completion is not None:
            row["prompt_tokens"] = prompt
            row["completion_tokens"] = completion
            row["cached_prompt_tokens"] = cached or 0

    def _start(
        self,
        batch: _Batch,
        ts: int,
        ev: dict[str, JSON],
        run_id: str | None,
        parent_id: str | None,
        user_id: int | None,
    ) -> str | None:
        if run_id is None or batch.get(run_id) is not None:
            return DUPLICATE_ERROR
        parent = batch.get(parent_id)
        if parent is not None and parent["user_id"] is not None:
            user_id = parent["user_id"]  # a parent's user overrides the child's
        metadata = _clean_start_metadata(ev)
        tags = ev.get("tags")
        if isinstance(tags, str):
            tags = [tags]
        if tags is None and isinstance(metadata, dict):
            tags = metadata.get("tags")
        params = ev.get("params")
        if not truthy(params):
            params = ev.get("extra")
        template = ev.get("templateVersionId") or ev.get("templateId")
        if not template and isinstance(metadata, dict):
            template = metadata.get("templateId") or metadata.get("templateVersionId")
        name = ev.get("name")
        runtime = ev.get("runtime")
        batch.add(
            {
                "id": run_id,
                "type": _text_or_none(ev.get("type")),
                "name": name.replace("models/", "", 1) if isinstance(name, str) else None,
                "status": "started",
                "created_at": ts,
                "ended_at": None,
                # a parent that is not stored yet is dropped, as the real server does
                "parent_run_id": parent["id"] if parent is not None else None,
                "tags": tags if isinstance(tags, list) else None,
                "input": ev.get("input"),
                "output": None,
                "error": None,
                "params": params if params is not None else None,
                "metadata": metadata,
                "feedback": None,
                "prompt_tokens": None,
                "completion_tokens": None,
                "cached_prompt_tokens": None,
                "cost": None,
                "user_id": user_id,
                "template_version_id": template or None,
                "runtime": _text_or_none(runtime),
            }
        )
        return None

    def _chat(
        self,
        batch: _Batch,
        ts: int,
        ev: dict[str, JSON],
        run_id: str | None,
        thread_id: str | None,
        user_id: int | None,
    ) -> str | None:
        """`event:"chat"` (thread messages), as the server's ingestChatEvent: the thread run is
        upserted with the message as input, then the message joins the thread's last run
        (an assistant message is appended to its output, a user message to its input while it
        has no output) or opens a new `chat` run. Either way the run takes the message's id."""
        if thread_id is None:
            return "No parent run ID provided"
        message = ev.get("message")
        msg = message if isinstance(message, dict) else {}
        role = msg.get("role")
        msg_meta = msg.get("metadata") if truthy(msg.get("metadata")) else msg.get("extra")
        core: dict[str, JSON] = {"role": role, "content": msg.get("content")}
        if msg_meta is not None:
            core["metadata"] = msg_meta
        core = {k: v for k, v in core.items() if k in msg or k == "metadata"}

        thread = batch.get(thread_id)
        thread_tags = ev.get("threadTags")
        if thread is None:
            thread = _blank_row(thread_id, "thread", now_ms())
            thread["metadata"] = ev.get("threadMetadata")
            batch.add(thread)
        thread.update(user_id=user_id, tags=thread_tags, input=core)
        batch.touch(thread)

        previous = batch.last_child(thread_id)
        shared: dict[str, JSON] = {} if user_id is None else {"user_id": user_id}
        for key, value in (("tags", msg.get("tags")), ("metadata", msg_meta)):
            if value is not None:
                shared[key] = value
        if "feedback" in ev:
            shared["feedback"] = ev.get("feedback")
        update: dict[str, JSON] = {}
        insert = True
        if previous is not None and previous["type"] != "custom-event" and not msg.get("isRetry"):
            if role in OUTPUT_ROLES:
                old = batch.field(previous, "output")
                update["output"] = [*(old if isinstance(old, list) else []), core]
                insert = False
            elif role in INPUT_ROLES:
                if batch.field(previous, "output"):
                    update["input"] = [core]
                else:
                    old = batch.field(previous, "input")
                    update["input"] = [*(old if isinstance(old, list) else []), core]
                    insert = False
        elif role in OUTPUT_ROLES:
            update["output"] = [core]
        elif role in INPUT_ROLES:
            update["input"] = [core]

        if run_id is None:
            return DUPLICATE_ERROR
        if insert:
            if batch.get(run_id) is not None:
                return DUPLICATE_ERROR
            run = _blank_row(run_id, "chat", ts)
            run.update(parent_run_id=thread_id, ended_at=ts, **shared, **update)
            batch.add(run)
            return None
        assert previous is not None
        previous.update(ended_at=ts, **shared, **update)
        if previous["id"] != run_id:
            if batch.get(run_id) is not None:
                return DUPLICATE_ERROR
            batch.rename(previous, run_id)
        batch.touch(previous)
        return None

    # reads ----------------------------------------------------------------------------------
    def query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            cur = self.conn.execute(sql, args)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()

    def trace_id(self, run_id: str) -> str | None:
        """The root ancestor of a run (None for a root)."""
        with self.lock:
            current = run_id
            root: str | None = None
            for _ in range(10_000):  # guard against cycles
                rec = self.conn.execute(
                    "SELECT parent_run_id FROM runs WHERE id = ?", (current,)
                ).fetchone()
                if rec is None or rec[0] is None:
                    return root
                current = root = rec[0]
            return root


def _text(value: JSON) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _text_or_none(value: JSON) -> str | None:
    return None if value is None else _text(value)


def _blank_row(run_id: str, run_type: str, created_at: int) -> Row:
    row: Row = dict.fromkeys(COLUMNS)
    row.update(id=run_id, type=run_type, created_at=created_at)
    return row
