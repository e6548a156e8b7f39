"""Tracing without ``callbacks=``: ``LUNARY_TRACING=true`` and ``with lunary_tracing():``."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from lunary_integrations.langchain import LunaryCallbackHandler, lunary_tracing
from lunary_integrations.local import LocalLunary

from .lc_fakes import UsageFakeChatModel
from .lc_helpers import assert_sequence_tree, no_duplicates_sent, prompt_model_parser, roots, stored


def test_env_var_traces_runs_without_callbacks(
    lunary_local: LocalLunary, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = prompt_model_parser()
    chain.invoke({"q": "before"})  # not traced yet
    monkeypatch.setenv("LUNARY_TRACING", "true")
    chain.invoke({"q": "a"})
    UsageFakeChatModel().invoke([HumanMessage("direct")])
    runs = stored(lunary_local)
    assert len(runs) == 5
    chain_root = next(r for r in roots(runs) if r["type"] == "chain")
    assert_sequence_tree(runs, chain_root)
    direct = next(r for r in roots(runs) if r["type"] == "llm")
    assert direct["input"][0]["content"] == "direct"
    no_duplicates_sent(10)


def test_env_var_with_an_explicit_handler_sends_each_run_once(
    lunary_local: LocalLunary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUNARY_TRACING", "true")
    handler = LunaryCallbackHandler(tags=["explicit"])
    prompt_model_parser().invoke({"q": "a"}, config={"callbacks": [handler]})
    # also attached to the model while the hook adds its own handler to the chain
    model = UsageFakeChatModel().with_config(callbacks=[LunaryCallbackHandler()])
    model.invoke([HumanMessage("x")])
    runs = stored(lunary_local)
    assert len(runs) == 5
    (chain_root,) = [r for r in roots(runs) if r["type"] == "chain"]
    assert chain_root["tags"] == ["explicit"]  # the explicit handler's options apply
    no_duplicates_sent(10)


def test_lunary_tracing_block(lunary_local: LocalLunary) -> None:
    chain = prompt_model_parser()
    chain.invoke({"q": "before"})
    with lunary_tracing(tags=["block"], user_id="u5", user_props={"tier": 1}) as handler:
        assert isinstance(handler, LunaryCallbackHandler)
        chain.invoke({"q": "inside"})
        # explicitly passed as well: neither doubled nor lost
        chain.invoke({"q": "explicit"}, config={"callbacks": [LunaryCallbackHandler()]})
    chain.invoke({"q": "after"})
    runs = stored(lunary_local)
    assert len(runs) == 8
    questions = set()
    for root in roots(runs):
        llm = assert_sequence_tree(runs, root)
        questions.add(llm["input"][-1]["content"])
    assert questions == {"inside", "explicit"}
    inside = next(r for r in roots(runs) if r["input"]["q"] == "inside")
    assert inside["tags"] == ["block"]
    assert inside["user"]["externalId"] == "u5" and inside["user"]["props"] == {"tier": 1}
    no_duplicates_sent(16)


async def test_lunary_tracing_reaches_async_tasks(lunary_local: LocalLunary) -> None:
    chain = prompt_model_parser()
    with lunary_tracing():
        out = await chain.ainvoke({"q": "async"})
    assert out == "hello there friend"
    runs = stored(lunary_local)
    (root,) = roots(runs)
    assert_sequence_tree(runs, root)


def test_nested_blocks_innermost_wins(lunary_local: LocalLunary) -> None:
    chain = prompt_model_parser()
    with lunary_tracing(tags=["outer"]):
        with lunary_tracing(tags=["inner"]):
            chain.invoke({"q": "x"})
        chain.invoke({"q": "y"})
    runs = stored(lunary_local)
    tags = {r["input"]["q"]: r["tags"] for r in roots(runs)}
    assert tags == {"x": ["inner"], "y": ["outer"]}
