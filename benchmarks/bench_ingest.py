"""Ingest throughput and memory: events/s enqueued (1 and 8 threads), events/s delivered to
the local collector, and peak RSS growth while 1 000 000 events are enqueued with the server
down. Prints one ``name: value unit`` line per figure (``benchmarks/run.py`` tabulates them).

    python benchmarks/bench_ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from lunary_integrations.config import Settings
from lunary_integrations.ingest import IngestClient
from lunary_integrations.local import LocalLunary


def make_events(n_runs: int) -> list[dict[str, Any]]:
    t = time.time()
    events: list[dict[str, Any]] = []
    for i in range(n_runs):
        run_id = str(uuid.uuid4())
        events.append(
            {
                "type": "tool",
                "event": "start",
                "runId": run_id,
                "name": "search",
                "timestamp": t,
                "input": {"query": f"question {i}"},
                "runtime": "bench",
            }
        )
        events.append(
            {
                "type": "tool",
                "event": "end",
                "runId": run_id,
                "timestamp": t + 0.001,
                "output": f"answer {i}",
            }
        )
    return events


def enqueue_rate(n_threads: int, per_thread: int) -> float:
    """Events/s accepted by ``enqueue`` (the caller's cost), server up and draining."""
    with LocalLunary() as lunary:
        client = IngestClient(
            Settings(public_key=lunary.public_key, api_url=lunary.url, max_queue_events=10_000_000)
        )
        batches = [make_events(per_thread // 2) for _ in range(n_threads)]
        barrier = threading.Barrier(n_threads + 1)

        def work(events: list[dict[str, Any]]) -> None:
            enqueue = client.enqueue
            barrier.wait()
            for event in events:
                enqueue(event)

        threads = [threading.Thread(target=work, args=(b,)) for b in batches]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        client.shutdown(60)
    return n_threads * per_thread / elapsed


def delivery_rate(n_events: int) -> tuple[float, int]:
    """Events/s from first enqueue to everything acknowledged by the local collector."""
    with LocalLunary() as lunary:
        client = IngestClient(
            Settings(public_key=lunary.public_key, api_url=lunary.url, max_queue_events=10_000_000)
        )
        events = make_events(n_events // 2)
        started = time.perf_counter()
        for event in events:
            client.enqueue(event)
        ok = client.flush(300)
        elapsed = time.perf_counter() - started
        stored = lunary.count(type="tool", limit=10_000_000)
        client.shutdown()
    assert ok, "flush did not complete"
    return n_events / elapsed, stored


_MEMORY_CHILD = """
import resource, sys, time, uuid
from lunary_integrations.config import Settings
from lunary_integrations.ingest import IngestClient
port = int(sys.argv[1]); n = int(sys.argv[2])
client = IngestClient(Settings(public_key="pk", api_url=f"http://127.0.0.1:{port}"))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.time()
for i in range(n):
    client.enqueue({"type": "tool", "event": "start", "runId": str(uuid.uuid4()),
                    "timestamp": t, "input": {"query": "question %d" % i}})
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
s = client.stats()
print(after - before, s["queued"], s["dropped"])
"""


def memory_growth(n_events: int) -> tuple[float, int, int]:
    """Peak RSS growth (MiB) enqueuing ``n_events`` with nothing listening, default bound."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(port), str(n_events)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout.split()
    growth_kib, queued, dropped = (int(x) for x in out)
    return growth_kib / 1024, queued, dropped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scale = 5 if args.quick else 1
    rates1 = [enqueue_rate(1, 200_000 // scale) for _ in range(3)]
    print(f"enqueue_1_thread: {statistics.median(rates1):,.0f} events/s")
    rates8 = [enqueue_rate(8, 50_000 // scale) for _ in range(3)]
    print(f"enqueue_8_threads: {statistics.median(rates8):,.0f} events/s")
    rate, stored = delivery_rate(200_000 // scale)
    print(f"delivered_to_local_collector: {rate:,.0f} events/s ({stored:,} runs stored)")
    growth, queued, dropped = memory_growth(1_000_000 // scale)
    # The queue's bound, plus the one batch the worker holds (encoded, being sent).
    defaults = Settings()
    bound = defaults.max_queue_events + defaults.max_batch_events
    print(
        f"memory_growth_server_down: {growth:,.1f} MiB (queued {queued:,}, dropped {dropped:,}, "
        f"bound {bound:,})"
    )
    print(f"maxrss_self: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
