"""The Run → text/metadata mapper, on real replies and on edge cases."""

from __future__ import annotations

import json
from typing import Any

import yaml

from lunary_integrations.events import Run, RunsPage
from lunary_integrations.runs import run_metadata, run_to_text

from .runs_support import IDS, REAL


def _reply(name: str) -> Any:
    (interaction,) = yaml.safe_load((REAL / f"{name}.yaml").read_text())["interactions"]
    return json.loads(interaction["response"]["body"]["string"])


def test_llm_error_run_with_tool_messages() -> None:
    run = Run.model_validate(_reply("51-get-llm-error-run"))
    lines = run_to_text(run).splitlines()
    assert lines[0].startswith("system: ")
    assert any(line.startswith("assistant: calls multiply(") for line in lines)
    assert any(line.startswith("tool (") for line in lines)
    assert lines[-1].startswith("error: Error code: 429")
    meta = run_metadata(run)
    assert meta["status"] == "error" and "cost" not in meta and "total_tokens" not in meta


def test_chain_reads_as_input_output_with_its_error() -> None:
    run = Run.model_validate(_reply("50-get-root-chain"))
    assert run_to_text(run).splitlines() == [
        'input: {"question": "What is 3 times 4? Also, what is the capital of France?"}',
        "error: Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o-mini', "
        "'type': 'requests', 'code': 'rate_limit_exceeded'}}",
    ]
    meta = run_metadata(run)
    assert meta["type"] == "chain" and "model" not in meta and "trace_id" not in meta
    assert "params" not in meta  # an empty {} carries nothing


def test_retriever_and_agent_runs() -> None:
    retriever = Run.model_validate(_reply("52-get-retriever-run"))
    text = run_to_text(retriever)
    assert text.startswith("input: paris\noutput: [{")
    assert '"startIndex"' in text and "enrichments" not in text
    agent = Run.model_validate(_reply("53-get-agent-root"))
    assert run_to_text(agent).splitlines()[0] == "input: Find the population of Paris"


def test_thread_from_a_list_uses_first_and_last_message() -> None:
    (thread,) = RunsPage.model_validate(_reply("23-list-type-thread")).data
    assert run_to_text(thread) == (
        "user: Hi! Can you recommend a museum in Paris?\n"
        "assistant: Try the Musée d'Orsay: impressionist masterpieces in a former railway station."
    )
    assert run_metadata(thread)["user"] == "user-123"


def test_metadata_is_flat_for_every_real_run() -> None:
    names = ["20-list-default", "26-list-tags-demo", "27-list-search-paris", "91-sdk-list-tags-sdk"]
    for name in names:
        for run in RunsPage.model_validate(_reply(name)).data:
            meta = run_metadata(run)
            assert meta["id"] == run.id and run_to_text(run)
            for value in meta.values():
                assert isinstance(value, (str, int, float)) or (
                    isinstance(value, list) and all(isinstance(v, str) for v in value)
                )


def test_message_edge_cases() -> None:
    run = Run.model_validate(
        {
            "id": IDS["a_llm1"],
            "type": "llm",
            "name": "gpt-4o",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": "data:..."}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "functionCall": {"name": "f", "arguments": "{}"},
                },
                {"role": "function", "name": "f", "content": {"ok": True}},
            ],
            "output": [{"role": "assistant", "content": "A cat.", "toolCalls": []}],
            "params": {"temperature": 0},
            "tokens": {"prompt": 3, "completion": None, "total": 3},
            "createdAt": "2026-11-23T16:38:49.432Z",
        }
    )
    assert run_to_text(run).splitlines() == [
        "user: What is in this picture? [image_url]",
        "assistant: calls f({})",
        'function (f): {"ok": true}',
        "assistant: A cat.",
    ]
    meta = run_metadata(run)
    assert meta["params"] == '{"temperature": 0}' and meta["model"] == "gpt-4o"
    assert (meta["prompt_tokens"], meta["total_tokens"]) == (3, 3)
    assert meta["created_at"] == "2026-11-23T16:38:49.432Z" and "duration" not in meta
