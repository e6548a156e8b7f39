"""Shared by the ``test_runs_*`` modules: cassette settings, sample paths, a seeded dataset."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import vcr

import lunary_integrations

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"
REAL = CASSETTES / "real"
LOCAL = CASSETTES / "local"
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "lunary-samples"
IDS: dict[str, str] = {
    "a_root_chain": "a6b02212-db5c-446c-9b92-8e6d77cf71cd",
    "a_llm1": "d0d3eee3-cf6e-4d95-b9f2-f30577c29af7",
    "a_llm2": "19bbbc2f-1424-4827-99c4-5130af25bb35",
    "a_tool": "0213f75f-956f-46d3-88fe-3f97773ae8cb",
    "a_retriever": "b598a6ee-f991-4a9a-be52-27aac5baafbf",
    "c_thread": "eb496c2e-8202-421d-9273-effc8699aa16",
    "c_user_msg": "ed7a6e7b-18b8-4bda-8026-0479e85623d4",
    "c_assistant_msg": "001cc123-7950-4e28-8785-28b879562494",
    "c_thread_llm": "2f055edb-067d-4587-9c96-53a0512e645b",
    "unknown": "62d126d8-9437-407e-af86-4bdbd34debea",
}
#: The host the real-server cassettes were recorded under (any port replays: port not matched).
REAL_URL = "http://lunary.test"
#: Local-collector cassettes replay against this address; nothing listens there.
LOCAL_REPLAY_URL = "http://127.0.0.1:9"
#: Test-only key material: the cassettes never carry any key, so any string replays.
FAKE_PRIVATE_KEY = "test-private-key-not-a-secret"

VCR = vcr.VCR(
    record_mode="none",
    match_on=["method", "scheme", "host", "path", "query"],
    filter_headers=["authorization", "x-api-key"],
    decode_compressed_response=True,
)


def scrub_response(project_id: str) -> Any:
    """A ``before_record_response`` hook: the collector's project id *is* its public key."""

    def scrub(response: dict[str, Any]) -> dict[str, Any]:
        body = response["body"]["string"]
        if isinstance(body, bytes):
            body = body.replace(project_id.encode(), b"<PROJECT_ID>")
        else:
            body = body.replace(project_id, "<PROJECT_ID>")
        response["body"]["string"] = body
        return response

    return scrub


# --------------------------------------------------------------------------- seeded dataset

BASE_TIME = datetime(2026, 11, 20, 9, 0, 0, tzinfo=timezone.utc)
LONG_QUESTION = (
    "Our customer bought the ACME deluxe kettle 45 days ago, it stopped heating after two "
    "weeks, and she kept the receipt. What does the refund policy say about this case?"
)
LONG_ANSWER = (
    "The ACME refund policy gives a full refund within 30 days and, after that, a repair or a "
    "replacement for manufacturing defects during the 2-year warranty: offer a replacement."
)


def _id(n: int) -> str:
    return str(uuid.UUID(int=0xA11CE000_0000_4000_8000_000000000000 + n))


def seed_llm_runs() -> dict[str, str]:
    """Ingest a fixed set of runs (ids and times are deterministic) and flush them.

    * ``refund``: an llm run with a long system+user conversation, a tool call, tokens,
      user ``cust-7`` (props), tags ``support`` and ``v1.2``, metadata ``ticket_id=T.42``;
    * ``cafe``: an llm run about a café (non-ASCII), model ``gpt-4.1``;
    * ``chain``: a chain with the two llm runs as children (a trace tree);
    * ``failed``: a failed llm run.
    """
    ids = {"chain": _id(1), "refund": _id(2), "cafe": _id(3), "failed": _id(4)}
    t = BASE_TIME
    track = lunary_integrations.track_event
    track(
        type="chain",
        event="start",
        run_id=ids["chain"],
        name="SupportChain",
        input={"question": LONG_QUESTION},
        user_id="cust-7",
        user_props={"plan": "pro"},
        tags=["support"],
        timestamp=t,
    )
    track(
        type="llm",
        event="start",
        run_id=ids["refund"],
        parent_run_id=ids["chain"],
        name="gpt-4o-mini",
        input=[
            {"role": "system", "content": "You are ACME's support assistant."},
            {"role": "user", "content": LONG_QUESTION},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup_policy", "arguments": '{"topic": "refund"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "30 days; 2-year warranty"},
        ],
        extra={"temperature": 0.2, "max_tokens": 256},
        tags=["support", "v1.2"],
        user_id="cust-7",
        user_props={"plan": "pro"},
        metadata={"ticket_id": "T.42"},
        timestamp=t + timedelta(milliseconds=10),
    )
    track(
        type="llm",
        event="end",
        run_id=ids["refund"],
        output={"role": "assistant", "content": LONG_ANSWER},
        tokens_usage={"prompt": 180, "completion": 42},
        timestamp=t + timedelta(milliseconds=1510),
    )
    track(
        type="llm",
        event="start",
        run_id=ids["cafe"],
        parent_run_id=ids["chain"],
        name="gpt-4.1",
        input=[{"role": "user", "content": "Recommend a café near the Musée d'Orsay, please."}],
        tags=["support"],
        timestamp=t + timedelta(milliseconds=1600),
    )
    track(
        type="llm",
        event="end",
        run_id=ids["cafe"],
        output={"role": "assistant", "content": "Café de l'Empire, two minutes away."},
        tokens_usage={"prompt": 14, "completion": 9},
        timestamp=t + timedelta(milliseconds=2100),
    )
    track(
        type="chain",
        event="end",
        run_id=ids["chain"],
        output={"answer": LONG_ANSWER},
        timestamp=t + timedelta(milliseconds=2200),
    )
    track(
        type="llm",
        event="start",
        run_id=ids["failed"],
        name="gpt-4o-mini",
        input=[{"role": "user", "content": "ping"}],
        timestamp=t + timedelta(seconds=5),
    )
    track(
        type="llm",
        event="error",
        run_id=ids["failed"],
        error={"message": "Rate limit reached"},
        timestamp=t + timedelta(seconds=6),
    )
    assert lunary_integrations.flush(10)
    return ids


def seed_many(n: int, *, tag: str = "bulk") -> list[str]:
    """``n`` tool runs one second apart (the newest is the last id), flushed."""
    ids = [_id(1000 + i) for i in range(n)]
    for i, rid in enumerate(ids):
        t = BASE_TIME + timedelta(seconds=i)
        lunary_integrations.track_event(
            type="tool",
            event="start",
            run_id=rid,
            name=f"step-{i}",
            input={"i": i},
            tags=[tag],
            timestamp=t,
        )
        lunary_integrations.track_event(
            type="tool",
            event="end",
            run_id=rid,
            output={"ok": i},
            timestamp=t + timedelta(milliseconds=5),
        )
    assert lunary_integrations.flush(10)
    return ids


def read_exchange(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / "exchanges" / f"{name}.json").read_text())
    return data
