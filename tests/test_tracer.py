"""The framework-neutral tracer core: parents, hidden runs, sampling, ignore, masking."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lunary_integrations.config import Settings
from lunary_integrations.events import NOT_INGESTED, RunEvent
from lunary_integrations.tracer import IgnoreRule, RunTracer, error_info, flatten_metadata, guard

from .recorder import Recorder


def make(**settings: Any) -> tuple[RunTracer, Recorder]:
    tracer_options = {
        k: settings.pop(k)
        for k in ("ignore", "user_id", "user_props", "tags", "metadata", "max_open_runs")
        if k in settings
    }
    rec = Recorder()
    tracer = RunTracer(
        runtime="test", settings=Settings(public_key="k", **settings), client=rec, **tracer_options
    )  # type: ignore[arg-type]
    return tracer, rec


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_events_are_valid_wire_events_and_parents_only_when_seen() -> None:
    tracer, rec = make(user_id="u1", user_props={"plan": "pro"}, tags=["prod"])
    root, child, orphan = ids(3)
    tracer.start(root, None, "chain", "Root", {"q": "hi"}, metadata={"env": "test"})
    tracer.start(
        child,
        root,
        "llm",
        "gpt-4o-mini",
        [{"role": "user", "content": "hi"}],
        params={"temperature": 0.2},
    )
    tracer.start(orphan, str(uuid.uuid4()), "tool", "search", "x")  # parent never seen
    tracer.end(
        child, {"role": "assistant", "content": "yo"}, tokens_usage={"prompt": 3, "completion": 1}
    )
    tracer.error(orphan, ValueError("boom"))
    tracer.end(root, "done")
    for event in rec.events:
        RunEvent.model_validate({**event, "timestamp": "2026-01-01T00:00:00.000Z"})
    start = rec.by_run(root)[0]
    assert start["userId"] == "u1" and start["userProps"] == {"plan": "pro"}
    assert start["tags"] == ["prod"] and start["metadata"] == {"env": "test"}
    assert rec.by_run(child)[0]["parentRunId"] == root
    assert "userId" not in rec.by_run(child)[0]  # children inherit the root's user
    assert "parentRunId" not in rec.by_run(orphan)[0]
    assert rec.by_run(child)[1]["tokensUsage"] == {"prompt": 3, "completion": 1}
    err = rec.by_run(orphan)[1]["error"]
    assert err["message"] == "boom" and "ValueError" in err["stack"]
    assert tracer.open_runs() == 0


def test_hidden_runs_are_skipped_and_children_reparented() -> None:
    tracer, rec = make()
    root, hidden, inner_hidden, leaf = ids(4)
    tracer.start(root, None, "chain", "Root")
    tracer.start(hidden, root, "chain", "Plumbing", hidden=True)
    tracer.start(inner_hidden, hidden, "chain", "More plumbing", hidden=True)
    tracer.start(leaf, inner_hidden, "llm", "m")
    for r in (leaf, inner_hidden, hidden, root):
        tracer.end(r, "x")
    assert {e["runId"] for e in rec.events} == {root, leaf}
    assert rec.by_run(leaf)[0]["parentRunId"] == root


def test_end_for_unknown_run_sends_nothing() -> None:
    tracer, rec = make()
    assert tracer.end(str(uuid.uuid4()), "x") is False
    assert tracer.error(str(uuid.uuid4()), "x") is False
    assert rec.events == []


def test_sampling_is_decided_at_the_root_and_followed_by_children() -> None:
    tracer, rec = make(sample_rate=0.5)
    kept = 0
    for _ in range(400):
        root, child = ids(2)
        tracer.start(root, None, "chain", "R")
        tracer.start(child, root, "llm", "m")
        tracer.end(child, "x")
        tracer.end(root, "y")
        sent = {e["runId"] for e in rec.events}
        assert (root in sent) == (child in sent)  # whole traces, never halves
        kept += root in sent
    assert 120 < kept < 280
    assert tracer.open_runs() == 0


def test_ignore_rules_filter_or_drop_with_children() -> None:
    tracer, rec = make(
        ignore=[{"type": "chain", "name": "Secret*"}, {"name": "Noisy", "ignore_children": True}]
    )
    root, secret, secret_child, noisy, noisy_child = ids(5)
    tracer.start(root, None, "chain", "Root", "in")
    tracer.start(secret, root, "chain", "SecretStep", "password")
    tracer.start(secret_child, secret, "llm", "m", [{"role": "user", "content": "pw"}])
    tracer.end(secret_child, {"role": "assistant", "content": "pw"})
    tracer.end(secret, "password")
    tracer.start(noisy, root, "tool", "Noisy", "x")
    tracer.start(noisy_child, noisy, "llm", "m", "x")
    tracer.end(noisy_child, "x")
    tracer.end(noisy, "x")
    tracer.end(root, "out")
    assert rec.by_run(secret)[0]["input"] == NOT_INGESTED
    assert rec.by_run(secret)[1]["output"] == NOT_INGESTED
    assert rec.by_run(secret_child)[0]["input"] == NOT_INGESTED  # children are filtered too
    assert rec.by_run(noisy) == [] and rec.by_run(noisy_child) == []
    assert rec.by_run(root)[0]["input"] == "in"


def test_ignore_rule_validation() -> None:
    with pytest.raises(ValueError):
        IgnoreRule.parse({"typ": "chain"})
    with pytest.raises(ValueError):
        IgnoreRule.parse({})
    assert IgnoreRule.parse({"type": "llm", "name": "gpt-*"}).matches("llm", "gpt-4o")


def test_mask_applies_to_inputs_and_outputs_and_fails_closed() -> None:
    tracer, rec = make(mask=lambda v: "***" if isinstance(v, str) else v)
    run = ids(1)[0]
    tracer.start(run, None, "tool", "t", "secret")
    tracer.end(run, "secret")
    assert [e.get("input", e.get("output")) for e in rec.events] == ["***", "***"]

    def broken(v: Any) -> Any:
        raise RuntimeError("mask bug")

    tracer, rec = make(mask=broken)
    tracer.start(run, None, "tool", "t", "secret")
    assert rec.events[0]["input"] == NOT_INGESTED


def test_capture_content_false_sends_structure_only() -> None:
    tracer, rec = make(capture_content=False)
    run = ids(1)[0]
    tracer.start(run, None, "llm", "gpt-4o", [{"role": "user", "content": "private"}])
    tracer.end(run, {"role": "assistant", "content": "private"}, tokens_usage={"prompt": 1})
    assert all("input" not in e and "output" not in e for e in rec.events)
    assert rec.events[1]["tokensUsage"] == {"prompt": 1} and rec.events[0]["name"] == "gpt-4o"


def test_runs_that_never_end_are_evicted() -> None:
    tracer, _ = make(max_open_runs=100)
    for run in ids(1000):
        tracer.start(run, None, "chain", "leak")
    assert tracer.open_runs() == 100 and tracer.evicted == 900


def test_snapshot_is_taken_at_the_callback() -> None:
    tracer, rec = make()
    run = ids(1)[0]
    payload = {"messages": ["a"]}
    tracer.start(run, None, "chain", "c", payload)
    payload["messages"].append("mutated later")
    assert rec.events[0]["input"] == {"messages": ["a"]}


def test_flatten_metadata_follows_the_servers_rules() -> None:
    flat = flatten_metadata(
        {"a": 1, "b": "x", "c": [1, "y"], "d": {"nested": 1}, "e": None, "f": float("nan"), 7: True}
    )
    assert flat == {"a": 1, "b": "x", "c": [1, "y"], "d": '{"nested": 1}', "f": "nan", "7": True}


def test_guard_swallows_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    @guard
    def explode() -> None:
        raise KeyError("x")

    explode()
    explode()
    assert sum("failed" in r.getMessage() for r in caplog.records) == 1


def test_error_info_uses_the_exceptions_own_traceback() -> None:
    def inner() -> None:
        raise RuntimeError("deep")

    try:
        inner()
    except RuntimeError as exc:
        info = error_info(exc)
    assert info["message"] == "deep" and "in inner" in info["stack"]


def test_public_tracer_methods_declare_their_parameters() -> None:
    """No ``*args, **kwargs`` on the tracer's public methods: mypy checks every call."""
    import inspect

    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    for name, method in inspect.getmembers(RunTracer, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = inspect.signature(method).parameters.values()
        assert not [p.name for p in params if p.kind in variadic], name


def test_both_paths_build_the_same_events() -> None:
    """``start``/``end`` (snapshot, finished on the worker) and ``start_event``/``end_event``
    (finished at once) send the same fields."""
    queued, rec = make(user_id="u", user_props={"plan": "pro"}, metadata={"env": "t"})
    direct, _ = make(user_id="u", user_props={"plan": "pro"}, metadata={"env": "t"})
    root, child = ids(2)
    args: dict[str, Any] = {"params": {"temperature": 0.2}, "tags": ["x"], "timestamp": 1.0}
    queued.start(root, None, "chain", "Root", {"q": [1, 2]}, **args)
    queued.start(child, root, "llm", "gpt-4o", [{"role": "user", "content": "hi"}], **args)
    answer = {"role": "assistant", "content": "yo"}
    queued.end(child, answer, tokens_usage={"prompt": 3}, timestamp=2.0)
    queued.end(root, "done", metadata={"n": {"deep": 1}}, timestamp=3.0)
    messages = [{"role": "user", "content": "hi"}]
    made = [
        direct.start_event(root, None, "chain", "Root", {"q": [1, 2]}, **args),
        direct.start_event(child, root, "llm", "gpt-4o", messages, **args),
        direct.end_event(child, answer, tokens_usage={"prompt": 3}, timestamp=2.0),
        direct.end_event(root, "done", metadata={"n": {"deep": 1}}, timestamp=3.0),
    ]
    assert rec.events == made and len(made) == 4
    assert rec.events[0]["userProps"] == {"plan": "pro"} and rec.events[3]["metadata"] == {
        "n": '{"deep": 1}'
    }
