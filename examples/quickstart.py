"""The whole product in one run, offline: trace LangChain, LangGraph and LlamaIndex apps
into Lunary, then read the runs back as documents.

    make demo        # or: python examples/quickstart.py

With no ``LUNARY_PUBLIC_KEY`` set it starts the embedded Lunary-compatible collector on
127.0.0.1. With ``LUNARY_PUBLIC_KEY`` and ``LUNARY_PRIVATE_KEY`` (and ``LUNARY_API_URL`` for
a self-hosted Lunary) it sends to that Lunary instead. Models are offline fakes that report
usage like OpenAI's ``gpt-4o-mini`` (a real ChatOpenAI when ``OPENAI_API_KEY`` is set).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import UsageLLM, chat_model

import lunary_integrations
from lunary_integrations import RunsClient
from lunary_integrations.events import Run
from lunary_integrations.runs import RunNode

DOCS = [
    "Paris is the capital of France. The Louvre is its most visited museum.",
    "Lunary records every LLM call of an app: model, tokens, cost and errors.",
    "The Eiffel Tower is 330 metres tall and was finished in 1889.",
]
STEPS = 6


def step(n: int, text: str) -> None:
    print(f"[{n}/{STEPS}] {text}", flush=True)


# --------------------------------------------------------------------------- LangChain


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def capital_of(country: str = "France") -> str:
    """The capital city of a country."""
    return {"France": "Paris", "Italy": "Rome"}.get(country, "unknown")


def run_langchain() -> None:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.messages import HumanMessage
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough
    from langchain_core.tools import tool

    from lunary_integrations.langchain import LunaryCallbackHandler

    class KeywordRetriever(BaseRetriever):
        docs: list[Document]
        k: int = 1

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            words = set(query.lower().split())
            ranked = sorted(
                self.docs, key=lambda d: -len(words & set(d.page_content.lower().split()))
            )
            return ranked[: self.k]

    retriever = KeywordRetriever(
        docs=[Document(page_content=d, metadata={"source": f"doc{i}"}) for i, d in enumerate(DOCS)]
    )
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer from the context."),
            ("human", "Context: {context}\nQuestion: {question}"),
        ]
    )
    model = chat_model()
    rag = (
        RunnableParallel(
            context=retriever | (lambda docs: "\n".join(d.page_content for d in docs)),
            question=RunnablePassthrough(),
        )
        | prompt
        | model
        | StrOutputParser()
    ).with_config(run_name="rag_chain")

    tools = {t.name: t for t in (tool(multiply), tool(add))}

    def answer_with_tools(question: str) -> str:
        # One tool-calling round trip: the model asks for a tool, we run it, it answers.
        llm = model.bind_tools(list(tools.values()))
        messages: list[Any] = [HumanMessage(question)]
        reply = llm.invoke(messages)
        messages.append(reply)
        for call in reply.tool_calls:
            messages.append(tools[call["name"]].invoke(call))
        return str(llm.invoke(messages).content)

    handler = LunaryCallbackHandler(tags=["demo"])
    config: Any = {"callbacks": [handler], "metadata": {"user_id": "demo-user"}}
    rag.invoke("What is the capital of France?", config=config)
    RunnableLambda(answer_with_tools).with_config(run_name="calculator").invoke(
        "Please multiply 6 and 7", config=config
    )
    for _ in rag.stream("How tall is the Eiffel Tower?", config=config):
        pass  # streamed runs keep their token usage too


def run_langgraph() -> None:
    from langchain_core.tools import tool
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    from lunary_integrations.langchain import lunary_tracing

    tools = [tool(multiply), tool(add)]
    model = chat_model().bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    app = graph.compile(name="math_agent")
    with lunary_tracing(tags=["demo"], user_id="demo-user", user_props={"plan": "free"}):
        app.invoke({"messages": [("user", "Can you add 20 and 22?")]})
    del END  # (imported for readers who extend the graph)


# --------------------------------------------------------------------------- LlamaIndex


def run_llama_index() -> None:
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.tools import FunctionTool

    from lunary_integrations.llama_index import instrument, uninstrument

    instrument(tags=["demo"], user_id="demo-user")
    try:
        index = VectorStoreIndex.from_documents(
            [Document(text=d) for d in DOCS], embed_model=MockEmbedding(embed_dim=8)
        )
        engine = index.as_query_engine(llm=UsageLLM(), similarity_top_k=1)
        engine.query("Which museum is the most visited in Paris?")
        # LlamaIndex's mock function-calling LLM calls each tool once, with no arguments.
        agent = FunctionAgent(
            tools=[FunctionTool.from_defaults(capital_of)], llm=MockFunctionCallingLLM()
        )

        async def ask_agent() -> Any:  # workflows need a running loop when started
            return await agent.run("What is the capital of France?")

        asyncio.run(ask_agent())
    finally:
        uninstrument()


# --------------------------------------------------------------------------- reading back


def describe(run: Run) -> str:
    parts = [f"{run.type:<9} {run.name or '-'}"]
    if run.total_tokens:
        parts.append(f"tokens {run.prompt_token_count}/{run.completion_token_count}")
    if run.cost:
        parts.append(f"${run.cost:.6f}")
    if run.duration_seconds is not None:
        parts.append(f"{run.duration_seconds * 1000:.0f} ms")
    parts.append(run.status or "started")
    return "  ".join(parts)


def print_tree(node: RunNode, depth: int = 0) -> None:
    print("    " + "  " * depth + describe(node.run))
    for child in node.children:
        print_tree(child, depth + 1)


def read_back(client: RunsClient) -> None:
    roots = [r for r in client.iter_runs(type="trace", order="asc") if "demo" in (r.tags or [])]
    for root in roots:
        print_tree(client.related(root.id).root)
    llm_runs = client.count(type="llm", tags=["demo"])
    print(f"    ({len(roots)} traces, {llm_runs} llm runs)")


def retrieve(private_key: str | None, api_url: str | None) -> None:
    from lunary_integrations.langchain import LunaryRunsRetriever
    from lunary_integrations.llama_index import LunaryRunsReader

    retriever = LunaryRunsRetriever(type="llm", k=2, private_key=private_key, api_url=api_url)
    print("    LangChain retriever, query 'capital':")
    for doc in retriever.invoke("capital"):
        text = doc.page_content.replace("\n", " | ")
        print(
            f"      - {doc.metadata.get('model')} ({doc.metadata.get('total_tokens')} tokens): "
            f"{text[:110]}"
        )
    docs = LunaryRunsReader(private_key=private_key, api_url=api_url).load_data(type="tool")
    print(
        f"    LlamaIndex reader: {len(docs)} tool runs as Documents, e.g. {docs[0].text[:70]!r}"
        if docs
        else "    LlamaIndex reader: no tool runs"
    )


def main() -> int:
    started = time.perf_counter()
    local = None
    if not os.environ.get("LUNARY_PUBLIC_KEY"):
        from lunary_integrations.local import LocalLunary

        local = LocalLunary().start()
        lunary_integrations.configure(
            public_key=local.public_key, private_key=local.private_key, api_url=local.url
        )
        print(f"No LUNARY_PUBLIC_KEY: using the embedded local collector at {local.url}")
    private_key = local.private_key if local else os.environ.get("LUNARY_PRIVATE_KEY")
    api_url = local.url if local else os.environ.get("LUNARY_API_URL")
    try:
        step(1, "LangChain: a RAG chain with a retriever, a tool-calling step, a streamed run")
        run_langchain()
        step(2, "LangGraph: a tool-calling agent graph")
        run_langgraph()
        step(3, "LlamaIndex: a query engine and a FunctionAgent, via instrument()")
        run_llama_index()
        step(4, "Flushing: every event delivered before reading")
        delivered = lunary_integrations.flush(30)
        print(f"    delivered: {delivered}; {lunary_integrations.get_client().stats()}")
        if not private_key:
            print("Set LUNARY_PRIVATE_KEY to read the runs back.")
            return 0 if delivered else 1
        step(5, "Reading the traces back through the Runs API")
        with RunsClient(private_key=private_key, api_url=api_url) as client:
            read_back(client)
        step(6, "Reading past runs back as framework documents")
        retrieve(private_key, api_url)
        print(f"Done in {time.perf_counter() - started:.1f} s.")
        return 0 if delivered else 1
    finally:
        lunary_integrations.shutdown()
        if local is not None:
            local.stop()


if __name__ == "__main__":
    sys.exit(main())
