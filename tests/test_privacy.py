"""Privacy and control through the real handlers and the local collector (real HTTP):
ignore rules, ``mask=``, ``capture_content=False``, trace-consistent sampling, kill switch.

The ``mask`` contract (also in ``config.MaskFn``): it is called once per captured input and
once per captured output, on the caller's thread, with a **JSON-safe snapshot** of the value:
plain ``dict`` (str keys) / ``list`` / ``str`` / ``int`` / ``float`` / ``bool`` / ``None``,
already size-capped, never the framework's own objects. For an ``llm`` run the input is the
list of OpenAI-format messages (``[{"role": ..., "content": ...}]``) and the output the
assistant message; for chains, whatever the chain took and returned, rendered the same way.
Whatever it returns is sent (snapshotted again); if it raises, ``"__NOT_INGESTED__"`` is sent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda

import lunary_integrations
from lunary_integrations.config import Settings
from lunary_integrations.events import NOT_INGESTED
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.llama_index import instrument, uninstrument
from lunary_integrations.local import LocalLunary
from lunary_integrations.tracer import RunTracer

from .lc_helpers import children, plain, prompt_model_parser, roots, stored
from .llama_index_support import build_index, li_settings, one, stored_runs

__all__ = ["li_settings"]

EMAIL = re.compile(r"[\w.]+@[\w.]+")


def _secret_step(x: Any, config: RunnableConfig) -> Any:
    inner = RunnableLambda(lambda v: f"inner saw {v}", name="Inner")
    return inner.invoke(x, config=config)


def _noisy_step(x: Any, config: RunnableConfig) -> Any:
    return RunnableLambda(lambda v: v, name="NoisyChild").invoke(x, config=config)


def test_ignore_rules_through_langchain(lunary_local: LocalLunary) -> None:
    handler = LunaryCallbackHandler(
        ignore=[
            {"type": "chain", "name": "Secret*"},
            {"name": "Noisy", "ignore_children": True},
        ]
    )
    chain = (
        RunnableLambda(lambda x: x, name="Public")
        | RunnableLambda(_secret_step, name="SecretStep")
        | RunnableLambda(_noisy_step, name="Noisy")
    )
    assert chain.invoke("card 4242", config={"callbacks": [handler]}) == "inner saw card 4242"
    runs = stored(lunary_local)
    by_name = {r["name"]: r for r in runs}
    assert set(by_name) == {"RunnableSequence", "Public", "SecretStep", "Inner"}  # no Noisy*
    secret, inner = by_name["SecretStep"], by_name["Inner"]
    assert secret["input"] == secret["output"] == NOT_INGESTED
    assert inner["input"] == inner["output"] == NOT_INGESTED  # children of an ignored run
    assert inner["parentRunId"] == secret["id"]  # still in the tree, still complete
    assert all(r["status"] == "success" for r in runs)
    assert by_name["Public"]["input"] == "card 4242"
    assert "4242" not in json.dumps([secret, inner])


def test_ignore_rules_through_llama_index(lunary_local: LocalLunary, li_settings: None) -> None:
    index = build_index()
    instrument(
        ignore=[
            {"type": "retriever"},
            {"name": "CompactAndRefine*", "ignore_children": True},
        ]
    )
    try:
        index.as_query_engine(similarity_top_k=1).query("What is the capital of France?")
    finally:
        uninstrument()
    runs = stored_runs(lunary_local)
    retriever = one(runs, type="retriever")
    assert retriever["input"] == retriever["output"] == NOT_INGESTED
    assert [r for r in runs if r["type"] == "llm" or "CompactAndRefine" in r["name"]] == []
    root = one(runs, name="RetrieverQueryEngine.query")
    assert retriever["parentRunId"] == root["id"] and root["input"].startswith("What")


def test_mask_gets_json_safe_snapshots_and_its_result_is_what_is_stored(
    lunary_local: LocalLunary,
) -> None:
    seen: list[Any] = []

    def mask(value: Any) -> Any:
        seen.append(value)
        return json.loads(EMAIL.sub("<email>", json.dumps(value)))

    handler = LunaryCallbackHandler(mask=mask)
    out = prompt_model_parser().invoke({"q": "mail bob@example.com"}, {"callbacks": [handler]})
    assert out == "hello there friend"
    runs = stored(lunary_local)
    assert "bob@example.com" not in json.dumps(runs)
    llm = next(r for r in runs if r["type"] == "llm")
    assert llm["input"][1]["content"] == "mail <email>"  # OpenAI messages, masked
    (root,) = roots(runs)
    assert plain(root["input"]) == {"q": "mail <email>"}
    # the documented shape: plain JSON data, a fresh copy (mutating it cannot hurt the app)
    assert len(seen) == 2 * len(runs)  # one input and one output per run

    def json_safe(v: Any) -> bool:
        if isinstance(v, dict):
            return all(type(k) is str and json_safe(x) for k, x in v.items())
        if isinstance(v, list):
            return all(json_safe(x) for x in v)
        return v is None or type(v) in (str, int, float, bool)

    assert all(json_safe(v) for v in seen)
    llm_input = next(v for v in seen if isinstance(v, list) and v and "role" in v[0])
    assert [m["role"] for m in llm_input] == ["system", "user"]


def test_a_raising_mask_fails_closed(lunary_local: LocalLunary) -> None:
    def mask(value: Any) -> Any:
        raise RuntimeError("mask bug")

    handler = LunaryCallbackHandler(mask=mask)
    prompt_model_parser().invoke({"q": "ssn 123-45-6789"}, {"callbacks": [handler]})
    runs = stored(lunary_local)
    assert len(runs) == 4
    assert all(r["input"] == r["output"] == NOT_INGESTED for r in runs)


def test_capture_content_false_sends_metadata_only(lunary_local: LocalLunary) -> None:
    handler = LunaryCallbackHandler(capture_content=False)
    prompt_model_parser().invoke(
        {"q": "private question"},
        {"callbacks": [handler], "metadata": {"user_id": "u7", "tenant": "acme"}, "tags": ["t"]},
    )
    runs = stored(lunary_local)
    assert len(runs) == 4
    assert "private question" not in json.dumps(runs)
    assert "hello there friend" not in json.dumps(runs)
    for run in runs:
        assert run["input"] is None and run["output"] is None
        assert run["status"] == "success" and run["endedAt"] is not None
        assert run["tags"] == ["t"] and run["metadata"]["tenant"] == "acme"
    llm = next(r for r in runs if r["type"] == "llm")
    assert llm["name"] == "fake-gpt-1" and llm["tokens"]["prompt"] == 11  # structure kept


def test_sampling_is_trace_consistent(lunary_local: LocalLunary) -> None:
    handler = LunaryCallbackHandler(sample_rate=0.5)
    chain = prompt_model_parser()
    n = 200
    ids = [uuid.uuid4() for _ in range(n)]
    for i, rid in enumerate(ids):
        chain.invoke({"q": f"q{i}"}, {"callbacks": [handler], "run_id": rid})
    runs = stored(lunary_local)
    kept = roots(runs)
    kids = children(runs)
    # whole traces or nothing: every kept root has its 3 children, no child without its root
    assert all(len(kids[r["id"]]) == 3 for r in kept)
    assert len(runs) == 4 * len(kept)
    assert 65 <= len(kept) <= 135, len(kept)  # ~rate of traces kept (binomial, p=0.5)
    print(f"sampling: {len(kept)}/{n} traces kept at sample_rate=0.5")

    # decided from the root id alone: another tracer (another process) keeps the same traces
    class Sink:
        enabled = True

        def enqueue(self, event: dict[str, Any]) -> bool:
            return True

    sink: Any = Sink()
    other = RunTracer(runtime="t", settings=Settings(public_key="k", sample_rate=0.5), client=sink)
    again = {str(rid) for rid in ids if other.start(str(rid), None, "chain", "x")}
    assert again == {r["id"] for r in kept}


_KILL = textwrap.dedent(
    """
    import sys, threading
    from langchain_core.runnables import RunnableLambda
    from lunary_integrations.langchain import LunaryCallbackHandler
    from lunary_integrations.llama_index import instrument
    from lunary_integrations.ingest import get_client
    import lunary_integrations
    before = threading.active_count()
    chain = RunnableLambda(lambda x: x, name="A") | RunnableLambda(lambda x: x, name="B")
    for i in range(20):
        chain.invoke(i, config={"callbacks": [LunaryCallbackHandler()]})
    instrument()
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM
    Settings.llm, Settings.embed_model = MockLLM(max_tokens=4), MockEmbedding(embed_dim=8)
    VectorStoreIndex.from_documents([Document(text="x")]).as_query_engine().query("q")
    assert lunary_integrations.flush(1) is True
    names = [t.name for t in threading.enumerate()]
    assert not any(n.startswith("lunary") for n in names), names
    print("enabled", get_client().enabled, "threads", before, threading.active_count())
    """
)


def test_kill_switch_sends_nothing_and_starts_no_thread(lunary_local: LocalLunary) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNARY_")}
    env.update(
        LUNARY_ENABLED="false",
        LUNARY_PUBLIC_KEY=lunary_local.public_key,
        LUNARY_API_URL=lunary_local.url,
    )
    done = subprocess.run(
        [sys.executable, "-c", _KILL], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "enabled False" in done.stdout
    assert lunary_local.stats == {"requests": 0, "events": 0}
    assert lunary_local.all_runs() == []


def test_kill_switch_in_process(lunary_local: LocalLunary, monkeypatch: Any) -> None:
    monkeypatch.setenv("LUNARY_ENABLED", "false")
    workers_before = {t for t in threading.enumerate() if t.name == "lunary-ingest"}
    handler = LunaryCallbackHandler()
    prompt_model_parser().invoke({"q": "x"}, {"callbacks": [handler]})
    assert handler.tracer.enabled is False
    assert lunary_integrations.flush(1)
    workers = {t for t in threading.enumerate() if t.name == "lunary-ingest"}
    assert workers <= workers_before
    assert lunary_local.stats["events"] == 0
