"""Every real read reply parses into the read models without losing a documented field."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from lunary_integrations.events import Run, RunsPage
from lunary_integrations.runs import RunTree
from lunary_integrations.runs.export import ExportParser

from .runs_support import IDS, REAL, SAMPLES

#: The documented Run fields (lunary-protocol.md §2) and the Python names they parse into.
DOCUMENTED = {
    "id": "id",
    "projectId": "project_id",
    "isPublic": "is_public",
    "type": "type",
    "name": "name",
    "status": "status",
    "createdAt": "created_at",
    "endedAt": "ended_at",
    "duration": "duration",
    "tokens": "tokens",
    "cost": "cost",
    "tags": "tags",
    "input": "input",
    "output": "output",
    "error": "error",
    "params": "params",
    "metadata": "metadata",
    "feedback": "feedback",
    "parentFeedback": "parent_feedback",
    "user": "user",
    "templateVersionId": "template_version_id",
    "templateSlug": "template_slug",
    "scores": "scores",
    "traceId": "trace_id",
    "parentRunId": "parent_run_id",
    "promptTokens": "prompt_tokens",
    "completionTokens": "completion_tokens",
    "firstMessage": "first_message",
    "messagesCount": "messages_count",
}


def _without_enrichments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_enrichments(v) for k, v in value.items() if k != "enrichments"}
    if isinstance(value, list):
        return [_without_enrichments(v) for v in value]
    return value


def reply_kind(path_and_query: str) -> str:
    """What a GET reads: only ``run`` replies (lists, counts, single runs, related rows,
    exports) are parsed into the run models here."""
    path = path_and_query.split("?", 1)[0]
    if path == "/v1/health":
        return "health"
    if path.startswith(("/v1/template_versions", "/v1/templates")):
        return "template"  # issue 26 parses these
    if path.startswith("/v1/datasets"):
        return "dataset"  # issue 26 parses these
    if path.startswith("/v1/runs/") and path.endswith("/feedback"):
        return "feedback"  # the bare feedback object (147), not a run
    if path == "/v1/runs" or path.startswith("/v1/runs/"):
        return "run"
    raise AssertionError(f"unclassified read: {path_and_query}")


def _replies_from_exchanges() -> list[tuple[str, str, str, Any]]:
    out = []
    for path in sorted((SAMPLES / "exchanges").glob("*.json")):
        data = json.loads(path.read_text())
        if data["request"]["method"] != "GET":
            continue
        if reply_kind(data["request"]["path_and_query"]) != "run":
            continue
        response = data["response"]
        out.append(
            (
                path.stem,
                data["request"]["path_and_query"],
                response["headers"].get("content-type", ""),
                (response["status"], response["body"]),
            )
        )
    return out


def _replies_from_cassettes() -> list[tuple[str, str, str, Any]]:
    out = []
    for path in sorted(REAL.glob("*.yaml")):
        (interaction,) = yaml.safe_load(path.read_text())["interactions"]
        response = interaction["response"]
        ctype = response["headers"].get("content-type", [""])[0]
        text = response["body"]["string"]
        body = json.loads(text) if ctype.startswith("application/json;") else text
        uri = interaction["request"]["uri"].removeprefix("http://lunary.test")
        out.append((path.stem, uri, ctype, (response["status"]["code"], body)))
    return out


def _check_run(raw: dict[str, Any], run: Run) -> None:
    """Each documented field of ``raw`` is on the model, with its value (enrichments aside)."""
    for key, value in raw.items():
        attr = DOCUMENTED.get(key)
        if attr is None:
            assert run.model_extra is not None and key in run.model_extra, key  # kept as extra
            continue
        parsed = getattr(run, attr) if attr in type(run).model_fields else run.model_extra[attr]
        if hasattr(parsed, "model_dump"):
            parsed = parsed.model_dump(by_alias=True, mode="json")
            value = {k: v for k, v in value.items()}
            for k in set(parsed) - set(value):
                assert parsed[k] is None, (key, k)  # defaults only, nothing invented
                del parsed[k]
            if key == "user":  # datetimes come back with the same instant
                for k in ("createdAt", "lastSeen"):
                    assert _same_instant(parsed[k], value[k])
                    parsed[k] = value[k]
        elif attr in ("created_at", "ended_at"):
            assert _same_instant(parsed and parsed.isoformat(), value), key
            continue
        assert parsed == _without_enrichments(value), key
    assert "enrichments" not in json.dumps(run.model_dump(mode="json"))


def _same_instant(a: str | None, b: str | None) -> bool:
    from datetime import datetime

    if a is None or b is None:
        return a is b
    return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(
        b.replace("Z", "+00:00")
    )


def _check_reply(name: str, ctype: str, status: int, body: Any) -> int:
    """Parse one reply; returns how many runs it held."""
    if status != 200:
        assert isinstance(body, dict) and isinstance(body["message"], str)
        return 0
    if ctype.startswith("text/csv"):
        rows = list(ExportParser("csv").parse(body.splitlines()))
        assert rows and all(row["id"] and row["type"] == "llm" for row in rows)
        for row in rows:  # nested values are JSON text in the cells
            assert json.loads(row["tokens"])["total"] >= 0
            Run.model_validate({k: v for k, v in row.items() if k in ("id", "type", "name")})
        return len(rows)
    if ctype.startswith("application/jsonl"):
        lines = [json.loads(line) for line in body.splitlines() if line]
        if "ojsonl" in name:
            assert all(set(line) == {"messages"} for line in lines)
            return len(lines)
        parsed = list(ExportParser("jsonl").parse(body.splitlines()))
        for raw, run in zip(lines, parsed, strict=True):
            _check_run(raw, run)
        return len(parsed)
    if isinstance(body, int):
        return 0
    if isinstance(body, list):
        runs = [Run.model_validate(row) for row in body]
        for raw, run in zip(body, runs, strict=True):
            _check_run(raw, run)
        return len(runs)
    if "data" in body:
        page = RunsPage.model_validate(body)
        assert (page.page, page.limit) == (body["page"], body["limit"])
        for raw, run in zip(body["data"], page.data, strict=True):
            _check_run(raw, run)
        return len(page.data)
    _check_run(body, Run.model_validate(body))
    return 1


SOURCES = [("exchange", *r) for r in _replies_from_exchanges()] if SAMPLES.is_dir() else []
SOURCES += [("cassette", *r) for r in _replies_from_cassettes()]


@pytest.mark.parametrize(
    ("source", "name", "uri", "ctype", "reply"), SOURCES, ids=[f"{s[0]}-{s[1]}" for s in SOURCES]
)
def test_every_real_read_reply_parses_without_loss(
    source: str, name: str, uri: str, ctype: str, reply: tuple[int, Any]
) -> None:
    status, body = reply
    count = _check_reply(name, ctype, status, body)
    assert count >= 0


def test_every_exchange_read_is_classified() -> None:
    kinds: dict[str, list[str]] = {}
    for path in sorted((SAMPLES / "exchanges").glob("*.json")):
        request = json.loads(path.read_text())["request"]
        if request["method"] == "GET":
            kinds.setdefault(reply_kind(request["path_and_query"]), []).append(path.name[:3])
    assert sorted(kinds) == ["dataset", "feedback", "health", "run", "template"]
    assert kinds["feedback"] == ["147"] and len(kinds["run"]) >= 70


def test_all_real_read_replies_are_covered() -> None:
    names = {name for _, name, *_ in SOURCES}
    assert len([n for n in names if n >= "20"]) >= 54
    assert sum(1 for p in REAL.glob("*.yaml")) == 54


def _sample(name: str) -> Any:
    (interaction,) = yaml.safe_load((REAL / f"{name}.yaml").read_text())["interactions"]
    return json.loads(interaction["response"]["body"]["string"])


def test_single_run_fields() -> None:
    run = Run.model_validate(_sample("36-get-llm-run"))
    assert run.duration == "00:00:00.84" and run.duration_seconds == pytest.approx(0.84)
    assert run.tokens is not None
    assert (run.tokens.prompt, run.tokens.cached_prompt, run.tokens.completion) == (42, 10, 7)
    assert run.total_tokens == 49 and run.cost == pytest.approx(5e-7)
    assert run.user is not None and run.user.external_id == "user-123" and run.user.id == 1
    assert run.trace_id == IDS["a_root_chain"]
    assert run.feedback is not None and (run.feedback.thumb, run.feedback.comment) == ("up", "nice")
    assert run.output["toolCalls"][0]["function"]["arguments"] == '{"a": 3, "b": 4}'
    assert "enrichments" not in run.output and "enrichments" not in run.input[0]
    assert run.params is not None and run.params["maxTokens"] == 64


def test_related_rows_carry_parent_ids_and_tokens() -> None:
    rows = [Run.model_validate(r) for r in _sample("37-get-related-of-root")]
    tree = RunTree.from_rows(rows, IDS["a_root_chain"])
    assert rows[0].parent_run_id is None
    assert all(r.parent_run_id for r in rows[1:])
    llm = next(r for r in rows if r.id == IDS["a_llm1"])
    assert (llm.prompt_token_count, llm.completion_token_count, llm.total_tokens) == (42, 7, 49)
    assert {n.run.id for n in tree.root.children} >= {IDS["a_llm1"]}
    assert len(list(tree)) == len(rows) == 6


def test_thread_rows_keep_first_message_and_count() -> None:
    (thread,) = RunsPage.model_validate(_sample("23-list-type-thread")).data
    assert thread.messages_count == 2
    assert thread.first_message == {
        "role": "user",
        "content": "Hi! Can you recommend a museum in Paris?",
    }
    assert thread.duration_seconds is None and thread.ended_at is None


def test_zero_duration_and_interval_text_parse() -> None:
    page = RunsPage.model_validate(_sample("91-sdk-list-tags-sdk"))
    zero = [r for r in page.data if r.duration == "00:00:00"]
    assert zero and all(r.duration_seconds == 0 for r in zero)
