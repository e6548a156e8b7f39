"""Reading stored traces back from the local collector in LangChain integration tests."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

import lunary_integrations
from lunary_integrations.ingest import get_client
from lunary_integrations.local import LocalLunary

from .lc_fakes import UsageFakeChatModel

Run = dict[str, Any]


def prompt_model_parser() -> Runnable[dict[str, str], str]:
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("human", "{q}")])
    return prompt | UsageFakeChatModel() | StrOutputParser()


def stored(lunary: LocalLunary) -> list[Run]:
    """Everything delivered so far (flushes first)."""
    assert lunary_integrations.flush(timeout=10), get_client().stats()
    return lunary.all_runs()


def roots(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r["parentRunId"] is None]


def children(runs: list[Run]) -> dict[str, list[Run]]:
    by_parent: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if run["parentRunId"] is not None:
            by_parent[run["parentRunId"]].append(run)
    return by_parent


def one(runs: list[Run], **match: Any) -> Run:
    found = [r for r in runs if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, [(r["type"], r["name"]) for r in runs])
    return found[0]


def assert_sequence_tree(runs: list[Run], root: Run) -> Run:
    """``prompt | model | parser`` under ``root``: 3 children, complete and successful;
    returns the LLM run."""
    kids = sorted(children(runs)[root["id"]], key=lambda r: r["createdAt"])
    assert root["type"] == "chain" and root["name"] == "RunnableSequence"
    assert [(k["type"], k["name"]) for k in kids] == [
        ("chain", "ChatPromptTemplate"),
        ("llm", "fake-gpt-1"),
        ("chain", "StrOutputParser"),
    ]
    for run in [root, *kids]:
        assert run["status"] == "success", run
        assert run["endedAt"] is not None
    llm = kids[1]
    assert llm["tokens"]["prompt"] == 11 and llm["tokens"]["completion"] == 3
    assert root["output"] == "hello there friend"
    return llm


def plain(value: Any) -> Any:
    """A stored value without the ``enrichments: []`` the server adds to every object."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "enrichments"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def no_duplicates_sent(n_events: int) -> None:
    stats = get_client().stats()
    assert stats["duplicates"] == 0 and stats["failed"] == 0, stats
    assert stats["sent"] == n_events, stats
