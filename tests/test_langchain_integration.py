"""LangChain runs traced through real HTTP into the local collector, asserted as stored."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.local import LocalLunary

from .lc_fakes import KeywordRetriever, UsageFakeChatModel
from .lc_helpers import (
    assert_sequence_tree,
    children,
    no_duplicates_sent,
    one,
    plain,
    prompt_model_parser,
    roots,
    stored,
)


def test_prompt_model_parser_invoke(lunary_local: LocalLunary) -> None:
    handler = LunaryCallbackHandler(tags=["from-handler"])
    out = prompt_model_parser().invoke(
        {"q": "hi?"},
        config={
            "callbacks": [handler],
            "tags": ["prod"],
            "metadata": {"user_id": "u1", "user_props": {"plan": "pro"}, "session_id": "s1"},
        },
    )
    assert out == "hello there friend"
    runs = stored(lunary_local)
    assert len(runs) == 4
    (root,) = roots(runs)
    llm = assert_sequence_tree(runs, root)

    assert llm["parentRunId"] == root["id"]
    assert llm["params"] == {"temperature": 0.2, "maxTokens": 64}  # no api key, no _type
    assert llm["input"] == [
        {"role": "system", "content": "You are terse.", "enrichments": []},
        {"role": "user", "content": "hi?", "enrichments": []},
    ]
    assert llm["output"] == {
        "role": "assistant",
        "content": "hello there friend",
        "enrichments": [],
    }
    assert llm["tokens"] == {"prompt": 11, "completion": 3, "cachedPrompt": 4, "total": 14}
    assert root["user"]["externalId"] == "u1" and root["user"]["props"] == {"plan": "pro"}
    assert llm["user"]["externalId"] == "u1"  # children take the root's user
    for run in runs:
        assert run["tags"] == ["prod", "from-handler"]  # no seq:step:N
    assert root["metadata"] == {"sessionId": "s1"}
    assert root["input"] == {"q": "hi?", "enrichments": []}
    prompt = one(runs, name="ChatPromptTemplate")
    assert [m["role"] for m in prompt["output"]] == ["system", "user"]
    no_duplicates_sent(8)


def test_stream(lunary_local: LocalLunary) -> None:
    chunks = list(
        prompt_model_parser().stream({"q": "s"}, config={"callbacks": [LunaryCallbackHandler()]})
    )
    assert "".join(chunks) == "hello there friend"
    runs = stored(lunary_local)
    (root,) = roots(runs)
    llm = assert_sequence_tree(runs, root)  # usage present although streamed
    assert llm["output"]["content"] == "hello there friend"


def test_stream_end_carries_real_input_and_time_to_first_token(lunary_local: LocalLunary) -> None:
    """The real server stores an end's ``input`` and merges an end's ``metadata``."""
    list(prompt_model_parser().stream({"q": "s"}, config={"callbacks": [LunaryCallbackHandler()]}))
    runs = stored(lunary_local)
    (root,) = roots(runs)
    assert plain(root["input"]) == {"q": "s"}  # not the {"input": ""} placeholder
    llm = one(runs, type="llm")
    assert isinstance(llm["metadata"]["timeToFirstToken"], int)


async def test_astream(lunary_local: LocalLunary) -> None:
    chain = prompt_model_parser()
    chunks = [
        c async for c in chain.astream({"q": "s"}, config={"callbacks": [LunaryCallbackHandler()]})
    ]
    assert "".join(chunks) == "hello there friend"
    runs = stored(lunary_local)
    (root,) = roots(runs)
    assert_sequence_tree(runs, root)
    assert plain(root["input"]) == {"q": "s"}
    assert isinstance(one(runs, type="llm")["metadata"]["timeToFirstToken"], int)


def test_batch(lunary_local: LocalLunary) -> None:
    outs = prompt_model_parser().batch(
        [{"q": str(i)} for i in range(3)], config={"callbacks": [LunaryCallbackHandler()]}
    )
    assert outs == ["hello there friend"] * 3
    runs = stored(lunary_local)
    assert len(runs) == 12
    tops = roots(runs)
    assert len(tops) == 3
    questions = set()
    for root in tops:
        llm = assert_sequence_tree(runs, root)
        questions.add(llm["input"][-1]["content"])
    assert questions == {"0", "1", "2"}


async def test_fifty_concurrent_tasks(lunary_local: LocalLunary) -> None:
    chain = prompt_model_parser()
    handler = LunaryCallbackHandler()

    async def run(i: int) -> str:
        config = {"callbacks": [handler], "metadata": {"i": i}}
        if i % 2:  # half of them stream: their usage must survive too
            return "".join([c async for c in chain.astream({"q": f"q{i}"}, config=config)])
        return await chain.ainvoke({"q": f"q{i}"}, config=config)

    outs = await asyncio.gather(*(run(i) for i in range(50)))
    assert outs == ["hello there friend"] * 50
    runs = stored(lunary_local)
    assert len(runs) == 200
    tops = roots(runs)
    assert len(tops) == 50
    seen = set()
    for root in tops:
        llm = assert_sequence_tree(runs, root)
        # the tree is not mixed up with another task's: the question matches the root's task
        i = root["metadata"]["i"]
        assert llm["input"][-1]["content"] == f"q{i}" and llm["metadata"]["i"] == i
        assert plain(root["input"]) == {"q": f"q{i}"}  # streamed ones: sent with the end
        seen.add(i)
    assert seen == set(range(50))
    no_duplicates_sent(400)


def test_retriever_in_a_chain(lunary_local: LocalLunary) -> None:
    retriever = KeywordRetriever(
        docs=[
            Document(page_content="Paris is the capital of France.", metadata={"src": "wiki"}),
            Document(page_content="Berlin is in Germany."),
        ]
    )
    prompt = ChatPromptTemplate.from_messages([("human", "{context}\n\n{q}")])
    chain = (
        {"context": retriever, "q": RunnablePassthrough()}
        | prompt
        | UsageFakeChatModel()
        | StrOutputParser()
    )
    chain.invoke("paris", config={"callbacks": [LunaryCallbackHandler()]})
    runs = stored(lunary_local)
    ret = one(runs, type="retriever")
    assert ret["name"] == "KeywordRetriever"
    assert ret["input"] == "paris"
    assert plain(ret["output"]) == [
        {"pageContent": "Paris is the capital of France.", "metadata": {"src": "wiki"}}
    ]
    parallel = next(r for r in runs if r["id"] == ret["parentRunId"])
    assert parallel["name"].startswith("RunnableParallel")
    (root,) = roots(runs)
    assert parallel["parentRunId"] == root["id"]
    assert all(r["status"] == "success" for r in runs)


def test_error_inside_a_chain(lunary_local: LocalLunary) -> None:
    def fail(x: int) -> int:
        raise ValueError("bad input")

    chain = RunnableLambda(lambda x: x + 1, name="add_one") | RunnableLambda(fail)
    with pytest.raises(ValueError, match="bad input"):
        chain.invoke(1, config={"callbacks": [LunaryCallbackHandler()]})
    runs = stored(lunary_local)
    assert one(runs, name="add_one")["status"] == "success"
    failed = one(runs, name="fail")
    (root,) = roots(runs)
    for run in (failed, root):
        assert run["status"] == "error"
        assert run["error"]["message"] == "bad input"
        assert "ValueError: bad input" in run["error"]["stack"]
        assert "in fail" in run["error"]["stack"]  # the exception's own traceback


def test_handler_on_the_model_only(lunary_local: LocalLunary) -> None:
    model = UsageFakeChatModel().with_config(callbacks=[LunaryCallbackHandler()])
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | model | StrOutputParser()
    chain.invoke({"q": "hi"}, config={"metadata": {"user_id": "u2"}})
    runs = stored(lunary_local)
    (llm,) = runs
    assert llm["type"] == "llm" and llm["name"] == "fake-gpt-1"
    assert llm["parentRunId"] is None  # its parent was never seen: no dangling link
    assert llm["user"]["externalId"] == "u2"  # a root for us, so it carries the user
    no_duplicates_sent(2)


def test_unseen_children_of_a_model_level_handler_stay_linked(lunary_local: LocalLunary) -> None:
    """A handler attached to an inner chain: its root is a root, its children link to it."""
    inner = (
        ChatPromptTemplate.from_messages([("human", "{q}")]) | UsageFakeChatModel()
    ).with_config(callbacks=[LunaryCallbackHandler()], run_name="inner")
    chain = RunnableLambda(lambda x: {"q": x}) | inner | StrOutputParser()
    chain.invoke("hi")
    runs = stored(lunary_local)
    (root,) = roots(runs)
    assert root["name"] == "inner"
    assert {r["parentRunId"] for r in runs if r is not root} == {root["id"]}
    assert len(children(runs)[root["id"]]) == 2
