"""Behaviour of the embedded collector (lunary_integrations.local), over real HTTP."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import httpx
import pytest

from lunary_integrations.local import LocalLunary
from lunary_integrations.local.util import camel_key, derive_uuid, pg_interval

T0 = "2026-01-01T10:00:00.000Z"


def ts(ms: int) -> str:
    """A timestamp `ms` milliseconds after 2026-01-01T10:00:00Z."""
    sec, milli = divmod(ms, 1000)
    minute, sec = divmod(sec, 60)
    return f"2026-01-01T10:{minute:02d}:{sec:02d}.{milli:03d}Z"


def rid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def lunary() -> Iterator[LocalLunary]:
    with LocalLunary() as server:
        yield server


@pytest.fixture
def client(lunary: LocalLunary) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lunary.url, timeout=30) as c:
        yield c


def post(
    lunary: LocalLunary, client: httpx.Client, events: Any, key: str | None = None
) -> httpx.Response:
    return client.post(
        "/v1/runs/ingest",
        json=events if not isinstance(events, list) else {"events": events},
        headers={"Authorization": f"Bearer {key or lunary.public_key}"},
    )


def ok(lunary: LocalLunary, client: httpx.Client, events: list[dict[str, Any]]) -> list[Any]:
    r = post(lunary, client, events)
    assert r.status_code == 200, r.text
    results: list[Any] = r.json()["results"]
    return results


def get(lunary: LocalLunary, client: httpx.Client, path: str) -> httpx.Response:
    return client.get(path, headers={"Authorization": f"Bearer {lunary.private_key}"})


def llm_pair(
    run_id: str,
    start: int,
    end: int,
    *,
    name: str = "gpt-4o-mini",
    parent: str | None = None,
    content: str = "hi",
    usage: dict[str, int] | None = None,
    **extra: Any,
) -> list[dict[str, Any]]:
    s: dict[str, Any] = {
        "type": "llm",
        "event": "start",
        "runId": run_id,
        "name": name,
        "timestamp": ts(start),
        "input": [{"role": "user", "content": content}],
        **extra,
    }
    if parent:
        s["parentRunId"] = parent
    e: dict[str, Any] = {
        "type": "llm",
        "event": "end",
        "runId": run_id,
        "timestamp": ts(end),
        "output": {"role": "assistant", "content": "ok " + content},
    }
    if usage is not None:
        e["tokensUsage"] = usage
    return [s, e]


def chain(run_id: str, start: int, end: int, **fields: Any) -> list[dict[str, Any]]:
    s = {"type": "chain", "event": "start", "runId": run_id, "name": "c", "timestamp": ts(start)}
    s.update(fields)
    return [s, {"type": "chain", "event": "end", "runId": run_id, "timestamp": ts(end)}]


# --------------------------------------------------------------------------------------------
# auth and request bodies


def test_ingest_auth(lunary: LocalLunary, client: httpx.Client) -> None:
    body: dict[str, Any] = {"events": []}
    r = client.post("/v1/runs/ingest", json=body)
    assert (r.status_code, r.json()) == (402, {"message": "Incorrect project id format"})
    r = client.post("/v1/runs/ingest", json=body, headers={"Authorization": f"Bearer {rid()}"})
    assert (r.status_code, r.json()) == (401, {"message": "Invalid API key"})
    r = client.post("/v1/runs/ingest", json=body, headers={"X-API-Key": lunary.public_key})
    assert (r.status_code, r.json()) == (200, {"results": []})
    r = post(lunary, client, [], key=lunary.private_key)
    assert r.status_code == 200
    r = client.post(
        "/v1/runs/ingest/", json=body, headers={"Authorization": f"Bearer {lunary.public_key}"}
    )
    assert r.status_code == 401


def test_read_auth(lunary: LocalLunary, client: httpx.Client) -> None:
    r = client.get("/v1/runs", headers={"Authorization": f"Bearer {lunary.public_key}"})
    assert (r.status_code, r.json()) == (401, {"message": "This route requires a private API key"})
    assert client.get("/v1/runs").status_code == 404
    r = client.get("/v1/runs", headers={"Authorization": f"Bearer {rid()}"})
    assert r.status_code == 401
    r = client.get("/v1/runs", headers={"X-API-Key": lunary.private_key})
    assert r.json() == {"page": 0, "limit": 50, "data": []}


def test_payload_errors(lunary: LocalLunary, client: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {lunary.public_key}"}
    missing = {"message": "Missing events payload."}
    empty: list[Any] = [[], {}]
    for body in empty:
        r = client.post("/v1/runs/ingest", json=body, headers=auth)
        assert (r.status_code, r.json()) == (500, missing)
    r = client.post(
        "/v1/runs/ingest",
        content=json.dumps({"events": []}),
        headers={**auth, "Content-Type": "text/plain"},
    )
    assert (r.status_code, r.json()) == (500, missing)
    r = client.post(
        "/v1/runs/ingest", content=b"{nope", headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 400
    big = b'{"events": [], "pad": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    r = client.post(
        "/v1/runs/ingest", content=big, headers={**auth, "Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()) == (413, {"message": "request entity too large"})


def test_gzip_body_and_single_event_object(lunary: LocalLunary, client: httpx.Client) -> None:
    run_id = rid()
    body = gzip.compress(json.dumps({"events": llm_pair(run_id, 0, 100)}).encode())
    r = client.post(
        "/v1/runs/ingest",
        content=body,
        headers={
            "Authorization": f"Bearer {lunary.public_key}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert r.json() == {"results": [{"id": run_id, "success": True}] * 2}
    other = rid()
    r = post(lunary, client, {"events": llm_pair(other, 0, 100)[0]})  # `events`: one object
    assert r.json() == {"results": [{"id": other, "success": True}]}
    r = post(lunary, client, llm_pair(rid(), 0, 100)[0])  # a bare event: no `events` key
    assert (r.status_code, r.json()) == (500, {"message": "Missing events payload."})
    assert {run["id"] for run in lunary.list_runs()} == {run_id, other}
    assert lunary.stats == {"requests": 3, "events": 3}


# --------------------------------------------------------------------------------------------
# ingest semantics


def test_events_are_processed_in_timestamp_order(lunary: LocalLunary, client: httpx.Client) -> None:
    a, b = rid(), rid()
    start_a, end_a = llm_pair(a, 0, 500)
    start_b, end_b = llm_pair(b, 100, 200)
    results = ok(lunary, client, [end_a, end_b, start_b, start_a])
    assert [r["id"] for r in results] == [a, b, b, a]
    assert all(r["success"] for r in results)
    run = lunary.get_run(a)
    assert run["status"] == "success" and run["duration"] == "00:00:00.5"
    assert run["createdAt"] == T0 and run["endedAt"] == ts(500)


def test_runs_of_different_shapes_keep_their_send_order(
    lunary: LocalLunary, client: httpx.Client
) -> None:
    # the store writes NULL-free statements per set of columns: rows must not be regrouped
    ids = [rid() for _ in range(6)]
    shapes = [{}, {"tags": ["a"]}, {}, {"input": "x"}, {"tags": ["b"], "input": "y"}, {}]
    events = [chain(i, 0, 10, **shape)[0] for i, shape in zip(ids, shapes, strict=True)]
    assert all(r["success"] for r in ok(lunary, client, events))
    runs = lunary.all_runs()
    assert [r["id"] for r in runs] == ids
    assert [r["tags"] for r in runs] == [None, ["a"], None, None, ["b"], None]


def test_a_later_event_can_set_a_column_back_to_null(
    lunary: LocalLunary, client: httpx.Client
) -> None:
    thread = rid()
    chat = {"type": "thread", "event": "chat", "parentRunId": thread}
    first = {**chat, "runId": rid(), "timestamp": ts(0), "threadTags": ["support"],
             "message": {"role": "user", "content": "Hi"}}  # fmt: skip
    assert ok(lunary, client, [first])[0]["success"]
    assert lunary.list_runs(type="thread")[0]["tags"] == ["support"]
    # a message without threadTags replaces the thread's tags with null, as the server does
    second = {**chat, "runId": rid(), "timestamp": ts(100),
              "message": {"role": "assistant", "content": "Hello"}}  # fmt: skip
    assert ok(lunary, client, [second])[0]["success"]
    thread_run = lunary.list_runs(type="thread")[0]
    assert thread_run["tags"] is None
    assert thread_run["input"]["content"] == "Hello"


def test_duplicate_and_missing_run_id(lunary: LocalLunary, client: httpx.Client) -> None:
    run_id = rid()
    ok(lunary, client, llm_pair(run_id, 0, 100))
    dup = "Run with this ID already exists in the database."
    results = ok(lunary, client, [llm_pair(run_id, 200, 300)[0]])
    assert results == [{"id": run_id, "success": False, "error": dup}]
    results = ok(lunary, client, [{"type": "llm", "event": "start", "timestamp": ts(0)}])
    assert results == [{"success": False, "error": dup}]


def test_end_of_unknown_run_is_a_silent_success(lunary: LocalLunary, client: httpx.Client) -> None:
    run_id = rid()
    results = ok(lunary, client, [llm_pair(run_id, 0, 10)[1]])
    assert results == [{"id": run_id, "success": True}]
    assert lunary.all_runs() == []


def test_non_uuid_run_id_is_hashed(lunary: LocalLunary, client: httpx.Client) -> None:
    results = ok(lunary, client, llm_pair("run-abc-163e29", 0, 150, usage={"prompt": 1}))
    assert [r["id"] for r in results] == ["run-abc-163e29"] * 2
    run = lunary.get_run("a6cc7fce-8228-48bf-a132-23ab49674ffb")
    assert run["status"] == "success"
    assert derive_uuid("run-abc-163e29") == run["id"]


def test_snake_case_and_nested_keys_are_camel_cased(
    lunary: LocalLunary, client: httpx.Client
) -> None:
    root, child = rid(), rid()
    events: list[dict[str, Any]] = [
        {
            "type": "chain",
            "event": "start",
            "run_id": root,
            "name": "snake",
            "timestamp": ts(0),
            "input": {"user_question": "2+2?"},
            "user_id": "u-snake",
        },
        {
            "type": "llm",
            "event": "start",
            "run_id": child,
            "parent_run_id": root,
            "name": "gpt-4o-mini",
            "timestamp": ts(5),
            "input": [{"role": "tool", "tool_call_id": "c1", "content": "4"}],
            "params": {"max_tokens": 16, "response_format": {"type": "text"}},
        },
        {
            "type": "llm",
            "event": "end",
            "run_id": child,
            "timestamp": ts(200),
            "output": {"role": "assistant", "content": "4"},
            "tokens_usage": {"prompt": 11, "completion": 1},
        },
    ]
    assert ok(lunary, client, events) == [{"success": True}] * 3  # no `id` without `runId`
    run = lunary.get_run(child)
    assert run["params"] == {"maxTokens": 16, "responseFormat": {"type": "text"}}
    assert run["input"] == [{"role": "tool", "toolCallId": "c1", "content": "4", "enrichments": []}]
    assert run["tokens"] == {"prompt": 11, "cachedPrompt": 0, "completion": 1, "total": 12}
    assert run["traceId"] == root
    assert run["user"]["externalId"] == "u-snake"  # inherited from the parent
    assert lunary.get_run(root)["input"] == {"userQuestion": "2+2?", "enrichments": []}


def test_camel_key_matches_the_servers_recursive_to_camel() -> None:
    cases = {
        "max_tokens": "maxTokens",
        "tool_call_id": "toolCallId",
        "py/newargs": "py/newargs",
        "format_map": "formatMap",
        "maxTokens": "maxTokens",
        "Content-Type": "ContentType",
        "__private": "_Private",
        "ABC": "ABC",
        "user_1": "user_1",
        "a.b": "a.b",
    }
    assert {k: camel_key(k) for k in cases} == cases


def test_extra_metadata_and_params(lunary: LocalLunary, client: httpx.Client) -> None:
    a, b = rid(), rid()
    meta = {
        "source": "x",
        "nested": {"k": "v"},
        "list_ok": ["a", 1],
        "list_bad": [{"a": 1}],
        "n": 3,
    }
    ok(lunary, client, llm_pair(a, 0, 100, extra={"top_p": 0.9}, metadata=meta))
    ok(lunary, client, llm_pair(b, 0, 100, params={"temperature": 1}, extra={"top_p": 0.9}))
    run = lunary.get_run(a)
    assert run["params"] == {"topP": 0.9}
    assert run["metadata"] == {"source": "x", "listOk": ["a", 1], "n": 3}
    assert lunary.get_run(b)["params"] == {"temperature": 1}


def test_end_event_fields(lunary: LocalLunary, client: httpx.Client) -> None:
    run_id, tool = rid(), rid()
    start, end = llm_pair(run_id, 0, 100, metadata={"a": 1, "b": 2}, tags="solo", name="models/x")
    end["metadata"] = {"b": 3, "timeToFirstToken": 12, "nested": {"dropped": True}}
    end["input"] = [{"role": "user", "content": "replaced"}]
    tool_events = [
        {"type": "tool", "event": "start", "runId": tool, "timestamp": ts(0),
         "metadata": {"tags": ["from-meta"]}},
        {"type": "tool", "event": "end", "runId": tool, "timestamp": ts(5), "output": True},
    ]  # fmt: skip
    ok(lunary, client, [start, end, *tool_events])
    run = lunary.get_run(run_id)
    assert run["metadata"] == {"a": 1, "b": 3, "timeToFirstToken": 12}  # merged with the start's
    assert run["input"] == [{"role": "user", "content": "replaced", "enrichments": []}]
    assert run["tags"] == ["solo"] and run["name"] == "x"
    tool_run = lunary.get_run(tool)
    assert tool_run["output"] == "true" and tool_run["tags"] == ["from-meta"]
    update = {"type": "llm", "event": "update", "runId": run_id, "timestamp": ts(200)}
    ok(lunary, client, [{**update, "metadata": {"c": 1}}])
    assert lunary.get_run(run_id)["metadata"] == {"c": 1}  # update replaces


def test_consecutive_user_messages_share_one_chat_run(
    lunary: LocalLunary, client: httpx.Client
) -> None:
    thread, first, second = rid(), rid(), rid()
    chat = {"type": "thread", "event": "chat", "parentRunId": thread}
    ok(lunary, client, [{**chat, "runId": first, "timestamp": ts(0),
                         "message": {"role": "user", "content": "a"}}])  # fmt: skip
    ok(lunary, client, [{**chat, "runId": second, "timestamp": ts(10),
                         "message": {"role": "user", "content": "b"}}])  # fmt: skip
    (run,) = lunary.list_runs(type="chat")
    assert run["id"] == second
    assert [m["content"] for m in run["input"]] == ["a", "b"] and run["output"] is None
    assert lunary.list_runs(type="thread")[0]["user"] is None


def test_user_props_are_replaced_by_each_start(lunary: LocalLunary, client: httpx.Client) -> None:
    a, b, child = rid(), rid(), rid()
    ok(lunary, client, chain(a, 0, 50, userId="grace", userProps={"name": "Grace"}))
    assert lunary.get_run(a)["user"]["props"] == {"name": "Grace"}
    ok(
        lunary,
        client,
        [*chain(b, 1000, 1050, userId="grace"), *llm_pair(child, 1001, 1040, parent=b)],
    )
    user = lunary.get_run(a)["user"]
    assert user["props"] is None and user["lastSeen"] == ts(1000)
    assert lunary.get_run(child)["user"]["externalId"] == "grace"
    assert isinstance(user["id"], int)
    assert [r["id"] for r in lunary.list_runs(users=str(user["id"]), limit=10)] == [child, b, a]


def test_feedback_is_merged(lunary: LocalLunary, client: httpx.Client) -> None:
    run_id = rid()
    ok(lunary, client, llm_pair(run_id, 0, 100))
    fb = {"type": "llm", "event": "feedback", "runId": run_id, "timestamp": ts(200)}
    ok(lunary, client, [{**fb, "feedback": {"thumb": "up"}}])
    ok(lunary, client, [{**fb, "feedback": {"comment": "nice"}}])
    assert lunary.get_run(run_id)["feedback"] == {"thumb": "up", "comment": "nice"}
    ids = [r["id"] for r in lunary.list_runs(feedback=json.dumps({"thumb": "up"}))]
    assert ids == [run_id]
    assert lunary.list_runs(feedback=json.dumps({"thumb": "down"})) == []


def test_tokens_cost_and_status(lunary: LocalLunary, client: httpx.Client) -> None:
    mini, fast, unknown, estimated, failed = (rid() for _ in range(5))
    ok(lunary, client, llm_pair(mini, 0, 150, usage={"prompt": 1, "completion": 1}))
    ok(lunary, client, llm_pair(fast, 0, 5, usage={"prompt": 1, "completion": 1}))
    ok(
        lunary,
        client,
        llm_pair(unknown, 0, 500, name="my-model", usage={"prompt": 5, "completion": 5}),
    )
    ok(lunary, client, llm_pair(estimated, 0, 400, content="Name three primary colors."))
    start = llm_pair(failed, 0, 10)[0]
    err = {"type": "llm", "event": "error", "runId": failed, "timestamp": ts(570)}
    ok(lunary, client, [start, {**err, "error": {"message": "boom", "stack": "trace"}}])

    assert lunary.get_run(mini)["cost"] == pytest.approx(7.5e-07)
    assert lunary.get_run(fast)["cost"] is None  # shorter than 10 ms
    assert lunary.get_run(unknown)["cost"] is None
    est = lunary.get_run(estimated)
    assert est["tokens"]["prompt"] > 0 and est["tokens"]["completion"] > 0
    assert est["cost"] > 0
    run = lunary.get_run(failed)
    assert run["status"] == "error" and run["output"] is None
    assert run["error"] == {"message": "boom", "stack": "trace", "enrichments": []}
    assert run["tokens"] == {"prompt": None, "cachedPrompt": 0, "completion": None, "total": 0}
    assert run["cost"] is None and run["duration"] == "00:00:00.57"
    started = rid()
    ok(lunary, client, llm_pair(started, 0, 10)[:1])
    assert lunary.get_run(started)["status"] == "started"
    assert lunary.get_run(started)["duration"] is None


def test_pg_interval_text() -> None:
    assert [pg_interval(ms) for ms in (0, 1, 35, 840, 1490, 61_000)] == [
        "00:00:00",
        "00:00:00.001",
        "00:00:00.035",
        "00:00:00.84",
        "00:00:01.49",
        "00:01:01",
    ]


def test_thread_chat_messages_are_merged(lunary: LocalLunary, client: httpx.Client) -> None:
    thread, user_msg, llm, assistant_msg = rid(), rid(), rid(), rid()
    chat = {"type": "thread", "event": "chat", "parentRunId": thread, "userId": "u1"}
    events = [
        {**chat, "runId": user_msg, "timestamp": ts(0), "threadTags": ["support"],
         "message": {"role": "user", "content": "Hi"}},
        *llm_pair(llm, 10, 300, parent=user_msg, content="Hi"),
        {**chat, "runId": assistant_msg, "timestamp": ts(310), "threadTags": ["support"],
         "message": {"role": "assistant", "content": "Hello!"}},
    ]  # fmt: skip
    assert all(r["success"] for r in ok(lunary, client, events))

    threads = lunary.list_runs(type="thread")
    assert [t["id"] for t in threads] == [thread]
    t = threads[0]
    assert t["tags"] == ["support"] and t["messagesCount"] == 2
    assert t["firstMessage"] == {"role": "user", "content": "Hi"}
    assert t["input"] == {"role": "assistant", "content": "Hello!", "enrichments": []}
    chats = lunary.list_runs(type="chat", parentRunId=thread)
    assert [c["id"] for c in chats] == [assistant_msg]
    assert chats[0]["input"] == [{"role": "user", "content": "Hi", "enrichments": []}]
    assert chats[0]["output"] == [{"role": "assistant", "content": "Hello!", "enrichments": []}]
    assert chats[0]["duration"] == "00:00:00.31"
    with pytest.raises(HTTPError) as exc:
        lunary.get_run(user_msg)
    assert exc.value.code == 404
    assert [r["parentRunId"] for r in lunary.related(thread)] == [thread, assistant_msg, None]
    assert lunary.get_run(llm)["traceId"] == thread


def test_start_with_unknown_parent_drops_the_parent(
    lunary: LocalLunary, client: httpx.Client
) -> None:
    child = rid()
    ok(lunary, client, llm_pair(child, 0, 100, parent=rid()))
    assert [r["parentRunId"] for r in lunary.all_runs()] == [None]


# --------------------------------------------------------------------------------------------
# reads


@pytest.fixture
def seeded(lunary: LocalLunary, client: httpx.Client) -> dict[str, str]:
    ids = {k: rid() for k in ("root", "llm1", "llm2", "tool", "agent", "llm3")}
    events = [
        *chain(ids["root"], 0, 2000, tags=["demo"], metadata={"env": "test"}, userId="ada",
               userProps={"plan": "pro"}, input={"q": "capital of France?"}),
        *llm_pair(ids["llm1"], 10, 900, parent=ids["root"], tags=["demo"],
                  usage={"prompt": 42, "completion": 7}, content="What is the capital of France?"),
        *llm_pair(ids["llm2"], 1000, 1500, parent=ids["root"], usage={"prompt": 3, "completion": 2},
                  name="gpt-4o", content="x" * 150),
        {"type": "tool", "event": "start", "runId": ids["tool"], "parentRunId": ids["root"],
         "name": "search", "timestamp": ts(1600), "input": {"query": "Paris"}, "tags": ["t"]},
        {"type": "tool", "event": "error", "runId": ids["tool"], "timestamp": ts(1650),
         "error": {"message": "down"}},
        {"type": "agent", "event": "start", "runId": ids["agent"], "name": "A",
         "timestamp": ts(3000), "input": "go", "metadata": {"env": "prod.eu"}},
        *llm_pair(ids["llm3"], 3010, 3015, parent=ids["agent"],
                  usage={"prompt": 100, "completion": 100}),
    ]  # fmt: skip
    assert all(r["success"] for r in ok(lunary, client, events))
    return ids


def ids_of(runs: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in runs]


def test_list_default_type_and_truncation(lunary: LocalLunary, seeded: dict[str, str]) -> None:
    assert ids_of(lunary.list_runs()) == [seeded["llm3"], seeded["llm2"], seeded["llm1"]]
    full = {r["id"]: r for r in lunary.list_runs()}
    assert full[seeded["llm2"]]["input"] == [
        {"role": "user", "content": "x" * 150, "enrichments": []}
    ]
    short = {r["id"]: r for r in lunary.list_runs(type="llm")}
    assert short[seeded["llm2"]]["input"] == {
        "role": "user",
        "content": "x" * 100,
        "enrichments": [],
    }
    assert ids_of(lunary.list_runs(type="trace")) == [seeded["agent"], seeded["root"]]
    assert ids_of(lunary.list_runs(type="tool")) == [seeded["tool"]]
    item = lunary.list_runs(type="tool")[0]
    assert set(item) == {
        "id", "projectId", "isPublic", "feedback", "parentFeedback", "feedbacks", "type", "name",
        "createdAt", "endedAt", "duration", "templateVersionId", "templateSlug", "cost", "tokens",
        "toxicity", "tags", "input", "output", "error", "status", "params", "metadata", "user",
        "scores",
    }  # fmt: skip
    assert item["projectId"] == lunary.project_id and item["params"] == {}


def test_filters(lunary: LocalLunary, seeded: dict[str, str]) -> None:
    s = seeded
    assert ids_of(lunary.list_runs(tags="demo")) == [s["llm1"], s["root"]]
    assert ids_of(lunary.list_runs(tags="t,demo")) == [s["tool"], s["llm1"], s["root"]]
    assert ids_of(lunary.list_runs(search="FRANCE")) == [s["llm1"], s["root"]]
    assert ids_of(lunary.list_runs(models="gpt-4o")) == [s["llm2"]]
    assert ids_of(lunary.list_runs(status="error")) == [s["tool"]]
    assert ids_of(lunary.list_runs(metadata="env.test")) == [s["root"]]
    assert ids_of(lunary.list_runs(metadata="env.prod%2Eeu")) == [s["agent"]]
    assert ids_of(lunary.list_runs(date="gt.2026-01-01T10:00:02%2E500Z")) == [s["llm3"], s["agent"]]
    assert ids_of(
        lunary.list_runs(date=["gt.2026-01-01T10:00:00%2E005Z", "lt.2026-01-01T10:00:01Z"])
    ) == [s["llm1"]]
    assert ids_of(lunary.list_runs(duration="gte.1")) == [s["root"]]
    assert ids_of(lunary.list_runs(type="llm", duration="lt.0%2E1")) == [s["llm3"]]
    assert ids_of(lunary.list_runs(tokens="total.gt.40")) == [s["llm3"], s["llm1"]]
    assert ids_of(lunary.list_runs(tokens="prompt.eq.3")) == [s["llm2"]]
    assert ids_of(lunary.list_runs(cost="gt.0")) == [s["llm2"], s["llm1"]]  # llm3: < 10 ms
    assert ids_of(lunary.list_runs(**{"user-props": "plan.pro"})) == [
        s["tool"], s["llm2"], s["llm1"], s["root"],
    ]  # fmt: skip
    assert ids_of(lunary.list_runs(parentRunId=s["root"], type="llm")) == [s["llm2"], s["llm1"]]
    assert ids_of(lunary.list_runs(parentRunId=s["root"])) == [s["llm2"], s["llm1"]]  # llm default
    # a literal '.' inside a value: the filter is ignored (but it still lifts the llm default)
    assert len(lunary.list_runs(date="gt.2026-01-01T10:00:02.500Z")) == 6
    # unknown keys are ignored altogether
    assert ids_of(lunary.list_runs(startTime="2026")) == ids_of(lunary.list_runs())


def test_or_filters(lunary: LocalLunary, client: httpx.Client, seeded: dict[str, str]) -> None:
    r = get(lunary, client, "/v1/runs?OR&models=gpt-4o&status=error")
    assert ids_of(r.json()["data"]) == [seeded["tool"], seeded["llm2"]]


def test_sorting_pagination_and_count(lunary: LocalLunary, seeded: dict[str, str]) -> None:
    s = seeded
    page0 = lunary.list_runs(limit=2, page=0)
    page1 = lunary.list_runs(limit=2, page=1)
    assert ids_of(page0 + page1) == [s["llm3"], s["llm2"], s["llm1"]]
    asc = lunary.list_runs(sortField="createdAt", sortDirection="asc")
    assert ids_of(asc) == [s["llm1"], s["llm2"], s["llm3"]]
    by_tokens = lunary.list_runs(sortField="tokens", sortDirection="desc")
    assert ids_of(by_tokens) == [s["llm3"], s["llm1"], s["llm2"]]
    by_duration = lunary.list_runs(sortField="duration", sortDirection="desc", type="trace")
    assert ids_of(by_duration) == [s["root"], s["agent"]]  # the agent never ended: nulls last
    assert lunary.count() == 3
    assert lunary.count(type="llm", limit=2) == 2
    assert lunary.count(tags="demo") == 2


def test_get_related_and_errors(
    lunary: LocalLunary, client: httpx.Client, seeded: dict[str, str]
) -> None:
    run = lunary.get_run(seeded["llm1"])
    assert run["traceId"] == seeded["root"]
    assert run["toxicity"] == {"input": {}, "output": {}}
    assert "parentFeedback" not in run and "templateSlug" not in run
    assert lunary.get_run(seeded["root"])["traceId"] is None
    rel = lunary.related(seeded["root"])
    assert ids_of(rel) == [seeded[k] for k in ("root", "llm1", "llm2", "tool")]
    assert rel[0]["params"] is None and rel[0]["cost"] == 0
    assert rel[1]["promptTokens"] == 42 and rel[1]["parentRunId"] == seeded["root"]
    r = get(lunary, client, f"/v1/runs/{rid()}")
    assert (r.status_code, r.json()) == (404, {"message": "Run not found"})
    r = get(lunary, client, "/v1/runs/not-a-uuid")
    assert r.status_code == 500
    assert r.json() == {"message": 'invalid input syntax for type uuid: "not-a-uuid"'}


def test_exports(lunary: LocalLunary, client: httpx.Client, seeded: dict[str, str]) -> None:
    assert get(lunary, client, "/v1/runs/export?exportFormat=jsonl").status_code == 422
    assert get(lunary, client, "/v1/runs/export?type=llm&exportType=csv").status_code == 422

    r = get(lunary, client, "/v1/runs/export?type=llm&exportFormat=jsonl")
    assert r.headers["content-type"] == "application/jsonl"
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert ids_of(lines) == [seeded["llm3"], seeded["llm2"], seeded["llm1"]]
    assert "enrichments" not in json.dumps(lines)

    r = get(lunary, client, "/v1/runs/export?type=trace&exportFormat=jsonl")
    traces = [json.loads(x) for x in r.text.splitlines()]
    assert ids_of(traces) == [seeded["agent"], seeded["root"]]
    assert all(t["children"] == [] for t in traces)

    r = get(lunary, client, "/v1/runs/export?type=llm&exportFormat=csv&tags=demo")
    assert r.headers["content-type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["id"] for row in rows] == [seeded["llm1"]]
    assert json.loads(rows[0]["tokens"])["prompt"] == 42 and rows[0]["isPublic"] == "false"

    r = get(lunary, client, "/v1/runs/export?type=llm&exportFormat=ojsonl&models=gpt-4o")
    messages = [
        {"role": "user", "content": "x" * 150},
        {"role": "assistant", "content": "ok " + "x" * 150},
    ]
    assert [json.loads(x) for x in r.text.splitlines()] == [{"messages": messages}]


# --------------------------------------------------------------------------------------------
# the Python API


def test_lifecycle_and_keys() -> None:
    lunary = LocalLunary(public_key="pub", private_key="priv")
    assert lunary.project_id == "pub"
    lunary.start()
    try:
        assert lunary.url.startswith("http://127.0.0.1:") and lunary.port > 0
        assert lunary.count() == 0
    finally:
        lunary.stop()
    lunary.stop()  # idempotent
    with LocalLunary() as other:
        uuid.UUID(other.public_key)
        uuid.UUID(other.private_key)
        assert other.public_key != other.private_key


def test_all_runs_reads_sqlite(lunary: LocalLunary, seeded: dict[str, str]) -> None:
    runs = lunary.all_runs()
    assert len(runs) == 6
    assert [r["createdAt"] for r in runs] == sorted(r["createdAt"] for r in runs)
    by_id = {r["id"]: r for r in runs}
    assert by_id[seeded["llm1"]]["parentRunId"] == seeded["root"]
    assert by_id[seeded["root"]]["parentRunId"] is None
    assert by_id[seeded["llm3"]]["traceId"] == seeded["agent"]


def test_file_database_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.sqlite3")
    run_id = rid()
    with LocalLunary(db=db, public_key="p", private_key="s") as lunary, httpx.Client() as c:
        r = c.post(
            lunary.url + "/v1/runs/ingest",
            json={"events": llm_pair(run_id, 0, 100)},
            headers={"Authorization": "Bearer p"},
        )
        assert r.status_code == 200
    with LocalLunary(db=db, public_key="p", private_key="s") as lunary:
        assert ids_of(lunary.list_runs()) == [run_id]


def test_concurrent_clients(lunary: LocalLunary) -> None:
    errors: list[BaseException] = []

    def send(worker: int) -> None:
        try:
            with httpx.Client(base_url=lunary.url) as c:
                for batch in range(5):
                    events = []
                    for i in range(50):
                        events += llm_pair(rid(), worker * 1000 + batch * 50 + i, 100_000)
                    r = c.post(
                        "/v1/runs/ingest",
                        json={"events": events},
                        headers={"Authorization": f"Bearer {lunary.public_key}"},
                    )
                    assert r.status_code == 200 and all(x["success"] for x in r.json()["results"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert lunary.count(limit=10_000) == 4 * 5 * 50
    assert lunary.stats == {"requests": 20, "events": 2000}


def test_module_entry_point_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lunary_integrations.local", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        url = lines[0].split()[-1]
        public = lines[2].strip().split("=", 1)[1]
        private = lines[3].strip().split("=", 1)[1]
        r = httpx.get(url + "/v1/runs", headers={"Authorization": f"Bearer {private}"})
        assert r.json() == {"page": 0, "limit": 50, "data": []}
        r = httpx.get(url + "/v1/runs", headers={"Authorization": f"Bearer {public}"})
        assert r.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
