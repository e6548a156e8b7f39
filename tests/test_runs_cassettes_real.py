"""The clients against the real Lunary server's replies (vcrpy cassettes, replay only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from vcr.cassette import Cassette

from lunary_integrations.events import Run
from lunary_integrations.runs import (
    AsyncRunsClient,
    AuthenticationError,
    RunNotFoundError,
    RunsClient,
    ServerError,
    complete_runs,
    run_metadata,
    run_to_text,
)

from .runs_support import FAKE_PRIVATE_KEY, IDS, REAL, REAL_URL, VCR


@contextmanager
def replay(tmp_path: Path, *names: str, **options: Any) -> Iterator[Cassette]:
    """Replay one or more real cassettes (merged into one file) and check all were played."""
    interactions = []
    for name in names:
        interactions += yaml.safe_load((REAL / f"{name}.yaml").read_text())["interactions"]
    path = tmp_path / ("+".join(names) + ".yaml")
    path.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}))
    with VCR.use_cassette(str(path), **options) as cassette:
        yield cassette
    assert cassette.all_played


@pytest.fixture
def client() -> Iterator[RunsClient]:
    with RunsClient(FAKE_PRIVATE_KEY, REAL_URL, max_retries=0) as c:
        yield c


def test_list_without_filter_is_llm_only_and_not_truncated(
    tmp_path: Path, client: RunsClient
) -> None:
    with replay(tmp_path, "20-list-default"):
        page = client.list()
    assert (page.page, page.limit) == (0, 50)
    assert len(page.data) == 9 and {r.type for r in page.data} == {"llm"}
    first = next(r for r in page.data if r.id == IDS["a_llm1"])
    assert isinstance(first.input, list) and first.input[0]["role"] == "system"


def test_type_llm_list_is_truncated_and_get_completes_it(
    tmp_path: Path, client: RunsClient
) -> None:
    filters: dict[str, Any] = {"type": "llm", "parent_run_id": IDS["a_root_chain"]}
    with replay(tmp_path, "32-list-llm-children-of-root", "36-get-llm-run", "51-get-llm-error-run"):
        listed = client.list(**filters).data
        full = complete_runs(client, listed, filters)  # type: ignore[arg-type]
    assert [r.id for r in listed] == [r.id for r in full] == [IDS["a_llm2"], IDS["a_llm1"]]
    assert all(isinstance(r.input, dict) for r in listed)  # only the last message ...
    assert len(listed[0].input["content"]) == 100  # ... cut to 100 characters
    assert all(isinstance(r.input, list) and len(r.input) >= 2 for r in full)
    assert len(run_to_text(full[0])) > len(run_to_text(listed[0]))
    assert full[1].trace_id == IDS["a_root_chain"]  # only a single-run GET has it


@pytest.mark.parametrize(
    ("cassette", "filters", "check"),
    [
        ("21-list-type-llm", {"type": "llm"}, lambda rs: len(rs) == 9),
        (
            "22-list-type-trace",
            {"type": "trace"},
            lambda rs: {r.type for r in rs} <= {"chain", "agent"},
        ),
        ("23-list-type-thread", {"type": "thread"}, lambda rs: rs[0].messages_count == 2),
        (
            "24-list-chat-messages-of-thread",
            {"type": "chat", "parent_run_id": IDS["c_thread"]},
            lambda rs: [r.id for r in rs] == [IDS["c_assistant_msg"]],
        ),
        ("25-list-type-tool", {"type": "tool"}, lambda rs: [r.id for r in rs] == [IDS["a_tool"]]),
        ("26-list-tags-demo", {"tags": "demo"}, lambda rs: all("demo" in r.tags for r in rs)),
        (
            "27-list-search-paris",
            {"search": "paris"},
            lambda rs: IDS["a_retriever"] in {r.id for r in rs},
        ),
        (
            "28-list-models-gpt-4o-mini",
            {"models": ["gpt-4o-mini"]},
            lambda rs: {r.name for r in rs} == {"gpt-4o-mini"},
        ),
        (
            "29-list-status-error",
            {"status": "error"},
            lambda rs: {r.status for r in rs} == {"error"},
        ),
        (
            "30-list-date-after",
            {"start_time": datetime(2026, 11, 23, 16, 38, 42, tzinfo=timezone.utc)},
            lambda rs: len(rs) > 9,  # any filter lifts the llm-only default
        ),
        (
            "31-list-metadata-env-test",
            {"metadata": {"env": "test"}},
            lambda rs: all(r.metadata["env"] == "test" for r in rs),
        ),
        ("63-list-tags-gzip", {"tags": ["gzip"]}, lambda rs: len(rs) == 1),
        (
            "64-list-parent-user-msg",
            {"parent_run_id": IDS["c_user_msg"], "type": "llm"},
            lambda rs: rs == [],
        ),
        (
            "65-list-parent-assistant-msg",
            {"parent_run_id": IDS["c_assistant_msg"], "type": "llm"},
            lambda rs: [r.id for r in rs] == [IDS["c_thread_llm"]],
        ),
        ("91-sdk-list-tags-sdk", {"tags": "sdk"}, lambda rs: len(rs) == 4),
    ],
)
def test_filters_replay_against_real_replies(
    tmp_path: Path,
    client: RunsClient,
    cassette: str,
    filters: dict[str, Any],
    check: Callable[[list[Run]], bool],
) -> None:
    with replay(tmp_path, cassette):
        runs = client.list(**filters).data
    assert check(runs)


def test_pages_count_from_zero_without_overlap(tmp_path: Path, client: RunsClient) -> None:
    with replay(tmp_path, "33-list-sorted-limit2-page0", "34-list-sorted-limit2-page1"):
        first = client.list(sort_by="created_at", order="desc", limit=2, page=0)
        second = client.list(order="desc", limit=2, page=1)
    assert (first.page, second.page, first.limit) == (0, 1, 2)
    ids = [r.id for r in first.data + second.data]
    assert len(ids) == len(set(ids)) == 4
    times = [r.created_at for r in first.data + second.data]
    assert times == sorted(times, reverse=True)  # type: ignore[type-var]


def test_count_honours_limit(tmp_path: Path, client: RunsClient) -> None:
    with replay(tmp_path, "35-count-type-llm", "67-count-no-params", "68-count-type-llm-limit2"):
        assert client.count(type="llm", limit=None) == 9
        assert client.count(limit=None) == 9
        assert client.count(type="llm", limit=2) == 2  # the server caps the count at limit


def test_get_returns_the_full_run(tmp_path: Path, client: RunsClient) -> None:
    with replay(tmp_path, "36-get-llm-run"):
        run = client.get(IDS["a_llm1"].upper())  # canonicalised before sending
    assert run.id == IDS["a_llm1"] and run.duration_seconds == pytest.approx(0.84)
    text = run_to_text(run)
    assert text.splitlines() == [
        "system: You are a helpful assistant. Use the tools when useful.",
        "user: What is 3 times 4? Also, what is the capital of France?",
        'assistant: calls multiply({"a": 3, "b": 4})',
    ]
    meta = run_metadata(run)
    assert meta["model"] == "gpt-4o-mini" and meta["user"] == "user-123"
    assert (meta["prompt_tokens"], meta["completion_tokens"], meta["total_tokens"]) == (42, 7, 49)
    assert meta["feedback"] == "up" and meta["trace_id"] == IDS["a_root_chain"]
    assert meta["created_at"] == "2026-11-23T16:38:49.432Z" and meta["tags"] == ["demo"]
    assert '"maxTokens": 64' in meta["params"]


def test_related_builds_the_trace_tree(tmp_path: Path, client: RunsClient) -> None:
    with replay(tmp_path, "37-get-related-of-root", "55-get-related-of-thread"):
        tree = client.related(IDS["a_root_chain"])
        thread = client.related(IDS["c_thread"])
    assert tree.root.run.name == "RunnableSequence" and len(tree.rows) == 6
    walked = [node.run.id for node in tree]
    assert sorted(walked) == sorted(r.id for r in tree.rows)
    for node in tree:
        for child in node.children:
            assert child.run.parent_run_id == node.run.id
    # thread → merged chat run → llm (whose parent id followed the merge)
    assert [n.run.type for n in thread] == ["thread", "chat", "llm"]
    assert thread.find(IDS["c_thread_llm"]) is not None


def test_export_jsonl_csv_ojsonl(tmp_path: Path, client: RunsClient) -> None:
    with replay(
        tmp_path,
        "41-export-llm-jsonl",
        "42-export-llm-csv",
        "66-export-llm-ojsonl",
        "72-export-llm-jsonl-tags-demo",
        "73-export-llm-csv-tags-demo",
        "74-export-llm-ojsonl-tags-demo",
    ):
        runs = list(client.export("jsonl", type="llm"))
        rows = list(client.export("csv"))
        lines = list(client.export("ojsonl"))
        demo_runs = list(client.export("jsonl", type="llm", tags="demo"))
        demo_rows = list(client.export("csv", tags=["demo"]))
        demo_lines = list(client.export("ojsonl", tags="demo"))
    assert len(runs) == len(rows) == 9 and all(isinstance(r, Run) for r in runs)
    assert [r.id for r in runs] == [row["id"] for row in rows]
    assert len(lines) == 8 and all(set(line) == {"messages"} for line in lines)
    assert (
        {r.id for r in demo_runs}
        == {row["id"] for row in demo_rows}
        == {
            IDS["a_llm1"],
            IDS["a_llm2"],
        }
    )
    (tool_line,) = demo_lines
    assert tool_line["messages"][-1]["tool_calls"][0]["function"]["name"] == "multiply"


def test_export_trace_and_thread(tmp_path: Path, client: RunsClient) -> None:
    with replay(tmp_path, "43-export-trace-jsonl", "44-export-thread-jsonl"):
        traces = list(client.export(type="trace"))
        (thread,) = client.export(type="thread")
    assert len(traces) == 3 and all((r.model_extra or {})["children"] == [] for r in traces)
    text = run_to_text(thread)
    assert text.startswith("user: Hi! Can you recommend a museum in Paris?")
    assert "assistant: Try the Musée d'Orsay" in text


def test_export_refuses_unknown_types_and_formats(client: RunsClient) -> None:
    with pytest.raises(ValueError):
        next(client.export("xml"))  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        next(client.export(type="tool"))


def test_public_key_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with replay(tmp_path, "40-list-with-public-key"), RunsClient("pk", REAL_URL) as client:
        with pytest.raises(AuthenticationError) as info:
            client.list()
    assert info.value.status == 401
    assert "reading runs needs the project's private key" in str(info.value)
    assert info.value.server_message == "This route requires a private API key"


def test_unknown_run_id_is_run_not_found(tmp_path: Path, client: RunsClient) -> None:
    with replay(tmp_path, "38-get-unknown-uuid", "69-get-user-msg-id-after-merge"):
        with pytest.raises(RunNotFoundError) as info:
            client.get(IDS["unknown"])
        with pytest.raises(RunNotFoundError):
            client.get(IDS["c_user_msg"])
    assert info.value.run_id == IDS["unknown"] and info.value.status == 404
    assert "Run not found" in str(info.value)


def test_malformed_run_id_is_refused_before_sending(tmp_path: Path, client: RunsClient) -> None:
    path = tmp_path / "39.yaml"
    path.write_text((REAL / "39-get-not-a-uuid.yaml").read_text())
    with VCR.use_cassette(str(path)) as cassette:
        for call in (client.get, client.related):
            with pytest.raises(ValueError, match="run id must be a UUID"):
                call("not-a-uuid")
        assert cassette.play_count == 0
        # Had it been sent, the server's answer is a 500 carrying the Postgres message.
        with pytest.raises(ServerError) as info:
            client._send("/v1/runs/not-a-uuid")
    assert info.value.status == 500
    assert 'invalid input syntax for type uuid: "not-a-uuid"' in str(info.value)


async def test_async_client_replays_the_same_replies(tmp_path: Path) -> None:
    with replay(
        tmp_path,
        "32-list-llm-children-of-root",
        "36-get-llm-run",
        "37-get-related-of-root",
        "35-count-type-llm",
        "41-export-llm-jsonl",
        "38-get-unknown-uuid",
    ):
        async with AsyncRunsClient(FAKE_PRIVATE_KEY, REAL_URL, max_retries=0) as client:
            page = await client.list(type="llm", parent_run_id=IDS["a_root_chain"])
            run = await client.get(IDS["a_llm1"])
            tree = await client.related(IDS["a_root_chain"])
            count = await client.count(type="llm", limit=None)
            exported = [r async for r in client.export("jsonl")]
            with pytest.raises(RunNotFoundError):
                await client.get(IDS["unknown"])
    assert len(page.data) == 2 and run.total_tokens == 49 and len(tree) == 6
    assert count == 9 and len(exported) == 9
