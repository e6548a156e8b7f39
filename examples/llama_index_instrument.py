"""LlamaIndex with ``instrument()``: one call traces every LlamaIndex component of the process
(query engines, retrievers, LLMs, agents), however and whenever they were built.

    python examples/llama_index_instrument.py

A ``VectorStoreIndex`` query engine becomes a trace: query (chain) -> retrieve (retriever),
synthesize (chain) -> llm, with the model name and token usage. A streamed chat is an ``llm``
run whose usage is kept too. ``uninstrument()`` stops tracing. Uses ``MockEmbedding`` and an
offline LLM reporting ``gpt-4o-mini`` usage, and the embedded local collector unless
``LUNARY_PUBLIC_KEY`` is set.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import UsageLLM, lunary_target, print_traces, since_now
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.embeddings import MockEmbedding

import lunary_integrations
from lunary_integrations.llama_index import instrument, uninstrument

DOCS = [
    "The Eiffel Tower is 330 metres tall, antennas included.",
    "The Eiffel Tower was finished in 1889; it is 330 metres tall.",
]


def main() -> int:
    with lunary_target():
        started = since_now()
        instrument(tags=["examples", "llama-index"], user_id="user-9")
        try:
            index = VectorStoreIndex.from_documents(
                [Document(text=d) for d in DOCS], embed_model=MockEmbedding(embed_dim=8)
            )
            engine = index.as_query_engine(llm=UsageLLM(), similarity_top_k=1)
            print(f"Query: {engine.query('How tall is the Eiffel Tower?')}")

            reply = ""
            for chunk in UsageLLM().stream_chat([ChatMessage(role="user", content="Hello!")]):
                reply = str(chunk.message.content)  # a UI would show chunk.delta
            print(f"Streamed chat: {reply}")  # the llm run ended with the stream
        finally:
            uninstrument()

        lunary_integrations.flush()
        print("Stored traces:")
        print_traces(type=["trace", "llm"], tags=["llama-index"], start_time=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
