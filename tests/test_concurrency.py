"""Concurrency: 32 threads x 200 chains, and 200 asyncio tasks at once, through one handler into
a loopback server. Every trace must come back complete and correctly parented, and the
tracer's open-run map and the queue must be empty afterwards (bounded memory)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import defaultdict
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig, RunnableLambda

from .fault_server import FaultServer
from .reliability_support import client_of, lc_handler

THREADS, PER_THREAD, TASKS = 32, 200, 200
#: The default request timeout: a shorter one under this load makes requests time out that
#: the server still processes, and their retry is then (correctly) answered "already exists".
TIMEOUT = 10.0


def _leaf(x: Any) -> Any:
    return {"leaf": x}


async def _aleaf(x: Any) -> Any:
    await asyncio.sleep(0)  # yield to the other tasks mid-trace
    return {"leaf": x}


def _step2(x: Any, config: RunnableConfig) -> Any:
    return RunnableLambda(_leaf, name="Leaf").invoke(x, config=config)


async def _astep2(x: Any, config: RunnableConfig) -> Any:
    return await RunnableLambda(_leaf, afunc=_aleaf, name="Leaf").ainvoke(x, config=config)


def _step1(x: Any) -> Any:
    return x


# root RunnableSequence -> Step1, Step2 -> Leaf
CHAIN = RunnableLambda(_step1, name="Step1") | RunnableLambda(_step2, name="Step2")
ACHAIN = RunnableLambda(_step1, name="Step1") | RunnableLambda(_step2, afunc=_astep2, name="Step2")


def check_trees(server: FaultServer, roots: dict[str, Any]) -> None:
    """Each root has exactly Step1 and Step2 as children and Step2 exactly one Leaf, whose
    input is the root's own input; every run has its end."""
    runs = server.runs
    assert len(runs) == 4 * len(roots)
    kids: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs.values():
        assert run["status"] == "success" and run["ends"] == 1, run
        if run.get("parentRunId") is not None:
            kids[run["parentRunId"]].append(run)
    for rid, value in roots.items():
        root = runs[rid]
        assert root.get("parentRunId") is None and root["input"] == value
        children = {k["name"]: k for k in kids[rid]}
        assert sorted(children) == ["Step1", "Step2"]
        (leaf,) = kids[children["Step2"]["runId"]]
        assert leaf["name"] == "Leaf" and leaf["input"] == value  # no cross-talk
        assert leaf["output"] == {"leaf": value}
        assert kids[children["Step1"]["runId"]] == [] and kids[leaf["runId"]] == []


def test_32_threads_x_200_chains(caplog: pytest.LogCaptureFixture) -> None:
    with FaultServer() as server:
        handler = lc_handler(server.url, flush_interval=0.05, request_timeout=TIMEOUT)
        roots: dict[str, Any] = {}
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(PER_THREAD):
                    rid, value = uuid.uuid4(), f"t{t}-{i}"
                    with lock:
                        roots[str(rid)] = value
                    out = CHAIN.invoke(value, config={"callbacks": [handler], "run_id": rid})
                    assert out == {"leaf": value}
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        client = client_of(handler)
        assert client.flush(60)
        stats = client.stats()
        assert stats["dropped"] == stats["failed"] == stats["duplicates"] == 0, (
            stats,
            [r for r in server.requests if r["status"] != 200][:5],
            caplog.text,
        )
        assert stats["queued"] == 0 and handler.tracer.open_runs() == 0
        check_trees(server, roots)
        print(f"concurrency: {THREADS}x{PER_THREAD} chains -> {len(server.runs)} runs,", stats)


async def test_200_asyncio_tasks_at_once() -> None:
    with FaultServer() as server:
        handler = lc_handler(server.url, flush_interval=0.05)
        roots = {str(uuid.uuid4()): f"task-{i}" for i in range(TASKS)}
        outs = await asyncio.gather(
            *(
                ACHAIN.ainvoke(v, config={"callbacks": [handler], "run_id": uuid.UUID(r)})
                for r, v in roots.items()
            )
        )
        assert outs == [{"leaf": v} for v in roots.values()]
        client = client_of(handler)
        assert await asyncio.to_thread(client.flush, 30)
        assert handler.tracer.open_runs() == 0 and client.stats()["queued"] == 0
        check_trees(server, roots)
        print(f"concurrency: {TASKS} tasks -> {len(server.runs)} runs,", client.stats())
