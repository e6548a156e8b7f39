"""Every Python code block in README.md runs, against a local collector, and does what it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import lunary_integrations
from lunary_integrations.local import LocalLunary

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _seed(lunary: LocalLunary) -> None:
    """A past conversation for the reading blocks to find."""
    run_id = str(uuid.uuid4())
    t = time.time() - 5
    question = "What is your refund policy for orders older than thirty days? " * 3
    lunary_integrations.track_event(
        type="llm",
        event="start",
        run_id=run_id,
        name="gpt-4o-mini",
        tags=["prod"],
        input=[{"role": "user", "content": question}],
        timestamp=t,
        user_id="user-9",
    )
    lunary_integrations.track_event(
        type="llm",
        event="end",
        run_id=run_id,
        timestamp=t + 0.5,
        output={"role": "assistant", "content": "Refunds are accepted within 60 days."},
        tokens_usage={"prompt": 30, "completion": 8},
    )
    assert lunary_integrations.flush(10)


@pytest.fixture(scope="module")
def collector() -> LocalLunary:
    with LocalLunary() as lunary:
        lunary_integrations.configure(public_key=lunary.public_key, api_url=lunary.url)
        _seed(lunary)
        lunary_integrations.shutdown()
        yield lunary


def test_the_readme_has_blocks_and_states_the_two_commands_first() -> None:
    text = README.read_text()
    assert len(BLOCKS) >= 8
    first_block = text.index("```")
    assert text.index("make demo", first_block) < text.index("## ")
    assert text.index("make test", first_block) < text.index("## ")


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(collector: LocalLunary, index: int) -> None:
    code = BLOCKS[index]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNARY_")}
    env.update(
        LUNARY_PUBLIC_KEY=collector.public_key,
        LUNARY_PRIVATE_KEY=collector.private_key,
        LUNARY_API_URL=collector.url,
    )
    before = {r["id"] for r in collector.all_runs()}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"block {index} failed:\n{code}\n{done.stderr}"
    new = [r for r in collector.all_runs() if r["id"] not in before]
    if "chain.invoke" in code:  # traced LangChain runs, with the user on the root
        roots = [r for r in new if r["parentRunId"] is None]
        assert len(roots) == 2 and all(r["user"]["externalId"] == "user-123" for r in roots)
        assert any(r["type"] == "llm" for r in new)
    if "instrument(" in code:
        assert {"chain", "retriever", "llm"} <= {r["type"] for r in new}
    if 'track_event(type="tool"' in code:
        assert [(r["type"], r["status"]) for r in new] == [("tool", "success")]
    if "configure(mask" in code:
        assert new == []
