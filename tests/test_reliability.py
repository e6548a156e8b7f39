"""Reliability through the real integrations: a LangChain chain and a LlamaIndex query engine
traced into a fault-injecting server (``fault_server.py``) over real HTTP on 127.0.0.1.

``test_ingest.py`` proves the ingest client on its own; these tests prove that the app never
notices the collector's trouble and that what is stored is complete and unduplicated.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.runnables import RunnableLambda

import lunary_integrations
from lunary_integrations.serialize import TRUNCATION_MARKER

from .fault_server import Action, FaultServer, free_port
from .reliability_support import (
    KEY,
    assert_complete_trees,
    client_of,
    lc_handler,
    li_client,
    li_instrumented,
    run_lc_chain,
    wait_for,
)

QUESTION = "What is the capital of France?"
MARKER_AT_END = re.compile(re.escape(TRUNCATION_MARKER).replace(r"\{n\}", r"\d+") + "$")
RUNS_PER_CHAIN = 4  # RunnableSequence -> ChatPromptTemplate, fake-gpt-1, StrOutputParser
RUNS_PER_QUERY = 4  # query -> retrieve, synthesize -> llm


@pytest.fixture
def server() -> Any:
    with FaultServer() as s:
        yield s


# --------------------------------------------------------------------------- collector down


def test_collector_down_then_up_during_a_stream_of_chains() -> None:
    """150 chains; the collector only comes up after the 100th: nothing raised, nothing lost,
    nothing stored twice."""
    port = free_port()
    handler = lc_handler(f"http://127.0.0.1:{port}")
    client = client_of(handler)
    roots: list[str] = []
    app_errors = 0
    server: FaultServer | None = None
    try:
        for i in range(150):
            if i == 100:
                # the worker really was failing all this time (connection refused, retried)
                assert wait_for(lambda: client.stats()["retries"] >= 3)
                assert client.stats()["batches"] == 0
                server = FaultServer(port).__enter__()
            try:
                roots.append(run_lc_chain(handler, i))
            except Exception:
                app_errors += 1
        assert server is not None
        assert client.flush(30)
        stats = client.stats()
        assert app_errors == 0
        assert stats["dropped"] == 0 and stats["failed"] == 0  # 0 lost within the bound
        assert_complete_trees(server, roots, RUNS_PER_CHAIN)  # 600 runs, each stored once
        assert all(run["ends"] == 1 for run in server.runs.values())  # and ended once
        assert stats["sent"] == 150 * RUNS_PER_CHAIN * 2
        print("collector-down figures:", {"chains": 150, "runs": len(server.runs), **stats})
    finally:
        if server is not None:
            server.stop()


def test_collector_failing_for_a_while_in_the_middle_of_a_stream(server: FaultServer) -> None:
    """Up, then 503s and connection resets for 50 chains, then up again."""
    handler = lc_handler(server.url)
    client = client_of(handler)
    roots = [run_lc_chain(handler, i) for i in range(50)]
    server.default = Action(status=503)
    server.script = [Action(reset=True)] * 5
    roots += [run_lc_chain(handler, i) for i in range(50, 100)]
    assert wait_for(lambda: client.stats()["retries"] >= 5)
    server.default = Action()
    roots += [run_lc_chain(handler, i) for i in range(100, 150)]
    assert client.flush(30)
    stats = client.stats()
    assert stats["dropped"] == stats["failed"] == 0
    assert_complete_trees(server, roots, RUNS_PER_CHAIN)
    assert all(run["ends"] == 1 for run in server.runs.values())
    print("mid-stream outage figures:", stats)


# --------------------------------------------------------------------------- fault matrix


def _refuse_llm(event: dict[str, Any]) -> bool:
    return event.get("type") == "llm"


#: id -> (prepare the server, expected outcome). "delivered": everything stored once;
#: "refused": the server refused the llm events (success:false); "gave_up": nothing stored.
FAULTS: dict[str, tuple[Callable[[FaultServer], None], str]] = {
    "200": (lambda s: None, "delivered"),
    "500": (lambda s: s.script.extend([Action(status=500)] * 2), "delivered"),
    "502": (lambda s: s.script.extend([Action(status=502)] * 2), "delivered"),
    "503": (lambda s: s.script.extend([Action(status=503)] * 2), "delivered"),
    "504": (lambda s: s.script.extend([Action(status=504)] * 2), "delivered"),
    "429": (lambda s: s.script.extend([Action(status=429)] * 2), "delivered"),
    "429-retry-after": (
        lambda s: s.script.append(Action(status=429, headers={"Retry-After": "1"})),
        "delivered",
    ),
    "413-split": (lambda s: setattr(s, "max_body", 1200), "delivered"),
    "401": (
        lambda s: s.script.extend([Action(status=401, body={"message": "Invalid API key"})] * 50),
        "gave_up",
    ),
    "hang-past-timeout": (lambda s: s.script.append(Action(hang=1.0)), "delivered"),
    "reset": (lambda s: s.script.extend([Action(reset=True)] * 2), "delivered"),
    "partial-results": (lambda s: setattr(s, "default", Action(refuse_if=_refuse_llm)), "refused"),
    "slow-drip": (lambda s: s.script.extend([Action(drip=0.005)] * 3), "delivered"),
}


def _check_outcome(
    server: FaultServer,
    fault: str,
    expected: str,
    delivered: bool,
    stats: dict[str, Any],
    n_traces: int,
    runs_per_trace: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    n_runs = n_traces * runs_per_trace
    if expected == "delivered":
        assert delivered, stats
        assert len(server.runs) == n_runs
        assert all(r["status"] == "success" and r["ends"] >= 1 for r in server.runs.values())
        assert stats["failed"] == stats["dropped"] == 0
        if fault not in ("200", "slow-drip", "413-split"):
            assert stats["retries"] >= 1
        if fault == "413-split":
            assert any(r["status"] == 413 for r in server.requests)
        if fault == "429-retry-after":
            first, second = server.requests[0], server.requests[1]
            assert first["status"] == 429 and second["status"] == 200
    elif expected == "refused":
        assert delivered is False  # flush says not everything made it
        llm_events = 2 * n_traces
        assert stats["failed"] == llm_events
        assert len(server.runs) == n_runs - n_traces  # every run but the llm ones
    else:  # gave_up
        assert delivered is False
        assert server.runs == {}
        assert stats["retries"] == 0  # a 401 is never retried...
        assert all(r["status"] == 401 for r in server.requests)
        assert stats["failed"] == 2 * n_runs
        lines = [r for r in caplog.records if "not delivered" in r.getMessage()]
        assert len(lines) == 1  # ... and logged once, however many batches
        assert KEY not in caplog.text


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_matrix_langchain(
    fault: str, server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    prepare, expected = FAULTS[fault]
    prepare(server)
    handler = lc_handler(server.url, request_timeout=0.3, compress=False)
    roots = [run_lc_chain(handler, i) for i in range(3)]  # the app sees no trouble at all
    started = time.monotonic()
    delivered = client_of(handler).flush(15)
    assert time.monotonic() - started < 15
    stats = client_of(handler).stats()
    _check_outcome(server, fault, expected, delivered, stats, 3, RUNS_PER_CHAIN, caplog)
    if expected == "delivered":
        assert_complete_trees(server, roots, RUNS_PER_CHAIN)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_matrix_llama_index(
    fault: str, server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    prepare, expected = FAULTS[fault]
    prepare(server)
    with li_instrumented(server.url, request_timeout=0.3, compress=False) as index:
        engine = index.as_query_engine(similarity_top_k=1)
        answers = [str(engine.query(QUESTION)) for _ in range(3)]
        assert all(answers)
        client = li_client(server.url)
        delivered = client.flush(15)
        stats = client.stats()
    _check_outcome(server, fault, expected, delivered, stats, 3, RUNS_PER_QUERY, caplog)
    if expected == "delivered":
        roots = [rid for rid, r in server.runs.items() if r.get("parentRunId") is None]
        assert len(roots) == 3
        assert all(server.runs[r]["name"] == "RetrieverQueryEngine.query" for r in roots)
        assert_complete_trees(server, roots, RUNS_PER_QUERY)


# --------------------------------------------------------------------------- hung server


def test_a_hung_server_never_makes_a_langchain_callback_wait(server: FaultServer) -> None:
    hang = 5.0
    server.default = Action(hang=hang)
    handler = lc_handler(server.url, request_timeout=30.0, max_batch_events=20)
    client = client_of(handler)
    started = time.monotonic()
    for i in range(100):
        run_lc_chain(handler, i)
    elapsed = time.monotonic() - started
    assert client.stats()["batches"] == 0 and server.requests == []  # nothing answered yet
    # 100 invocations (800 events) while every request hangs: had a callback waited on the
    # network once, this alone would take 5 s.
    assert elapsed < hang / 2, elapsed
    started = time.monotonic()
    assert client.flush(0.5) is False  # returns by its timeout, and says it did not deliver
    flush_took = time.monotonic() - started
    assert flush_took < 1.5
    print(f"hung server: 100 chains in {elapsed:.3f}s, flush(0.5) returned in {flush_took:.3f}s")
    server.stop()  # wakes the hung handlers; the client is shut down by the fixture


def test_a_hung_server_never_makes_a_llama_index_query_wait(server: FaultServer) -> None:
    hang = 5.0
    server.default = Action(hang=hang)
    with li_instrumented(server.url, request_timeout=30.0, max_batch_events=20) as index:
        engine = index.as_query_engine(similarity_top_k=1)
        started = time.monotonic()
        for _ in range(100):
            engine.query(QUESTION)
        elapsed = time.monotonic() - started
        client = li_client(server.url)
        assert client.stats()["batches"] == 0  # nothing was answered meanwhile
        t0 = time.monotonic()
        assert client.flush(0.5) is False
        flush_took = time.monotonic() - t0
    assert elapsed < hang, elapsed
    assert flush_took < 1.5
    print(f"hung server: 100 queries in {elapsed:.3f}s, flush(0.5) in {flush_took:.3f}s")
    server.stop()


def test_flush_says_true_when_everything_was_delivered(server: FaultServer) -> None:
    handler = lc_handler(server.url)
    run_lc_chain(handler)
    assert client_of(handler).flush(5) is True
    assert lunary_integrations.flush(5) is True
    assert len(server.runs) == RUNS_PER_CHAIN


# --------------------------------------------------------------------------- sizes


def _echo(value: Any) -> Any:
    return value


def test_a_5mb_input_is_capped_with_a_visible_marker(server: FaultServer) -> None:
    handler = lc_handler(server.url)  # defaults: 64 KiB per field, 1 MiB per event
    settings = handler.tracer.settings
    chain = RunnableLambda(_echo, name="Echo")
    rid = uuid.uuid4()
    huge = "x" * (5 * 1024 * 1024)
    assert chain.invoke(huge, config={"callbacks": [handler], "run_id": rid}) == huge
    assert client_of(handler).flush(10)
    run = server.runs[str(rid)]
    for key in ("input", "output"):
        stored = run[key]
        assert isinstance(stored, str) and MARKER_AT_END.search(stored), stored[-40:]
        assert len(json.dumps(stored, ensure_ascii=False).encode()) <= settings.max_field_bytes
    print("5 MB input stored as", len(run["input"]), "chars ending", run["input"][-28:])


def test_per_event_and_per_batch_caps(server: FaultServer) -> None:
    """Fields allowed up to 512 KiB but events only 256 KiB: an event with a 5 MB input and
    big params is cut to the event cap; batch bodies never exceed max_batch_bytes."""
    handler = lc_handler(
        server.url,
        max_field_bytes=512 * 1024,
        max_event_bytes=256 * 1024,
        max_batch_bytes=600 * 1024,
        compress=False,
        flush_interval=0.2,
    )
    chain = RunnableLambda(_echo, name="Echo")
    roots = []
    for i in range(12):
        rid = uuid.uuid4()
        roots.append(str(rid))
        value = {"text": chr(ord("a") + i) * (5 * 1024 * 1024), "n": i}
        chain.invoke(value, config={"callbacks": [handler], "run_id": rid})
    assert client_of(handler).flush(20)
    assert sorted(server.runs) == sorted(roots)
    for event in server.events:
        size = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
        assert size <= 256 * 1024
    for rid in roots:
        text = server.runs[rid]["input"]["text"]
        assert MARKER_AT_END.search(text)
        assert 100 * 1024 < len(text) < 256 * 1024  # cut to the event's room, not to nothing
    bodies = [r["body_bytes"] for r in server.requests]
    assert max(bodies) <= 600 * 1024 and len(bodies) >= 8  # 24 events of ~256 KiB
    assert all(r["status"] == 200 for r in server.requests)
    print("per-event/batch caps: bodies", bodies)


def test_413_single_event_is_cut_harder_then_delivered(server: FaultServer) -> None:
    """A proxy refusing bodies over 100 KB (a 1 MiB event cap is too big for it): the batch
    is split, and an event that alone is too large is re-cut until it fits."""
    server.max_body = 100_000
    handler = lc_handler(server.url, max_field_bytes=1024 * 1024, compress=False)
    client = client_of(handler)
    rid = uuid.uuid4()
    RunnableLambda(_echo, name="Echo").invoke(
        "y" * 900_000, config={"callbacks": [handler], "run_id": rid}
    )
    assert client.flush(10)
    run = server.runs[str(rid)]
    assert run["status"] == "success" and MARKER_AT_END.search(run["input"])
    assert len(run["input"]) < 100_000
    stats = client.stats()
    assert stats["truncated"] >= 2 and stats["failed"] == 0
    assert [r["status"] for r in server.requests].count(413) >= 3  # batch, then each event
    print("413 cut-harder figures:", stats, [r["status"] for r in server.requests])


def test_413_for_everything_is_never_an_infinite_loop(server: FaultServer) -> None:
    server.max_body = 10  # nothing can ever fit
    handler = lc_handler(server.url, compress=False, max_batch_events=100)
    client = client_of(handler)
    for i in range(5):
        run_lc_chain(handler, i)
    started = time.monotonic()
    assert client.flush(10) is False
    assert time.monotonic() - started < 10
    stats = client.stats()
    n_events = 5 * RUNS_PER_CHAIN * 2
    assert stats["failed"] == n_events  # every event counted, none silently lost
    # splitting n events costs < 2n requests; small events are not re-cut (below the floor)
    assert len(server.requests) < 2 * n_events + 5
    assert wait_for(lambda: client.stats()["queued"] == 0, 1)
    print("413-always figures:", stats, "requests", len(server.requests))


def test_a_poison_event_is_isolated_and_the_rest_of_the_chains_delivered(
    server: FaultServer,
) -> None:
    handler = lc_handler(server.url, flush_interval=0.5)
    poisoned = str(uuid.uuid4())
    server.poison = {poisoned}
    roots = [run_lc_chain(handler, i) for i in range(5)]
    RunnableLambda(_echo, name="Bad").invoke(
        "x", config={"callbacks": [handler], "run_id": uuid.UUID(poisoned)}
    )
    client = client_of(handler)
    assert client.flush(10) is False  # the poison event is reported
    assert client.stats()["failed"] == 2  # its start and end, nothing else
    assert_complete_trees(server, roots, RUNS_PER_CHAIN)
    assert any(r["status"] == 400 for r in server.requests)


def test_no_exception_reaches_the_app_when_the_worker_logs_at_debug(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script = [Action(status=500), Action(reset=True), Action(status=429)]
    handler = lc_handler(server.url)
    roots = [run_lc_chain(handler, i) for i in range(10)]
    assert client_of(handler).flush(10)
    assert_complete_trees(server, roots, RUNS_PER_CHAIN)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
