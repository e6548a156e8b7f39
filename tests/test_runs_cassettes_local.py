"""Clients and retrievers replaying cassettes recorded against the local collector.

CI only replays (``record_mode="none"``). To record a missing cassette, run
``RECORD_CASSETTES=1 .venv/bin/pytest tests/test_runs_cassettes_local.py``: the test then
starts the collector, ingests the fixed dataset of ``runs_support.seed_llm_runs`` (fixed ids
and timestamps) and records with ``record_mode="once"``, the authorization header filtered
and the collector's project id (which is its public key) replaced by ``<PROJECT_ID>``.

The last test checks every cassette in ``cassettes/`` for secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine

from lunary_integrations.langchain import LunaryRunsRetriever as LCRetriever
from lunary_integrations.llama_index import LunaryRunsReader
from lunary_integrations.llama_index import LunaryRunsRetriever as LIRetriever
from lunary_integrations.local import LocalLunary
from lunary_integrations.runs import AsyncRunsClient, RunsClient

from .runs_support import (
    CASSETTES,
    FAKE_PRIVATE_KEY,
    LOCAL,
    LOCAL_REPLAY_URL,
    LONG_ANSWER,
    LONG_QUESTION,
    VCR,
    _id,
    scrub_response,
    seed_llm_runs,
)

RECORD = os.environ.get("RECORD_CASSETTES") == "1"  # read at import: tests clear LUNARY_*
IDS = {"chain": _id(1), "refund": _id(2), "cafe": _id(3), "failed": _id(4)}


@dataclass
class Target:
    url: str
    key: str
    cassette: Callable[[str], AbstractContextManager[Any]]


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    name = request.node.name
    if RECORD and not (LOCAL / f"{name}.yaml").exists():
        server: LocalLunary = request.getfixturevalue("lunary_local")
        assert seed_llm_runs() == IDS
        options: dict[str, Any] = {
            "record_mode": "once",
            "before_record_response": scrub_response(server.project_id),
        }
        url, key = server.url, server.private_key
    else:
        options, url, key = {"record_mode": "none"}, LOCAL_REPLAY_URL, FAKE_PRIVATE_KEY

    def cassette(suffix: str = "") -> AbstractContextManager[Any]:
        return VCR.use_cassette(str(LOCAL / f"{name}{suffix}.yaml"), **options)

    yield Target(url, key, cassette)


def test_filters_with_dots_and_non_ascii(target: Target) -> None:
    with target.cassette(""), RunsClient(target.key, target.url) as client:
        by_tag = client.list(tags=["v1.2"]).data
        by_meta = client.list(metadata={"ticket_id": "T.42"}, type="llm").data
        by_search = client.list(search="Musée d'Orsay").data
        by_model = client.list(models="gpt-4.1", min_tokens=20, max_tokens=30).data
        window = client.list(
            start_time="2026-11-20T09:00:00.005Z", end_time="2026-11-20T09:00:01.700Z"
        ).data
        slow = client.list(min_duration=1.2, type="llm").data
        count = client.count(type="llm")
    assert [r.id for r in by_tag] == [r.id for r in by_meta] == [IDS["refund"]]
    assert [r.id for r in by_search] == [r.id for r in by_model] == [IDS["cafe"]]
    assert [r.id for r in window] == [IDS["cafe"], IDS["refund"]]
    assert [r.id for r in slow] == [IDS["refund"]] and count == 3


def test_related_get_and_exports(target: Target) -> None:
    with target.cassette(""), RunsClient(target.key, target.url) as client:
        tree = client.related(IDS["chain"])
        run = client.get(IDS["failed"])
        rows = list(client.export("csv", type="llm", tags="support"))
        lines = list(client.export("ojsonl", type="llm", tags="support"))
    assert [n.run.id for n in tree.root.children] == [IDS["refund"], IDS["cafe"]]
    assert run.status == "error" and run.error == {"message": "Rate limit reached"}
    assert [row["id"] for row in rows] == [IDS["cafe"], IDS["refund"]]
    assert LONG_QUESTION in rows[1]["input"]
    assert lines[1]["messages"][-1] == {"role": "assistant", "content": LONG_ANSWER}


def test_langchain_retriever_fetches_full_runs(target: Target) -> None:
    retriever = LCRetriever(private_key=target.key, api_url=target.url, type="llm", k=3)
    with target.cassette(""):
        docs = retriever.invoke("refund")
    (doc,) = docs
    assert doc.id == IDS["refund"] and LONG_QUESTION in doc.page_content
    assert doc.metadata["model"] == "gpt-4o-mini" and doc.metadata["user"] == "cust-7"
    assert doc.metadata["total_tokens"] == 222


async def test_llama_index_retriever_async_in_a_query_engine(target: Target) -> None:
    retriever = LIRetriever(target.key, target.url, type="llm", k=3)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    with target.cassette(""):
        response = await engine.aquery("ACME")
    (node,) = response.source_nodes
    assert node.node.node_id == IDS["refund"] and LONG_ANSWER in node.node.get_content()
    assert node.node.metadata["prompt_tokens"] == 180


async def test_reader_pages_and_async_client(target: Target) -> None:
    reader = LunaryRunsReader(target.key, target.url, page_size=2)
    with target.cassette(""):
        docs = reader.load_data(type="llm")
        async with AsyncRunsClient(target.key, target.url) as client:
            tree = await client.related(IDS["chain"])
    assert [d.doc_id for d in docs] == [IDS["failed"], IDS["cafe"], IDS["refund"]]
    assert LONG_QUESTION in docs[2].text and len(tree) == 3


# --------------------------------------------------------------------------- secrets

SECRET_PATTERNS = [
    re.compile(r"bearer", re.I),
    re.compile(r"authorization", re.I),
    re.compile(r"x-api-key", re.I),
    re.compile(r"LUNARY_"),
    re.compile(r"sk-[A-Za-z0-9]"),
]


def _cassette_files() -> list[Path]:
    return sorted(CASSETTES.rglob("*.yaml"))


def test_cassettes_hold_no_secret() -> None:
    files = _cassette_files()
    assert len([f for f in files if f.parent.name == "real"]) == 54
    assert len([f for f in files if f.parent.name == "local"]) >= 5
    for path in files:
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), (path.name, pattern.pattern)
        # The collector's project id is its public key: only the placeholder may appear.
        for project_id in re.findall(r'\\?"projectId\\?":\\?"([^"\\]*)', text):
            assert project_id == "<PROJECT_ID>", path.name


def test_recording_config_keeps_collector_keys_out(
    tmp_path: Path, lunary_local: LocalLunary
) -> None:
    seed_llm_runs()
    path = tmp_path / "fresh.yaml"
    with VCR.use_cassette(
        str(path),
        record_mode="once",
        before_record_response=scrub_response(lunary_local.project_id),
    ):
        with RunsClient() as client:
            client.list(type="llm")
            client.get(IDS["refund"])
            list(client.export("jsonl", type="llm"))
    text = path.read_text()
    assert "<PROJECT_ID>" in text and IDS["refund"] in text
    for secret in (lunary_local.public_key, lunary_local.private_key, "Bearer"):
        assert secret not in text
