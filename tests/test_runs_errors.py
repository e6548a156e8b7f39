"""Error paths of the Runs API clients: typed errors, retries, and no key in any message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lunary_integrations import configure
from lunary_integrations.langchain import LunaryRunsRetriever as LCRetriever
from lunary_integrations.llama_index import LunaryRunsRetriever as LIRetriever
from lunary_integrations.local import LocalLunary
from lunary_integrations.retry_policy import RetryPolicy
from lunary_integrations.runs import (
    AsyncRunsClient,
    AuthenticationError,
    InvalidRequestError,
    LunaryAPIError,
    LunaryConnectionError,
    RateLimitError,
    RunNotFoundError,
    RunsClient,
    ServerError,
)

SECRET = "sk-very-secret-0123456789"
PAGE = {"page": 0, "limit": 50, "data": []}
FAST = {"backoff": 0.001, "max_backoff": 0.005}  # retries without real waiting


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: PAGE)
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # close the connection without answering


class ScriptedServer:
    """GETs on 127.0.0.1 answered from ``script`` in order (then 200 with an empty page)."""

    def __init__(self, *script: Reply) -> None:
        self.script = list(script)
        self.paths: list[str] = []
        self.auth: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.paths.append(self.path)
                owner.auth.append(self.headers.get("Authorization"))
                reply = owner.script.pop(0) if owner.script else Reply()
                if reply.reset:
                    self.close_connection = True
                    return
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def scripted() -> Iterator[type[ScriptedServer]]:
    servers: list[ScriptedServer] = []

    class Tracked(ScriptedServer):
        def __init__(self, *script: Reply) -> None:
            super().__init__(*script)
            servers.append(self)

    yield Tracked
    for server in servers:
        server.close()


# --------------------------------------------------------------------------- keys


def test_a_missing_private_key_is_a_clear_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(public_key="pk-only")
    for make in (RunsClient, AsyncRunsClient, _reader, LCRetriever, LIRetriever):
        with pytest.raises(ValueError, match="reading runs needs the project's private key"):
            make()
    monkeypatch.setenv("LUNARY_PRIVATE_KEY", "from-env")
    monkeypatch.setenv("LUNARY_API_URL", "http://127.0.0.1:9")
    assert repr(RunsClient()) == "RunsClient(api_url='http://127.0.0.1:9')"


def _reader() -> Any:  # the llama_index subpackage exports it lazily
    from lunary_integrations.llama_index import LunaryRunsReader

    return LunaryRunsReader()


def test_key_precedence_argument_over_configure_over_env(
    scripted: type[ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted()
    monkeypatch.setenv("LUNARY_PRIVATE_KEY", "env-key")
    monkeypatch.setenv("LUNARY_API_URL", server.url)
    RunsClient().list()
    configure(private_key="configured-key")
    RunsClient().list()
    RunsClient("explicit-key").list()
    assert server.auth == ["Bearer env-key", "Bearer configured-key", "Bearer explicit-key"]


def test_public_key_used_for_reads(lunary_local: LocalLunary) -> None:
    with RunsClient(lunary_local.public_key) as client:
        with pytest.raises(AuthenticationError) as info:
            client.list(type="llm")
    assert info.value.status == 401
    assert str(info.value) == (
        "reading runs needs the project's private key (401: This route requires a private API key)"
    )
    assert lunary_local.public_key not in str(info.value) + repr(info.value)


def test_unknown_and_malformed_run_ids(lunary_local: LocalLunary) -> None:
    unknown = "62d126d8-9437-407e-af86-4bdbd34debea"
    with RunsClient() as client:
        with pytest.raises(RunNotFoundError) as info:
            client.get(unknown)
        with pytest.raises(RunNotFoundError):
            client.related(unknown.upper())
        for bad in ("not-a-uuid", "", "62d126d8-9437-407e-af86-4bdbd34debeaX"):
            with pytest.raises(ValueError, match="run id must be a UUID"):
                client.get(bad)
    assert info.value.run_id == unknown and info.value.server_message == "Run not found"
    assert isinstance(info.value, LunaryAPIError)


def test_malformed_id_never_reaches_the_server(scripted: type[ScriptedServer]) -> None:
    server = scripted()
    with RunsClient(SECRET, server.url) as client, pytest.raises(ValueError):
        client.get("../runs")
    with pytest.raises(ValueError):
        RunsClient(SECRET, server.url).list(parent_run_id="not-a-uuid")
    assert server.paths == []


# --------------------------------------------------------------------------- retries


def test_server_500_then_success(scripted: type[ScriptedServer]) -> None:
    server = scripted(
        Reply(500, {"message": "boom"}),
        Reply(502, {"message": "bad gateway"}),
        Reply(200, {"page": 0, "limit": 50, "data": [{"id": "r1", "type": "llm"}]}),
    )
    with RunsClient(SECRET, server.url, max_retries=3, **FAST) as client:
        page = client.list(type="llm")
    assert [r.id for r in page.data] == ["r1"]
    assert server.paths == ["/v1/runs?type=llm"] * 3


async def test_async_server_500_then_success(scripted: type[ScriptedServer]) -> None:
    server = scripted(Reply(503, {"message": "busy"}), Reply(200, 7))
    async with AsyncRunsClient(SECRET, server.url, max_retries=1, **FAST) as client:
        assert await client.count(type="llm") == 7
    assert server.paths == ["/v1/runs/count?type=llm&limit=1000000000"] * 2


def test_429_with_retry_after_then_success(scripted: type[ScriptedServer]) -> None:
    server = scripted(
        Reply(429, {"message": "Too many requests"}, {"Retry-After": "0"}),
        Reply(200, {"page": 0, "limit": 50, "data": []}),
    )
    with RunsClient(SECRET, server.url, max_retries=1, backoff=60, max_backoff=60) as client:
        assert client.list(type="llm").data == []  # Retry-After: 0 overrides the 60 s backoff
    assert len(server.paths) == 2


def test_retries_are_bounded_and_typed(scripted: type[ScriptedServer]) -> None:
    server = scripted(*[Reply(500, {"message": "still down"})] * 5)
    with RunsClient(SECRET, server.url, max_retries=2, **FAST) as client:
        with pytest.raises(ServerError) as info:
            client.list()
    assert len(server.paths) == 3 and info.value.status == 500
    assert "still down" in str(info.value)
    limited = scripted(*[Reply(429, {"message": "slow down"})] * 2)
    with RunsClient(SECRET, limited.url, max_retries=1, **FAST) as client:
        with pytest.raises(RateLimitError):
            client.list()


def test_client_errors_are_not_retried(scripted: type[ScriptedServer]) -> None:
    message = "Invalid export request: `type` and `exportFormat` are required"
    server = scripted(Reply(422, {"message": message}), Reply(404, {"message": "Not Found"}))
    with RunsClient(SECRET, server.url, max_retries=5, **FAST) as client:
        with pytest.raises(InvalidRequestError) as info:
            list(client.export("csv", type="llm"))
        with pytest.raises(LunaryAPIError) as missing:
            client.list()
    assert info.value.status == 422 and info.value.server_message == message
    assert message in str(info.value)
    assert missing.value.status == 404 and "check api_url" in str(missing.value)
    assert len(server.paths) == 2


def test_dropped_connections_are_retried(scripted: type[ScriptedServer]) -> None:
    server = scripted(Reply(reset=True), Reply(200, 3))
    with RunsClient(SECRET, server.url, max_retries=1, **FAST) as client:
        assert client.count() == 3
    assert len(server.paths) == 2


def test_unreachable_server_is_a_connection_error_without_the_key() -> None:
    client = RunsClient(SECRET, "http://127.0.0.1:9", max_retries=1, **FAST)
    with pytest.raises(LunaryConnectionError) as info:
        client.get("62d126d8-9437-407e-af86-4bdbd34debea")
    assert "after 2 attempt(s)" in str(info.value) and info.value.status is None
    assert SECRET not in str(info.value) + repr(info.value)


def test_retry_policy_delays() -> None:
    policy = RetryPolicy(max_retries=5, backoff=1.0, max_backoff=8.0)
    for attempt, step in ((0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)):
        for _ in range(20):
            assert step / 2 <= policy.delay(attempt) <= step  # capped exponential + jitter
    assert policy.delay(0, "3") == 3.0
    assert policy.delay(0, "120") == 8.0  # a Retry-After is honoured up to the cap
    soon = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=5), usegmt=True)
    assert 3.0 <= policy.delay(0, soon) <= 5.0
    assert 0.5 <= policy.delay(0, "garbage") <= 1.0
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)


# --------------------------------------------------------------------------- secrets


def test_keys_never_appear_in_reprs_or_error_messages(scripted: type[ScriptedServer]) -> None:
    server = scripted(Reply(401, {"message": "Invalid API key"}), Reply(500, {"message": "x"}))
    client = RunsClient(SECRET, server.url, max_retries=0)
    texts = [repr(client), str(vars(client))]
    for _ in range(2):
        with pytest.raises(LunaryAPIError) as info:
            client.list()
        texts += [str(info.value), repr(info.value)]
    lc = LCRetriever(private_key=SECRET, api_url=server.url)
    li = LIRetriever(SECRET, server.url, tags=["x"])
    texts += [repr(lc), str(lc), str(lc.model_dump()), repr(li)]
    assert all(SECRET not in text for text in texts)
    assert server.auth == [f"Bearer {SECRET}"] * 2  # ... while it is sent where it belongs
