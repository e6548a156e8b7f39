"""The shared ingest client against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lunary_integrations.config import Settings
from lunary_integrations.ingest import IngestClient
from lunary_integrations.ingest.transport import Verdict, classify
from lunary_integrations.retry_policy import ingest_policy, parse_retry_after

from .fault_server import Action, FaultServer, free_port


def settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "public_key": "pk-test",
        "api_url": url,
        "flush_interval": 0.01,
        "max_backoff": 0.05,
        "request_timeout": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


def run_events(n_runs: int, run_type: str = "chain") -> list[dict[str, Any]]:
    """A start and an end per run, in order, with increasing timestamps."""
    events: list[dict[str, Any]] = []
    t = time.time()
    for i in range(n_runs):
        run_id = str(uuid.uuid4())
        events.append(
            {
                "type": run_type,
                "event": "start",
                "runId": run_id,
                "name": f"r{i}",
                "timestamp": t + i * 1e-4,
                "input": {"i": i},
            }
        )
        events.append(
            {
                "type": run_type,
                "event": "end",
                "runId": run_id,
                "timestamp": t + i * 1e-4 + 5e-5,
                "output": i,
            }
        )
    return events


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


def deliver(client: IngestClient, events: list[dict[str, Any]], timeout: float = 20) -> bool:
    for event in events:
        assert client.enqueue(event)
    return client.flush(timeout)


def assert_stored_once(server: FaultServer, events: list[dict[str, Any]]) -> None:
    started = {e["runId"] for e in events if e["event"] == "start"}
    assert set(server.runs) == started
    assert all(run["status"] == "success" for run in server.runs.values())
    starts_received = [e["runId"] for e in server.events if e["event"] == "start"]
    # a re-sent start is refused by the server, so storage never holds a run twice
    assert len(server.runs) == len(started) <= len(starts_received)


# ---------------------------------------------------------------------- happy path


def test_delivers_batches_with_results_read(server: FaultServer) -> None:
    client = IngestClient(settings(server.url, max_batch_events=100))
    events = run_events(250)
    assert deliver(client, events)
    assert_stored_once(server, events)
    stats = client.stats()
    assert stats["sent"] == 500 and stats["failed"] == 0 and stats["dropped"] == 0
    assert stats["queued"] == 0
    assert all(r["n_events"] <= 100 for r in server.requests)
    # timestamps are formatted as the server's ISO-8601 with milliseconds
    assert all(e["timestamp"].endswith("Z") and len(e["timestamp"]) == 24 for e in server.events)
    client.shutdown()


def test_order_is_kept_parents_before_children(server: FaultServer) -> None:
    client = IngestClient(settings(server.url, max_batch_events=7))
    events = run_events(40)
    assert deliver(client, events)
    seen = [(e["runId"], e["event"]) for e in server.events]
    assert seen == [(e["runId"], e["event"]) for e in events]
    client.shutdown()


def wait_for(condition: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_events_after_an_idle_spell_are_sent_without_flush(server: FaultServer) -> None:
    # No flush(): each lone event must leave within flush_interval, including those that
    # arrive once the worker has nothing left and sleeps.
    client = IngestClient(settings(server.url, flush_interval=0.05))
    for i, event in enumerate(run_events(3)):
        assert client.enqueue(event)
        assert wait_for(lambda n=i + 1: len(server.events) == n), f"event {i} never sent"
        assert wait_for(lambda: client._wake_at == 0)  # the worker has nothing left, sleeps
    client.shutdown()


def test_events_arriving_together_share_a_batch(server: FaultServer) -> None:
    client = IngestClient(settings(server.url, flush_interval=600.0, max_batch_events=50))
    events = run_events(100)
    for event in events:
        assert client.enqueue(event)
    # 200 events, batches of 50: full batches leave without waiting for the interval or a flush
    assert wait_for(lambda: len(server.events) == 200, timeout=30)
    assert [r["n_events"] for r in server.requests][:4] == [50, 50, 50, 50]
    client.shutdown()


def test_a_holding_worker_is_woken_by_a_full_batch_not_by_each_event(
    server: FaultServer,
) -> None:
    # The first event wakes the idle worker (its flush_interval clock starts); the next ones
    # only queue, until a batch's worth is waiting: each wake-up costs the app's thread.
    client = IngestClient(settings(server.url, flush_interval=600.0, max_batch_events=100))
    events = run_events(100)
    assert client.enqueue(events[0])
    assert wait_for(lambda: client._held == 1 and not client._queue)
    for event in events[1:100]:
        assert client.enqueue(event)
    assert not client._wake.is_set() and not server.events
    assert client.stats()["queued"] == 100
    assert client.enqueue(events[100])  # the 100th waiting: a full batch
    assert wait_for(lambda: len(server.requests) == 1)  # one request, with the whole batch
    assert server.requests[0]["n_events"] == 100 and len(server.events) == 100
    assert deliver(client, events[101:])
    assert len(server.events) == 200
    client.shutdown()


def test_gzip_only_for_bodies_worth_it(server: FaultServer) -> None:
    client = IngestClient(settings(server.url))
    assert deliver(client, run_events(1)[:1])
    assert deliver(client, run_events(200))
    zipped = [r["gzip"] for r in server.requests]
    assert zipped[0] is False and zipped[-1] is True
    client.shutdown()


# ---------------------------------------------------------------------- the fault matrix


@pytest.mark.parametrize(
    "action",
    [
        Action(status=500),
        Action(status=502),
        Action(status=503),
        Action(status=504),
        Action(status=429),
        Action(reset=True),
    ],
    ids=["500", "502", "503", "504", "429", "reset"],
)
def test_transient_failures_are_retried_without_duplicates(
    server: FaultServer, action: Action
) -> None:
    server.script = [action, action]
    client = IngestClient(settings(server.url))
    events = run_events(20)
    assert deliver(client, events)
    assert_stored_once(server, events)
    assert client.stats()["retries"] >= 2
    client.shutdown()


def test_retry_after_is_honoured(server: FaultServer) -> None:
    server.script = [Action(status=429, headers={"Retry-After": "1"})]
    client = IngestClient(settings(server.url))
    events = run_events(5)
    started = time.monotonic()
    assert deliver(client, events)
    assert time.monotonic() - started >= 0.95  # waited as told, not the tiny max_backoff
    assert_stored_once(server, events)
    client.shutdown()


def test_a_hanging_server_times_out_and_the_retry_is_not_duplicated(server: FaultServer) -> None:
    # The hung request is processed after the client gave up on it: the retry's starts are
    # answered "already exists", which counts as delivered.
    server.script = [Action(hang=1.0)]
    client = IngestClient(settings(server.url, request_timeout=0.3))
    events = run_events(10)
    assert deliver(client, events)
    assert_stored_once(server, events)
    stats = client.stats()
    assert stats["failed"] == 0 and stats["sent"] == 20
    client.shutdown()


def test_partial_results_are_counted_and_flush_reports_them(server: FaultServer) -> None:
    events = run_events(3)
    bad = events[0]["runId"]
    server.script = [Action(refuse_runs=frozenset({bad}))]
    client = IngestClient(settings(server.url))
    assert deliver(client, events) is False
    assert client.stats()["failed"] == 2  # the refused run's start and end
    assert client.stats()["sent"] == 4
    client.shutdown()


def test_413_splits_the_batch_and_drops_only_what_can_never_fit(server: FaultServer) -> None:
    server.max_body = 3000
    client = IngestClient(settings(server.url, compress=False))
    events = run_events(60)
    huge = {
        "type": "chain",
        "event": "start",
        "runId": str(uuid.uuid4()),
        "timestamp": time.time(),
        "input": "x" * 10_000,
    }
    assert deliver(client, [*events, huge]) is False
    assert_stored_once(server, events)
    assert client.stats()["failed"] == 1
    assert any(r["status"] == 413 for r in server.requests)
    client.shutdown()


def test_a_poison_event_is_isolated_and_the_rest_delivered(server: FaultServer) -> None:
    events = run_events(30)
    poison = events[10]["runId"]
    server.poison = {poison}
    client = IngestClient(settings(server.url))
    assert deliver(client, events) is False
    good = [e for e in events if e["runId"] != poison]
    assert set(server.runs) == {e["runId"] for e in good if e["event"] == "start"}
    assert client.stats()["failed"] == 2
    client.shutdown()


def test_unauthorized_gives_up_at_once_and_logs_once(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script = [Action(status=401, body={"message": "Invalid API key"})] * 3
    client = IngestClient(settings(server.url, max_batch_events=2))
    assert deliver(client, run_events(3)) is False
    assert client.stats()["failed"] == 6 and client.stats()["retries"] == 0
    assert len(server.requests) == 3
    assert sum("not delivered" in r.getMessage() for r in caplog.records) == 1
    assert "pk-test" not in caplog.text
    client.shutdown()


def test_flush_returns_by_its_timeout_when_the_server_hangs(server: FaultServer) -> None:
    server.script = [Action(hang=5.0)]
    client = IngestClient(settings(server.url, request_timeout=10.0))
    client.enqueue(run_events(1)[0])
    started = time.monotonic()
    assert client.flush(0.5) is False
    assert time.monotonic() - started < 2.0
    server.stop()
    client.shutdown(0.1)


def test_enqueue_never_waits_for_a_hung_server(server: FaultServer) -> None:
    server.script = [Action(hang=3.0)]
    client = IngestClient(settings(server.url, request_timeout=10.0, max_batch_events=10))
    events = run_events(2000)
    started = time.monotonic()
    for event in events:
        client.enqueue(event)
    assert time.monotonic() - started < 1.0  # 4000 appends, no waiting on the network
    client.shutdown(0.1)


# ---------------------------------------------------------------------- down, bounds


def test_collector_down_at_first_then_up_delivers_everything() -> None:
    port = free_port()
    client = IngestClient(settings(f"http://127.0.0.1:{port}"))
    events = run_events(500)
    for event in events:
        assert client.enqueue(event)
    deadline = time.monotonic() + 10
    while client.stats()["retries"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.stats()["retries"] >= 2  # it really was failing
    with FaultServer(port) as server:
        assert client.flush(20)
        assert_stored_once(server, events)
    assert client.stats()["dropped"] == 0
    client.shutdown(0.1)


def test_collector_never_up_memory_stays_bounded_and_drops_are_counted() -> None:
    client = IngestClient(settings(f"http://127.0.0.1:{free_port()}", max_queue_events=1000))
    events = run_events(10_000)
    accepted = sum(client.enqueue(e) for e in events)
    stats = client.stats()
    # the queue's bound, plus the one batch the worker holds (encoded, being retried)
    assert stats["queued"] <= 1000 + client.settings.max_batch_events
    assert accepted <= 1000 + 2 * client.settings.max_batch_events  # the worker holds a batch
    assert stats["dropped"] == len(events) - accepted
    assert client.flush(0.2) is False
    client.shutdown(0.1)


def test_a_dropped_run_drops_its_end_and_children_too(server: FaultServer) -> None:
    # The worker is kept busy (its first request hangs) while the queue fills up.
    server.script = [Action(hang=1.0)]
    client = IngestClient(settings(server.url, max_queue_events=2, flush_interval=0))
    root, child, other, busy = (str(uuid.uuid4()) for _ in range(4))
    t = time.time()
    assert client.enqueue({"type": "chain", "event": "start", "runId": busy, "timestamp": t})
    assert wait_for(lambda: not server.script)  # its request reached the server, which hangs
    assert client.enqueue({"type": "chain", "event": "start", "runId": root, "timestamp": t})
    assert client.enqueue({"type": "chain", "event": "start", "runId": other, "timestamp": t})
    # the queue is full: this start is dropped, and so are all later events of that run
    assert not client.enqueue(
        {"type": "chain", "event": "start", "runId": child, "parentRunId": root, "timestamp": t}
    )
    assert client.flush(5)
    assert not client.enqueue({"type": "chain", "event": "end", "runId": child, "timestamp": t})
    grandchild = {
        "type": "llm",
        "event": "start",
        "runId": str(uuid.uuid4()),
        "parentRunId": child,
        "timestamp": t,
    }
    assert not client.enqueue(grandchild)
    assert client.stats()["dropped"] == 3
    client.shutdown()


def test_shutdown_is_idempotent_and_later_events_are_counted(server: FaultServer) -> None:
    client = IngestClient(settings(server.url))
    assert deliver(client, run_events(2))
    assert client.shutdown() is True
    assert client.shutdown() is True
    assert client.enqueue(run_events(1)[0]) is False
    assert client.stats()["dropped"] == 1


# ---------------------------------------------------------------------- pure pieces


def test_classify_and_backoff() -> None:
    assert classify(200, b'{"results":[{"success":true}]}', None).verdict is Verdict.DELIVERED
    assert classify(429, b"{}", "2").retry_after == 2.0
    assert classify(413, b"{}", None).verdict is Verdict.TOO_LARGE
    assert classify(400, b"{}", None).verdict is Verdict.REJECTED
    assert classify(422, b"{}", None).verdict is Verdict.REJECTED
    assert classify(402, b'{"message":"Incorrect project id format"}', None).detail.startswith(
        "Incorrect"
    )
    assert classify(500, b"oops", None).verdict is Verdict.SERVER_ERROR
    assert classify(503, b"", None).verdict is Verdict.RETRY
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    policy = ingest_policy(8, 5.0)
    assert all(0 <= policy.delay(a) <= 5.0 for a in range(1, 40))
    assert policy.delay(3, 7.0) == 7.0  # Retry-After honoured past max_backoff (up to 60 s)


# ---------------------------------------------------------------------- processes

_CHILD = textwrap.dedent(
    """
    import sys, uuid, lunary_integrations as li
    li.configure(public_key="pk-test", api_url=sys.argv[1], flush_interval=5)
    for i in range(int(sys.argv[2])):
        li.track_event(type="tool", event="start", run_id=uuid.uuid4(), name=f"t{i}")
    """
)


def test_a_process_that_exits_at_once_delivers_everything_at_exit(server: FaultServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNARY_")}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, server.url, "300"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(server.runs) == 300


def _child_work(url: str, parent_run: str) -> None:
    from lunary_integrations import get_client
    from lunary_integrations.config import resolve

    client = get_client(resolve(public_key="pk-test", api_url=url))
    client.enqueue(
        {"type": "tool", "event": "start", "runId": str(uuid.UUID(int=1)), "timestamp": time.time()}
    )
    # multiprocessing children leave through os._exit: the fork hook's finalizer flushes


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_delivers_its_own_events_and_not_the_parents(server: FaultServer) -> None:
    from lunary_integrations import get_client
    from lunary_integrations.config import resolve

    client = get_client(resolve(public_key="pk-test", api_url=server.url, flush_interval=30))
    parent_run = str(uuid.uuid4())
    client.enqueue(
        {"type": "chain", "event": "start", "runId": parent_run, "timestamp": time.time()}
    )
    # not sent yet when the child is forked (held by the parent's worker for 30 s)
    assert wait_for(lambda: not client._queue)
    assert client.stats()["queued"] == 1
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_work, args=(server.url, parent_run))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert list(server.runs) == [str(uuid.UUID(int=1))]  # the child's, sent by the child
    assert client.flush(10)
    assert sorted(server.runs) == sorted([str(uuid.UUID(int=1)), parent_run])
    assert sum(e["runId"] == parent_run for e in server.events) == 1


def test_import_starts_no_thread_and_no_key_warns_once() -> None:
    code = textwrap.dedent(
        """
        import threading, logging, lunary_integrations as li
        logging.basicConfig(level=logging.DEBUG)
        assert threading.active_count() == 1, threading.enumerate()
        li.configure()
        for _ in range(3):
            assert li.track_event(type="tool", event="start", run_id="x" * 36) is False
            assert li.get_client().enabled is False
        assert threading.active_count() == 1
        print("threads", threading.active_count())
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNARY_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "threads 1" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "lunary" in line.lower()]
    assert len(warnings) == 1 and "no project key" in warnings[0]


def test_many_threads_enqueue_concurrently(server: FaultServer) -> None:
    client = IngestClient(settings(server.url))
    per_thread = [run_events(250) for _ in range(8)]
    threads = [
        threading.Thread(target=lambda ev=ev: [client.enqueue(e) for e in ev]) for ev in per_thread
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(30)
    assert len(server.runs) == 2000
    assert all(run.get("ends") == 1 for run in server.runs.values())
    client.shutdown()


def test_eight_threads_20k_events_to_the_local_collector_each_stored_once() -> None:
    from lunary_integrations.local import LocalLunary

    with LocalLunary() as lunary:
        client = IngestClient(settings(lunary.url, public_key=lunary.public_key))
        per_thread = [run_events(1250, run_type="tool") for _ in range(8)]  # 8 x 2500 events
        threads = [
            threading.Thread(target=lambda ev=ev: [client.enqueue(e) for e in ev])
            for ev in per_thread
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert client.flush(120)
        assert client.stats()["sent"] == 20_000 and client.stats()["dropped"] == 0
        assert lunary.count(type="tool", limit=100_000) == 10_000
        stored = {run["id"]: run for run in lunary.all_runs()}
        for events in per_thread:
            for start, end in zip(events[::2], events[1::2]):
                run = stored[start["runId"]]
                assert run["status"] == "success" and run["output"] == end["output"]
        assert lunary.stats["events"] == 20_000  # nothing sent twice
        client.shutdown()
