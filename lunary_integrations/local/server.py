"""The HTTP side of the collector: routing, auth, bodies and status codes of the real server."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import unquote

from . import shapes
from .query import build_where, order_by, page_limit, parse_query_string
from .store import Store, truthy
from .util import JSON, InvalidUUID, dumps, js_dumps, loads_camel, parse_uuid

MAX_BODY = 20 * 1024 * 1024
DRAIN_LIMIT = 256 * 1024 * 1024  # larger bodies are not read: the connection is closed
JSON_TYPE = "application/json; charset=utf-8"
INGEST_PATH = "/v1/runs/ingest"


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, value: JSON) -> Response:
    return Response(status, dumps(value).encode("utf-8"))


def message(status: int, text: str) -> Response:
    return json_response(status, {"message": text})


NOT_FOUND = Response(404, b"Not Found", "text/plain; charset=utf-8")


class BodyError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def decode_body(raw: bytes, encoding: str | None) -> bytes:
    """Undo Content-Encoding (gzip/deflate) with the 20 MiB limit on the decoded size."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BodyError(message(415, "Unsupported Content-Encoding: " + encoding))
    wbits = zlib.MAX_WBITS | 32  # auto-detect gzip or zlib header
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(raw, MAX_BODY + 1)
    except zlib.error as exc:
        raise BodyError(message(400, "invalid compressed body")) from exc
    if len(out) > MAX_BODY or inflater.unconsumed_tail:
        raise BodyError(message(413, "request entity too large"))
    return out


class Collector:
    """Request handling, independent of the socket layer (the handler below feeds it)."""

    def __init__(self, store: Store, public_key: str, private_key: str) -> None:
        self.store = store
        self.public_key = public_key
        self.private_key = private_key
        self.project_id = public_key
        self._stats_lock = threading.Lock()
        self.requests = 0
        self.events = 0

    # auth -----------------------------------------------------------------------------------
    @staticmethod
    def api_key(headers: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization")
        if auth:
            scheme, _, token = auth.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        key = headers.get("x-api-key")
        return key.strip() if key and key.strip() else None

    # dispatch -------------------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        path, _, qs = target.partition("?")
        key = self.api_key(headers)
        if method == "POST" and path == INGEST_PATH:
            with self._stats_lock:
                self.requests += 1
            return self.ingest(key, headers, body or b"")
        if key is None:
            return NOT_FOUND
        if key == self.public_key:
            return message(401, "This route requires a private API key")
        if key != self.private_key:
            return message(401, "Invalid API key")
        if method != "GET":
            return NOT_FOUND
        parts = path.rstrip("/").split("/")
        if parts[:3] != ["", "v1", "runs"]:
            return NOT_FOUND
        rest = [unquote(p) for p in parts[3:]]
        try:
            if not rest:
                return self.list_runs(qs)
            if rest == ["count"]:
                return self.count(qs)
            if rest == ["export"]:
                return self.export(qs)
            if len(rest) == 1:
                return self.get_run(rest[0])
            if len(rest) == 2 and rest[1] == "related":
                return self.related(rest[0])
        except InvalidUUID as exc:
            return message(500, str(exc))
        return NOT_FOUND

    # ingest ---------------------------------------------------------------------------------
    def ingest(self, key: str | None, headers: Mapping[str, str], raw: bytes) -> Response:
        try:
            data = decode_body(raw, headers.get("content-encoding"))
        except BodyError as exc:
            return exc.response
        payload: JSON = {}
        sent_run_id: set[int] = set()
        if "json" in (headers.get("content-type") or "").lower() and data.strip():
            try:
                payload, sent_run_id = loads_camel(data)
            except ValueError:
                return message(400, "invalid JSON")
        if key is None:
            return message(402, "Incorrect project id format")
        if key not in (self.public_key, self.private_key):
            return message(401, "Invalid API key")
        # `{"events": [...]}` or `{"events": {one event}}`; anything else has no `events`
        events = payload.get("events") if isinstance(payload, dict) else None
        if not truthy(events):
            return message(500, "Missing events payload.")
        if not isinstance(events, list):
            events = [events]
        # a one-element array in place of an event is unwrapped, as the server does
        events = [e[0] if isinstance(e, list) and len(e) == 1 else e for e in events]
        with self._stats_lock:
            self.events += len(events)
        results = self.store.ingest(events, sent_run_id=sent_run_id)
        return json_response(200, {"results": results})

    # reads ----------------------------------------------------------------------------------
    def _thread_infos(
        self, ids: list[str], *, export: bool = False
    ) -> dict[str, shapes.ThreadInfo]:
        infos = {i: shapes.ThreadInfo() for i in ids}
        if not ids:
            return infos
        marks = ",".join("?" * len(ids))
        for rec in self.store.query(
            "SELECT parent_run_id, input, output, feedback FROM runs"
            f" WHERE type = 'chat' AND parent_run_id IN ({marks}) ORDER BY created_at, seq",
            ids,
        ):
            infos[rec["parent_run_id"]].add_chat(
                _load(rec["input"]), _load(rec["output"]), _load(rec["feedback"])
            )
        if export:
            for rec in self.store.query(
                "WITH RECURSIVE d(id, root) AS ("
                f" SELECT id, parent_run_id FROM runs WHERE parent_run_id IN ({marks})"
                " UNION ALL SELECT r.id, d.root FROM runs r JOIN d ON r.parent_run_id = d.id)"
                " SELECT d.root, r.input, r.output, r.created_at FROM d JOIN runs r ON r.id = d.id"
                " ORDER BY r.created_at, r.seq",
                ids,
            ):
                infos[rec["root"]].add_export_messages(
                    _load(rec["input"]), _load(rec["output"]), rec["created_at"]
                )
        return infos

    def _select(self, qs: str, *, paged: bool) -> tuple[list[Any], bool, int, int]:
        q = parse_query_string(qs)
        where = build_where(q)
        page, limit = page_limit(q)
        sql = f"{shapes.SELECT_RUNS} WHERE {where.sql} ORDER BY {order_by(q)}"
        args = list(where.args)
        if paged:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, page * limit]
        return self.store.query(sql, args), where.truncate_llm, page, limit

    def list_runs(self, qs: str) -> Response:
        rows, truncate, page, limit = self._select(qs, paged=True)
        threads = self._thread_infos([r["id"] for r in rows if r["type"] == "thread"])
        data = [
            shapes.list_item(r, self.project_id, truncate=truncate, thread=threads.get(r["id"]))
            for r in rows
        ]
        return json_response(200, {"page": page, "limit": limit, "data": data})

    def count(self, qs: str) -> Response:
        q = parse_query_string(qs)
        where = build_where(q)
        _, limit = page_limit(q)
        rows = self.store.query(
            f"SELECT count(*) AS n FROM (SELECT 1 FROM runs r WHERE {where.sql} LIMIT ?)",
            [*where.args, limit],
        )
        return json_response(200, rows[0]["n"])

    def export(self, qs: str) -> Response:
        q = parse_query_string(qs)
        fmt = q.get("exportFormat")
        types = q.filter_values("type")
        if q.get("exportType") is not None or not types or fmt not in ("jsonl", "csv", "ojsonl"):
            return message(422, "Invalid export request: `type` and `exportFormat` are required")
        export_type = unquote(types[0])
        rows, _, _, _ = self._select(qs, paged=False)
        threads = (
            self._thread_infos([r["id"] for r in rows if r["type"] == "thread"], export=True)
            if export_type == "thread"
            else {}
        )
        items: list[dict[str, JSON]] = []
        for r in rows:
            if export_type == "thread" and r["type"] == "thread":
                items.append(shapes.export_thread_row(r, self.project_id, threads.get(r["id"])))
                continue
            item = shapes.list_item(r, self.project_id, enriched=False)
            if export_type == "trace":
                item["children"] = []
            items.append(item)
        if fmt == "csv":
            return Response(200, "".join(shapes.csv_lines(items)).encode("utf-8"), "text/csv")
        lines: Iterable[JSON] = items
        if fmt == "ojsonl":
            lines = [line for line in map(shapes.ojsonl_line, items) if line is not None]
        text = "".join(js_dumps(line) + "\n" for line in lines)
        return Response(200, text.encode("utf-8"), "application/jsonl")

    def get_run(self, raw_id: str) -> Response:
        run_id = parse_uuid(raw_id)
        rows = self.store.query(f"{shapes.SELECT_RUNS} WHERE r.id = ?", [run_id])
        if not rows:
            return message(404, "Run not found")
        trace_id = self.store.trace_id(run_id)
        return json_response(200, shapes.get_item(rows[0], self.project_id, trace_id))

    def related(self, raw_id: str) -> Response:
        run_id = parse_uuid(raw_id)
        rows = self.store.query(
            "WITH RECURSIVE d(id) AS (SELECT id FROM runs WHERE id = ?"
            " UNION SELECT r.id FROM runs r JOIN d ON r.parent_run_id = d.id)"
            " SELECT r.* FROM runs r JOIN d ON r.id = d.id ORDER BY r.created_at, r.seq",
            [run_id],
        )
        return json_response(200, [shapes.related_row(r, self.project_id) for r in rows])


_load = shapes.load_jsonb


# ---------------------------------------------------------------------------------------------
# socket layer


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], collector: Collector) -> None:
        super().__init__(address, Handler)
        self.collector = collector


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "lunary-local"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no request log
        return

    def _read_body(self) -> bytes | None:
        """The request body; over 20 MiB it is read and thrown away, then BodyError(413)."""
        too_large = BodyError(message(413, "request entity too large"))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(65537)
                n = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(65537).strip():
                        pass  # trailers
                    break
                size += n
                data = self.rfile.read(n)
                if size <= MAX_BODY:
                    chunks.append(data)
                self.rfile.readline(3)
            if size > MAX_BODY:
                raise too_large
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            if length > DRAIN_LIMIT:
                self.close_connection = True  # not worth reading: drop the connection
                raise too_large
            while length > 0:  # drain, so the client can read the answer and keep the socket
                got = self.rfile.read(min(length, 1 << 20))
                if not got:
                    break
                length -= len(got)
            raise too_large
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        collector = cast(HTTPServer, self.server).collector
        try:
            body = self._read_body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            response = collector.handle(method, self.path, headers, body)
        except BodyError as exc:
            response = exc.response
        except Exception as exc:  # a bug must still answer, like the real server's 500s
            response = message(500, f"{type(exc).__name__}: {exc}")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")
