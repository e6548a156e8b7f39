"""Reading runs back from the local collector over real HTTP: paging, retrievers, reader."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from llama_index.core import MockEmbedding, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine

from lunary_integrations.langchain import LunaryRunsRetriever as LCRetriever
from lunary_integrations.llama_index import LunaryRunsReader
from lunary_integrations.llama_index import LunaryRunsRetriever as LIRetriever
from lunary_integrations.local import LocalLunary
from lunary_integrations.runs import AsyncRunsClient, RunsClient

from .runs_support import LONG_ANSWER, LONG_QUESTION, seed_llm_runs, seed_many


def _assert_full_refund_text(text: str) -> None:
    assert LONG_QUESTION in text and LONG_ANSWER in text  # not the 100-character cut
    assert len(text) > 300
    assert "system: You are ACME's support assistant." in text
    assert 'assistant: calls lookup_policy({"topic": "refund"})' in text
    assert "tool (call_1): 30 days; 2-year warranty" in text


def _assert_refund_metadata(meta: dict[str, Any]) -> None:
    assert meta["model"] == "gpt-4o-mini" and meta["user"] == "cust-7"
    assert (meta["prompt_tokens"], meta["completion_tokens"], meta["total_tokens"]) == (
        180,
        42,
        222,
    )
    assert meta["duration"] == pytest.approx(1.5) and meta["status"] == "success"
    assert meta["tags"] == ["support", "v1.2"] and meta["type"] == "llm"


# --------------------------------------------------------------------------- pagination


def test_iter_runs_pages_through_everything_once_in_order(lunary_local: LocalLunary) -> None:
    ids = seed_many(55)
    newest_first = list(reversed(ids))
    with RunsClient() as client:
        seen = [run.id for run in client.iter_runs(tags="bulk", page_size=20)]  # 20+20+15
        oldest_first = [
            r.id
            for r in client.iter_runs(tags="bulk", sort_by="created_at", order="asc", page_size=11)
        ]  # exactly 5 full pages, then an empty one
        assert client.count(tags="bulk") == 55
        assert client.count(tags="bulk", limit=None) == 50  # why count sends a large limit
    assert seen == newest_first
    assert oldest_first == ids


async def test_async_iter_runs_pages_too(lunary_local: LocalLunary) -> None:
    ids = seed_many(7)
    async with AsyncRunsClient() as client:
        seen = [run.id async for run in client.iter_runs(tags="bulk", page_size=3)]
        assert await client.count(tags="bulk") == 7
    assert seen == list(reversed(ids))


# --------------------------------------------------------------------------- clients


def test_type_llm_list_truncates_and_get_returns_everything(lunary_local: LocalLunary) -> None:
    ids = seed_llm_runs()
    with RunsClient() as client:
        listed = {r.id: r for r in client.list(type="llm").data}
        full = client.get(ids["refund"])
        tree = client.related(ids["chain"])
        by_tag = [r.id for r in client.list(tags="v1.2").data]
        by_search = [r.id for r in client.list(search="café").data]
        by_meta = [r.id for r in client.list(metadata={"ticket_id": "T.42"}).data]
        by_model = [r.id for r in client.list(models=["gpt-4.1"]).data]
    assert len(listed[ids["refund"]].input["content"]) <= 100
    assert full.input[1]["content"] == LONG_QUESTION and full.user is not None
    assert full.trace_id == ids["chain"]
    assert [n.run.id for n in tree] == [ids["chain"], ids["refund"], ids["cafe"]]
    assert by_tag == by_meta == [ids["refund"]]  # dots inside values reach the server intact
    assert by_search == by_model == [ids["cafe"]]


# --------------------------------------------------------------------------- LangChain


def test_langchain_retriever_in_an_lcel_chain(lunary_local: LocalLunary) -> None:
    ids = seed_llm_runs()
    retriever = LCRetriever(type="llm", k=5)
    chain = RunnableParallel(context=retriever, question=RunnablePassthrough())
    out = chain.invoke("refund policy")
    assert out["question"] == "refund policy"
    (doc,) = out["context"]
    assert isinstance(doc, Document) and doc.id == ids["refund"]
    _assert_full_refund_text(doc.page_content)
    _assert_refund_metadata(doc.metadata)
    assert doc.metadata["trace_id"] == ids["chain"]


async def test_langchain_retriever_native_async(lunary_local: LocalLunary) -> None:
    ids = seed_llm_runs()
    retriever = LCRetriever(type="llm", k=5, max_concurrency=1)
    docs = await retriever.ainvoke("")  # no search: every llm run, newest first
    assert [d.id for d in docs] == [ids["failed"], ids["cafe"], ids["refund"]]
    _assert_full_refund_text(docs[2].page_content)
    assert docs[0].page_content == "user: ping\nerror: Rate limit reached"
    batch = await retriever.abatch(["café", "refund"])
    assert [[d.id for d in docs] for docs in batch] == [[ids["cafe"]], [ids["refund"]]]


def test_langchain_retriever_filters_formatter_and_no_full_fetch(lunary_local: LocalLunary) -> None:
    ids = seed_llm_runs()
    plain = LCRetriever(type="llm", fetch_full=False, formatter=lambda run: run.name or "")
    (doc,) = plain.invoke("refund policy")
    assert doc.page_content == "gpt-4o-mini"
    chains = LCRetriever(type="trace", tags=["support"]).invoke("")
    assert [d.id for d in chains] == [ids["chain"]]
    assert chains[0].page_content.startswith('input: {"question": "Our customer')
    failed = LCRetriever(status="error", models=["gpt-4o-mini"]).invoke("")
    assert [d.id for d in failed] == [ids["failed"]]


# --------------------------------------------------------------------------- LlamaIndex


def test_llama_index_retriever_in_a_query_engine(lunary_local: LocalLunary) -> None:
    ids = seed_llm_runs()
    engine = RetrieverQueryEngine.from_args(LIRetriever(type="llm", k=5), llm=MockLLM())
    response = engine.query("refund policy")
    (source,) = response.source_nodes
    assert source.node.node_id == ids["refund"] and source.score == 1.0
    _assert_full_refund_text(source.node.get_content())
    _assert_refund_metadata(source.node.metadata)
    assert "params" not in source.node.get_content(metadata_mode="llm")  # kept out of prompts


async def test_llama_index_retriever_async_and_rank_scores(lunary_local: LocalLunary) -> None:
    ids = seed_llm_runs()
    retriever = LIRetriever(type="llm", k=5, max_concurrency=2)
    nodes = await retriever.aretrieve("")
    assert [n.node.node_id for n in nodes] == [ids["failed"], ids["cafe"], ids["refund"]]
    assert [n.score for n in nodes] == [1.0, 0.5, pytest.approx(1 / 3)]
    _assert_full_refund_text(nodes[2].node.get_content())
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = await engine.aquery("café")
    assert [n.node.node_id for n in response.source_nodes] == [ids["cafe"]]


def test_reader_loads_runs_into_a_vector_index(lunary_local: LocalLunary) -> None:
    ids = seed_llm_runs()
    reader = LunaryRunsReader(page_size=1)  # one run per page: paging and full fetches
    docs = reader.load_data(type="llm")
    assert [d.doc_id for d in docs] == [ids["failed"], ids["cafe"], ids["refund"]]
    _assert_full_refund_text(docs[2].text)
    index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    found = index.as_retriever(similarity_top_k=3).retrieve("refund policy")
    assert ids["refund"] in {n.node.ref_doc_id for n in found}
    refund = next(n for n in found if n.node.ref_doc_id == ids["refund"])
    assert LONG_ANSWER in refund.node.get_content()
    _assert_refund_metadata(refund.node.metadata)
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=3)
    assert ids["refund"] in {n.node.ref_doc_id for n in engine.query("refund").source_nodes}


async def test_reader_limit_lazy_and_async(lunary_local: LocalLunary) -> None:
    ids = seed_llm_runs()
    reader = LunaryRunsReader(page_size=2)
    lazy = reader.lazy_load_data(type="llm", limit=2)
    assert next(lazy).doc_id == ids["failed"]
    assert [d.doc_id for d in lazy] == [ids["cafe"]]
    docs = await reader.aload_data(type="llm")
    assert [d.doc_id for d in docs] == [ids["failed"], ids["cafe"], ids["refund"]]
    _assert_full_refund_text(docs[2].text)
    assert [d.doc_id for d in await reader.aload_data(tags="support", limit=1)] == [ids["cafe"]]
