"""Keys never leak: not in logs (DEBUG, failures included), reprs, exception messages or
cassettes; TLS verification is on by default."""

from __future__ import annotations

import logging
import re
import ssl
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import lunary_integrations
from lunary_integrations import AsyncRunsClient, RunsClient
from lunary_integrations.config import Settings, configure, resolve
from lunary_integrations.ingest import DisabledClient, get_client
from lunary_integrations.ingest.transport import Transport
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.langchain import LunaryRunsRetriever as LCRetriever
from lunary_integrations.llama_index import LunaryRunsReader
from lunary_integrations.llama_index import LunaryRunsRetriever as LIRetriever
from lunary_integrations.local import LocalLunary
from lunary_integrations.runs.errors import LunaryAPIError
from lunary_integrations.tracer import RunTracer

from .fault_server import Action, FaultServer, free_port
from .reliability_support import KEY, client_of, lc_handler, li_instrumented, run_lc_chain

PRIVATE = "sk-live-5b1d0e77-PRIVATE-do-not-log"
ROOT = Path(__file__).resolve().parent.parent


def leaks(text: str) -> list[str]:
    return [k for k in (KEY, PRIVATE) if k in text]


def test_keys_never_in_debug_logs_through_failures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore, LangChain...
    with FaultServer() as server:
        server.script = [
            Action(status=500),
            Action(hang=1.0),  # past the 0.3 s timeout
            Action(reset=True),
            Action(status=429, headers={"Retry-After": "0"}),
        ]
        handler = lc_handler(server.url, request_timeout=0.3)
        for i in range(5):
            run_lc_chain(handler, i)
        assert client_of(handler).flush(15)
        with li_instrumented(server.url, request_timeout=0.3) as index:
            index.as_query_engine(similarity_top_k=1).query("capital of France?")
            assert lunary_integrations.flush(15)
        server.script = [Action(status=401, body={"message": "Invalid API key"})] * 20
        run_lc_chain(handler, 99)
        assert client_of(handler).flush(5) is False
        assert f"Bearer {KEY}" in server.auth  # the key really was sent on every request
    # a collector that is not there at all (connection refused), then shut down
    down = lc_handler(f"http://127.0.0.1:{free_port()}")
    run_lc_chain(down)
    assert client_of(down).flush(0.3) is False
    # the Runs API with a wrong key, and against nothing
    with LocalLunary() as lunary:
        with (
            RunsClient(PRIVATE, lunary.url, max_retries=0) as client,
            pytest.raises(LunaryAPIError),
        ):
            client.list(type="llm")
    with RunsClient(PRIVATE, f"http://127.0.0.1:{free_port()}", max_retries=0) as client:
        with pytest.raises(LunaryAPIError):
            client.list(type="llm")
    lunary_integrations.shutdown(1)
    text = caplog.text + "\n".join(repr(r.args) for r in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # DEBUG really on
    assert leaks(text) == []
    print(f"secrets: {len(caplog.records)} log records at DEBUG, 0 contain a key")


def test_keys_never_in_reprs() -> None:
    settings = Settings(public_key=KEY, private_key=PRIVATE, api_url="http://127.0.0.1:9")
    handler = LunaryCallbackHandler(
        public_key=KEY, private_key=PRIVATE, api_url="http://127.0.0.1:9"
    )
    tracer = handler.tracer
    client = get_client(settings)
    transport = Transport(settings)
    objects: list[Any] = [
        settings,
        handler,
        tracer,
        RunTracer(runtime="t", settings=settings),
        client,
        transport,
        transport._client,
        DisabledClient(settings),
        RunsClient(PRIVATE, "http://127.0.0.1:9"),
        AsyncRunsClient(PRIVATE, "http://127.0.0.1:9"),
        LCRetriever(private_key=PRIVATE, api_url="http://127.0.0.1:9"),
        LIRetriever(PRIVATE, "http://127.0.0.1:9"),
        LunaryRunsReader(PRIVATE, "http://127.0.0.1:9"),
    ]
    for obj in objects:
        for text in (repr(obj), str(obj), format(obj)):
            assert leaks(text) == [], (type(obj).__name__, text)
    lc_retriever = objects[10]
    assert leaks(repr(lc_retriever.model_dump())) == []
    transport.close()


def test_keys_never_in_exception_messages() -> None:
    errors: list[BaseException] = []
    for bad in (
        {"api_url": "not a url"},
        {"max_batch_events": -1},
        {"sample_rate": 7},
        {"flush_intervall": 1},
        {"mask": "nope"},
    ):
        with pytest.raises(ValueError) as info:
            configure(public_key=KEY, private_key=PRIVATE, **bad)
        errors.append(info.value)
        with pytest.raises(ValueError) as info:
            resolve(public_key=KEY, private_key=PRIVATE, **bad)
        errors.append(info.value)
    with pytest.raises(ValueError) as info:
        Settings(public_key=KEY, private_key=PRIVATE, max_event_bytes=64 * 1024 * 1024)
    errors.append(info.value)
    with pytest.raises(ValueError) as info:
        LunaryCallbackHandler(public_key=KEY, request_timeout=-1)
    errors.append(info.value)
    with LocalLunary() as lunary:
        for key in (PRIVATE, KEY):
            with RunsClient(key, lunary.url, max_retries=0) as client:
                with pytest.raises(LunaryAPIError) as api_error:
                    client.get(str(uuid.uuid4()))
                errors.append(api_error.value)
    with RunsClient(PRIVATE, f"http://127.0.0.1:{free_port()}", max_retries=0) as client:
        with pytest.raises(LunaryAPIError) as api_error:
            client.count(type="llm")
        errors.append(api_error.value)
    for error in errors:
        text = f"{error!s} {error!r} {error.args!r} {getattr(error, 'server_message', '')}"
        assert leaks(text) == [], text
    print(f"secrets: {len(errors)} exception messages checked")


_SECRET_PATTERNS = [
    re.compile(r"authorization", re.I),
    re.compile(r"x-api-key", re.I),
    re.compile(r"bearer\s", re.I),
    re.compile(r"\b(sk|pk)-[A-Za-z0-9-]{8,}"),
    # a collector's project id is its public key: only the placeholder may be stored
    re.compile(r'"projectId"\s*:\s*"(?!<PROJECT_ID>)'),
]


def test_no_secret_in_any_cassette() -> None:
    from .runs_support import FAKE_PRIVATE_KEY

    files = [p for p in (ROOT / "cassettes").rglob("*") if p.is_file()]
    assert files, "no cassette found"
    for path in files:
        text = path.read_text(errors="replace")
        for secret in (KEY, PRIVATE, FAKE_PRIVATE_KEY):
            assert secret not in text, path
        for pattern in _SECRET_PATTERNS:
            assert not pattern.search(text), (path, pattern.pattern)
    print(f"secrets: {len(files)} cassette files grepped")


def _ssl_context(client: httpx.Client | httpx.AsyncClient) -> ssl.SSLContext:
    ctx = client._transport._pool._ssl_context  # type: ignore[union-attr]
    assert isinstance(ctx, ssl.SSLContext)
    return ctx


def test_tls_verification_is_on_by_default() -> None:
    assert Settings().verify_tls is True
    transport = Transport(Settings(public_key=KEY))
    ctx = _ssl_context(transport._client)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    transport.close()
    with RunsClient(PRIVATE) as runs:
        ctx = _ssl_context(runs._http)
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    # and the setting is really wired (so the assertion above is not vacuous)
    off = Transport(Settings(public_key=KEY, verify_tls=False))
    assert _ssl_context(off._client).verify_mode == ssl.CERT_NONE
    off.close()
