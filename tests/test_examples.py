"""Every script in ``examples/`` runs, offline, against the embedded local collector.

Each example runs in its own interpreter with no ``LUNARY_*`` or ``OPENAI_API_KEY`` variable
(so: the local collector and the fake models), from the repository root. The scripts run a
few at a time in the background as soon as the module's first test starts; each test waits
for its own. A new example without an entry in ``EXPECTED`` fails ``test_every_example_is_run``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 60
LLM_TOKENS = r"llm +gpt-4o-mini +tokens \d+/\d+ +\$0\.\d+"

#: example file -> regexes its stdout must match (multiline).
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        r"chain +rag_chain",
        LLM_TOKENS,
        r"agent +math_agent",
        r"tool +add",
        r"chain +RetrieverQueryEngine\.query",
        r"LangChain retriever, query 'capital'",
        r"LlamaIndex reader: \d+ tool runs",
        r"^Done in",
    ],
    "langchain_handler.py": [
        r"chain +travel_guide .*tags=examples,handler +user=user-42",
        LLM_TOKENS,
        r"chain +StrOutputParser",
    ],
    "langchain_tracing_block.py": [
        r"chain +RunnableSequence .*tags=examples,block +user=user-7",
        LLM_TOKENS,
        r"^Outside the block: not traced",
    ],
    "langchain_env_tracing.py": [r"Traced with LUNARY_TRACING=true", LLM_TOKENS],
    "langgraph_agent.py": [
        r"^Agent: The answer is 42\.",
        r"agent +math_agent .*user=user-3",
        LLM_TOKENS + r" +calls multiply\(\{\"a\": 6, \"b\": 7\}\)",
        r"tool +multiply +\{\"a\": 6, \"b\": 7\} -> \"42\"",
    ],
    "llama_index_instrument.py": [
        r"chain +RetrieverQueryEngine\.query .*user=user-9",
        r"retriever +VectorIndexRetriever\.retrieve",
        r"^ {8}" + LLM_TOKENS,  # inside the query's synthesize step
        r"^ {4}" + LLM_TOKENS + r".*tags=examples,llama-index",  # the streamed chat
        r"^Streamed chat: Happy to help!",
    ],
    "llama_index_legacy_handler.py": [
        r"chain +query .*tags=examples,legacy +user=user-5",
        r"retriever +retrieve",
        LLM_TOKENS,
    ],
    "rag_over_past_runs.py": [
        r"^Retrieved gpt-4o-mini run \(\d+ tokens\):",
        r"^RAG answer: .*[Rr]efund",
    ],
    "index_past_runs.py": [
        r"^Loaded 3 llm runs as Documents:",
        r"gpt-4o-mini \(\d+ tokens\): .*user: Where is the Louvre\?",
        r"^Query over the index: .+ \(from 3 runs\)",
    ],
    "test_with_local_collector.py": [r"\b1 passed\b"],
    "masking_and_sampling.py": [
        r"^mask: llm input sent as .*Mail <email>",
        r"^sample_rate=0\.5: kept ([1-9]|1\d)/20 traces, each whole: \{4\} runs",
        r"^ignore: SecretLookup input='__NOT_INGESTED__' output='__NOT_INGESTED__'",
        r"^capture_content=False: llm input=None, tokens \d+",
    ],
    "track_event_manual.py": [
        r"agent +weather_agent .*user=user-1",
        r"llm +gpt-4o-mini +tokens 14/6 +\$0\.\d+",
        r"tool +weather",
    ],
}


def _command(name: str) -> list[str]:
    if name.startswith("test_"):  # a pytest file users can copy: run it with pytest
        return [sys.executable, "-m", "pytest", f"examples/{name}", "-q", "-p", "no:cacheprovider"]
    return [sys.executable, f"examples/{name}"]


def _run(name: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("LUNARY_") and k != "OPENAI_API_KEY"
    }
    return subprocess.run(
        _command(name), cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest,
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Start every selected example now, a few at a time; tests wait for their own."""
    selected = [
        str(item.callspec.params["example"])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_example"
        and item.module is sys.modules[__name__]
    ]
    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        yield {name: pool.submit(_run, name) for name in selected}


def test_every_example_is_run() -> None:
    files = {p.name for p in EXAMPLES.glob("*.py") if p.name != "_fakes.py"}
    assert files == set(EXPECTED), "add the new example (and what it prints) to EXPECTED"


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example(example: str, runs: dict[str, Future[subprocess.CompletedProcess[str]]]) -> None:
    result = runs[example].result()
    shown = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr[-4000:]}"
    assert result.returncode == 0, shown
    for pattern in EXPECTED[example]:
        assert re.search(pattern, result.stdout, re.M), f"{pattern!r} not printed\n{shown}"
    if not example.startswith("test_"):
        assert "embedded local collector" in result.stdout, shown
