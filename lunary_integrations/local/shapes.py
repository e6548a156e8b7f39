"""Rendering stored rows into the shapes the real server returns.

Four shapes differ in their key sets (see the samples' README): list items, single-run GETs,
`/related` rows and export lines. Key order follows the real server's replies.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping

from .util import JSON, iso_ms, js_dumps, pg_interval

# The SELECT every run read uses: the run, its parent's feedback and its user.
SELECT_RUNS = (
    "SELECT r.*, p.feedback AS parent_feedback, u.id AS u_id, u.external_id AS u_external_id,"
    " u.created_at AS u_created_at, u.last_seen AS u_last_seen, u.props AS u_props"
    " FROM runs r LEFT JOIN runs p ON p.id = r.parent_run_id LEFT JOIN users u ON u.id = r.user_id"
)

CSV_COLUMNS = (
    "id",
    "projectId",
    "isPublic",
    "feedback",
    "parentFeedback",
    "feedbacks",
    "type",
    "name",
    "createdAt",
    "endedAt",
    "duration",
    "templateVersionId",
    "templateSlug",
    "cost",
    "tokens",
    "toxicity",
    "tags",
    "input",
    "output",
    "error",
    "status",
    "siblingRunId",
    "params",
    "metadata",
    "user",
    "traceId",
    "scores",
    "firstMessage",
    "messagesCount",
)

Rec = sqlite3.Row


def _jsonb_object(pairs: list[tuple[str, JSON]]) -> dict[str, JSON]:
    """Postgres jsonb key order: shorter keys first, then bytewise."""
    return dict(sorted(pairs, key=lambda kv: (len(kv[0].encode()), kv[0].encode())))


def load_jsonb(text: str | None) -> JSON:
    """Stored JSON text → value, with objects in the key order jsonb reads them back."""
    return None if text is None else json.loads(text, object_pairs_hook=_jsonb_object)


_load = load_jsonb


def enrich(value: JSON) -> JSON:
    """Add `enrichments: []` to an object, or to every object of a list (one level)."""
    if isinstance(value, dict):
        return {**value, "enrichments": []}
    if isinstance(value, list):
        return [{**v, "enrichments": []} if isinstance(v, dict) else v for v in value]
    return value


def user_obj(rec: Rec) -> JSON:
    if rec["u_id"] is None:
        return None
    return {
        "id": rec["u_id"],
        "externalId": rec["u_external_id"],
        "createdAt": iso_ms(rec["u_created_at"]),
        "lastSeen": iso_ms(rec["u_last_seen"]),
        "props": _load(rec["u_props"]),
    }


def tokens_obj(rec: Rec) -> dict[str, JSON]:
    prompt = rec["prompt_tokens"]
    completion = rec["completion_tokens"]
    return {
        "prompt": prompt,
        "cachedPrompt": rec["cached_prompt_tokens"] or 0,
        "completion": completion,
        "total": (prompt or 0) + (completion or 0),
    }


def duration_text(rec: Rec) -> str | None:
    if rec["ended_at"] is None or rec["created_at"] is None:
        return None
    return pg_interval(rec["ended_at"] - rec["created_at"])


def _truncate_llm_input(value: JSON) -> JSON:
    """`type=llm` lists: the last message only, its string content cut to 100 characters."""
    if isinstance(value, list):
        if not value:
            return value
        value = value[-1]
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        value = {**value, "content": value["content"][:100]}
    return value


def list_item(
    rec: Rec,
    project_id: str,
    *,
    enriched: bool = True,
    truncate: bool = False,
    thread: ThreadInfo | None = None,
) -> dict[str, JSON]:
    """A run as `GET /v1/runs` lists it (and as exports write it when `enriched` is False)."""
    run_input = _load(rec["input"])
    if truncate:
        run_input = _truncate_llm_input(run_input)
    output = _load(rec["output"])
    error = _load(rec["error"])
    if enriched:
        run_input, output, error = enrich(run_input), enrich(output), enrich(error)
    is_thread = rec["type"] == "thread"
    params = _load(rec["params"])
    item: dict[str, JSON] = {
        "id": rec["id"],
        "projectId": project_id,
        "isPublic": False,
        "feedback": _load(rec["feedback"]),
        "parentFeedback": _load(rec["parent_feedback"]),
        "feedbacks": (thread.feedbacks if thread else []) if is_thread else None,
        "type": rec["type"],
        "name": rec["name"],
        "createdAt": iso_ms(rec["created_at"]),
        "endedAt": iso_ms(rec["ended_at"]),
        "duration": duration_text(rec),
        "templateVersionId": rec["template_version_id"],
        "templateSlug": None,
        "cost": rec["cost"],
        "tokens": tokens_obj(rec),
        "toxicity": {
            "input": {"isToxic": None, "labels": None},
            "output": {"isToxic": None, "labels": None},
        },
        "tags": _load(rec["tags"]),
        "input": run_input,
        "output": output,
        "error": error,
        "status": rec["status"],
        "params": params if params is not None else {},
        "metadata": _load(rec["metadata"]),
        "user": user_obj(rec),
        "scores": [],
    }
    if is_thread:
        item["firstMessage"] = thread.first_message if thread else None
        item["messagesCount"] = thread.messages_count if thread else 0
    return item


def get_item(rec: Rec, project_id: str, trace_id: str | None) -> dict[str, JSON]:
    """A run as `GET /v1/runs/{id}` returns it."""
    params = _load(rec["params"])
    return {
        "id": rec["id"],
        "projectId": project_id,
        "isPublic": False,
        "feedback": _load(rec["feedback"]),
        "type": rec["type"],
        "name": rec["name"],
        "createdAt": iso_ms(rec["created_at"]),
        "endedAt": iso_ms(rec["ended_at"]),
        "duration": duration_text(rec),
        "templateVersionId": rec["template_version_id"],
        "cost": rec["cost"],
        "tokens": tokens_obj(rec),
        "toxicity": {"input": {}, "output": {}},
        "tags": _load(rec["tags"]),
        "input": enrich(_load(rec["input"])),
        "output": enrich(_load(rec["output"])),
        "error": enrich(_load(rec["error"])),
        "status": rec["status"],
        "params": params if params is not None else {},
        "metadata": _load(rec["metadata"]),
        "user": user_obj(rec),
        "traceId": trace_id,
        "scores": [],
    }


def related_row(rec: Rec, project_id: str) -> dict[str, JSON]:
    """A raw row of `GET /v1/runs/{id}/related`."""
    return {
        "createdAt": iso_ms(rec["created_at"]),
        "tags": _load(rec["tags"]),
        "projectId": project_id,
        "id": rec["id"],
        "status": rec["status"],
        "name": rec["name"],
        "endedAt": iso_ms(rec["ended_at"]),
        "error": _load(rec["error"]),
        "input": _load(rec["input"]),
        "output": _load(rec["output"]),
        "params": _load(rec["params"]),
        "type": rec["type"],
        "parentRunId": rec["parent_run_id"],
        "completionTokens": rec["completion_tokens"],
        "promptTokens": rec["prompt_tokens"],
        "cost": rec["cost"] if rec["cost"] is not None else 0,
        "feedback": _load(rec["feedback"]),
        "metadata": _load(rec["metadata"]),
    }


class ThreadInfo:
    """What a thread's list item and export row derive from its chat runs."""

    def __init__(self) -> None:
        self.feedbacks: list[JSON] = []
        self.first_message: JSON = None
        self.messages_count = 0
        self.messages: list[dict[str, JSON]] = []  # export: every message of the thread

    def add_chat(self, run_input: JSON, output: JSON, feedback: JSON) -> None:
        self.feedbacks.append(feedback)
        msgs = [m for part in (run_input, output) if isinstance(part, list) for m in part]
        if self.first_message is None and msgs:
            self.first_message = msgs[0]
        self.messages_count += len(msgs)

    def add_export_messages(self, run_input: JSON, output: JSON, created_at: int | None) -> None:
        for part in (run_input, output):
            if isinstance(part, list):
                for m in part:
                    if isinstance(m, dict):
                        self.messages.append(
                            {
                                "role": m.get("role"),
                                "content": m.get("content"),
                                "createdAt": iso_ms(created_at),
                            }
                        )


def export_thread_row(rec: Rec, project_id: str, thread: ThreadInfo | None) -> dict[str, JSON]:
    """A thread line of `/v1/runs/export?type=thread&exportFormat=jsonl`."""
    item = list_item(rec, project_id, enriched=False, thread=thread)
    for key in ("feedback", "parentFeedback", "input", "params"):
        del item[key]
    item["messages"] = thread.messages if thread else []
    return item


def _openai_message(message: JSON) -> JSON:
    if not isinstance(message, dict):
        return message
    out: dict[str, JSON] = {}
    for k, v in message.items():
        if k == "enrichments":
            continue
        if k == "toolCalls":
            k = "tool_calls"
        elif k == "toolCallId":
            k = "tool_call_id"
        out[k] = v
    if out.get("content", "") is None:
        out["content"] = ""
    return out


def ojsonl_line(item: Mapping[str, JSON]) -> dict[str, JSON] | None:
    """An OpenAI fine-tuning line `{"messages": [...]}`; None for runs without output."""
    output = item.get("output")
    if output is None:
        return None
    messages: list[JSON] = []
    for part in (item.get("input"), output):
        if isinstance(part, list):
            messages.extend(_openai_message(m) for m in part)
        elif part is not None:
            messages.append(_openai_message(part))
    return {"messages": messages}


def _csv_cell(value: JSON) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return js_dumps(value)
    text = value if isinstance(value, str) else js_dumps(value)
    return '"' + text.replace('"', '""') + '"'


def csv_lines(items: Iterable[Mapping[str, JSON]]) -> Iterable[str]:
    yield ",".join(f'"{c}"' for c in CSV_COLUMNS) + "\n"
    for item in items:
        yield ",".join(_csv_cell(item.get(c)) for c in CSV_COLUMNS) + "\n"
