"""An embedded, Lunary-compatible collector: the real server's ingest and Runs API, in-process.

    from lunary_integrations.local import LocalLunary

    with LocalLunary() as lunary:
        ...  # send events to lunary.url with lunary.public_key
        runs = lunary.list_runs(type="llm")

stdlib only: `http.server.ThreadingHTTPServer` on loopback plus `sqlite3`.
"""

from __future__ import annotations

import json
import threading
import uuid
from types import TracebackType
from typing import Any
from urllib.parse import quote
from urllib.request import ProxyHandler, Request, build_opener

from . import shapes
from .server import Collector, HTTPServer
from .store import Store
from .util import JSON

__all__ = ["LocalLunary"]

_SAFE = "%.,:-_~/!*'()@"  # keep `%2E`-style escapes and filter punctuation as given
_OPENER = build_opener(ProxyHandler({}))  # loopback: never through an HTTP(S)_PROXY


def _query_string(query: dict[str, Any]) -> str:
    pairs: list[str] = []
    for key, value in query.items():
        if value is None:
            continue
        name = "user-props" if key == "user_props" else key
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            text = ("true" if v else "false") if isinstance(v, bool) else str(v)
            pairs.append(f"{quote(name, safe=_SAFE)}={quote(text, safe=_SAFE)}")
    return "&".join(pairs)


class LocalLunary:
    """A Lunary-compatible server on 127.0.0.1 backed by sqlite (":memory:" or a file)."""

    def __init__(
        self,
        db: str = ":memory:",
        host: str = "127.0.0.1",
        port: int = 0,
        public_key: str | None = None,
        private_key: str | None = None,
    ) -> None:
        self.db = db
        self.host = host
        self.port = port
        self.public_key = public_key or str(uuid.uuid4())
        self.private_key = private_key or str(uuid.uuid4())
        self.project_id = self.public_key
        self._store: Store | None = None
        self._collector: Collector | None = None
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalLunary:
        with self._lock:
            if self._server is not None:
                return self
            store = Store(self.db)
            collector = Collector(store, self.public_key, self.private_key)
            try:
                server = HTTPServer((self.host, self.port), collector)
            except BaseException:
                store.close()
                raise
            self._store, self._collector, self._server = store, collector, server
            self.port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"lunary-local:{self.port}",
                daemon=True,
            )
            self._thread.start()
            return self

    def stop(self) -> None:
        with self._lock:
            server, thread, store = self._server, self._thread, self._store
            self._server = self._thread = None
            if server is None:
                return
            server.shutdown()
            server.server_close()
            if thread is not None:
                thread.join(timeout=5)
            if store is not None:
                store.close()

    def __enter__(self) -> LocalLunary:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def stats(self) -> dict[str, int]:
        """What ingest received: `requests` POSTed to it and `events` in their payloads."""
        c = self._collector
        if c is None:
            return {"requests": 0, "events": 0}
        return {"requests": c.requests, "events": c.events}

    # convenience reads (real HTTP with the private key) ---------------------------------------
    def _get(self, path: str, query: dict[str, Any] | None = None) -> JSON:
        url = self.url + path
        if query:
            qs = _query_string(query)
            if qs:
                url += "?" + qs
        req = Request(url, headers={"Authorization": f"Bearer {self.private_key}"})
        with _OPENER.open(req, timeout=30) as resp:
            return json.loads(resp.read())

    def list_runs(self, **query: Any) -> list[dict[str, JSON]]:
        """GET /v1/runs?<query>; returns `data`."""
        data = self._get("/v1/runs", query)["data"]
        assert isinstance(data, list)
        return data

    def get_run(self, run_id: str) -> dict[str, JSON]:
        """GET /v1/runs/{id} (raises urllib's HTTPError on 404)."""
        run = self._get(f"/v1/runs/{quote(run_id, safe='')}")
        assert isinstance(run, dict)
        return run

    def related(self, run_id: str) -> list[dict[str, JSON]]:
        """GET /v1/runs/{id}/related."""
        rows = self._get(f"/v1/runs/{quote(run_id, safe='')}/related")
        assert isinstance(rows, list)
        return rows

    def count(self, **query: Any) -> int:
        """GET /v1/runs/count?<query> (the real server caps it at `limit`, default 50)."""
        return int(self._get("/v1/runs/count", query))

    def all_runs(self) -> list[dict[str, JSON]]:
        """Every stored run, straight from sqlite, in the single-run GET shape plus
        `parentRunId`, ordered by createdAt."""
        store = self._store
        if store is None:
            return []
        rows = store.query(f"{shapes.SELECT_RUNS} ORDER BY r.created_at, r.seq")
        parents = {r["id"]: r["parent_run_id"] for r in rows}
        out = []
        for r in rows:
            root, current, hops = None, r["parent_run_id"], 0
            while current is not None and hops < 10_000:
                root, current, hops = current, parents.get(current), hops + 1
            item = shapes.get_item(r, self.project_id, root)
            item["parentRunId"] = r["parent_run_id"]
            out.append(item)
        return out
