"""A scriptable ingest server on 127.0.0.1 for fault-injection tests.

Each request to ``POST /v1/runs/ingest`` takes the next action from ``script`` (then answers
normally once the script is used up). Answers behave like the real server: per-event
results, and a re-sent ``start`` is refused as "already exists", so tests can check that
retries never duplicate a run. Every received event is kept in ``events``; stored runs
(merged start/end) in ``runs``.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ALREADY_EXISTS = "Run with this ID already exists in the database."


@dataclass
class Action:
    """``status``: answer with it (and ``headers``) without storing; ``hang``: sleep that long
    first; ``reset``: close the connection without answering; ``refuse_runs``: store the
    batch but refuse these run ids' events; ``refuse_if``: the same for the events this
    predicate is true of; ``drip``: send the answer slowly."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    hang: float = 0.0
    reset: bool = False
    refuse_runs: frozenset[str] = frozenset()
    drip: float = 0.0
    refuse_if: Callable[[dict[str, Any]], bool] | None = None


class FaultServer:
    def __init__(self, port: int = 0) -> None:
        self.script: list[Action] = []
        self.events: list[dict[str, Any]] = []
        self.runs: dict[str, dict[str, Any]] = {}
        #: {"status", "n_events", "bytes" (as received), "body_bytes" (decompressed), "gzip"}
        self.requests: list[dict[str, Any]] = []
        #: ``Authorization`` headers received (to prove which key the client really sent).
        self.auth: set[str] = set()
        #: What answers once ``script`` is used up (a normal answer by default).
        self.default = Action()
        self.lock = threading.Lock()
        self.max_body: int | None = None  # answer 413 above this many bytes
        self.poison: set[str] = set()  # a batch holding one of these run ids is answered 400
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ handling

    def _next_action(self) -> Action:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length", 0))
        raw = h.rfile.read(length)
        zipped = h.headers.get("Content-Encoding") == "gzip"
        body_bytes = len(gzip.decompress(raw)) if zipped else len(raw)
        with self.lock:
            self.auth.add(h.headers.get("Authorization", ""))
        action = self._next_action()
        if action.hang:
            self._stop.wait(action.hang)
        if action.reset:
            linger_zero = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # close with RST
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
            h.connection.close()
            h.close_connection = True
            self._log(None, 0, len(raw), zipped, body_bytes)
            return
        if action.status is not None:
            self._log(action.status, 0, len(raw), zipped, body_bytes)
            self._reply(h, action.status, action.body or {"message": "injected"}, action.headers)
            return
        if self.max_body is not None and len(raw) > self.max_body:
            self._log(413, 0, len(raw), zipped, body_bytes)
            self._reply(h, 413, {"message": "request entity too large"})
            return
        body = json.loads(gzip.decompress(raw) if zipped else raw)
        events = body["events"]
        if self.poison and any(e.get("runId") in self.poison for e in events):
            self._log(400, len(events), len(raw), zipped, body_bytes)
            self._reply(h, 400, {"message": "invalid event"})
            return
        results = [self._store(e, action.refuse_runs, action.refuse_if) for e in events]
        self._log(200, len(events), len(raw), zipped, body_bytes)  # before the client hears back
        self._reply(h, 200, {"results": results}, drip=action.drip)

    def _store(
        self,
        event: dict[str, Any],
        refuse: frozenset[str],
        refuse_if: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        run_id = event.get("runId")
        with self.lock:
            self.events.append(event)
            if run_id in refuse or (refuse_if is not None and refuse_if(event)):
                return {"id": run_id, "success": False, "error": "refused for the test"}
            if event.get("event") == "start":
                if run_id in self.runs:
                    return {"id": run_id, "success": False, "error": ALREADY_EXISTS}
                self.runs[run_id] = {**event, "status": "started"}
            elif run_id in self.runs:
                run = self.runs[run_id]
                run["status"] = "error" if event.get("event") == "error" else "success"
                kept = ("output", "tokensUsage", "error")
                run.update({k: v for k, v in event.items() if k in kept})
                run["ends"] = run.get("ends", 0) + 1
        return {"id": run_id, "success": True}

    def _reply(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        drip: float = 0.0,
    ) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if drip:
            for i in range(0, len(data), 8):
                h.wfile.write(data[i : i + 8])
                h.wfile.flush()
                time.sleep(drip)
        else:
            h.wfile.write(data)

    def _log(self, status: int | None, n: int, size: int, zipped: bool, body_bytes: int) -> None:
        with self.lock:
            self.requests.append(
                {
                    "status": status,
                    "n_events": n,
                    "bytes": size,
                    "body_bytes": body_bytes,
                    "gzip": zipped,
                }
            )

    def started_runs(self) -> Iterator[str]:
        with self.lock:
            return iter(list(self.runs))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
