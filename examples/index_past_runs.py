"""Past runs into a LlamaIndex vector index: ``LunaryRunsReader().load_data(...)``.

    python examples/index_past_runs.py

A few LLM calls are traced (with ``instrument()``), then read back as ``Document``s (one per
run: the conversation as text, model/tokens/cost/tags as metadata), embedded into a
``VectorStoreIndex`` and queried. Needs a private key to read (the local collector has one).
Uses ``MockEmbedding`` and an offline LLM reporting ``gpt-4o-mini`` usage, and the embedded
local collector unless ``LUNARY_PUBLIC_KEY`` is set.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import UsageLLM, lunary_target, since_now
from llama_index.core import VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.embeddings import MockEmbedding

import lunary_integrations
from lunary_integrations.llama_index import LunaryRunsReader, instrument, uninstrument

PAST = {  # question -> the fact the (offline) model answers from
    "Where is the Louvre?": "The Louvre is in Paris, on the Right Bank.",
    "Who built the Eiffel Tower?": "Gustave Eiffel's company built it for 1889.",
    "Is the Seine long?": "The Seine is 777 km long.",
}


def main() -> int:
    with lunary_target() as (private_key, api_url):
        started = since_now()
        instrument(tags=["examples", "reader"])
        try:
            llm = UsageLLM()
            for question, fact in PAST.items():
                facts = ChatMessage(role="system", content=f"-----\n{fact}\n-----")
                llm.chat([facts, ChatMessage(role="user", content=question)])
        finally:
            uninstrument()
        lunary_integrations.flush()
        if not private_key:
            print("Set LUNARY_PRIVATE_KEY to read past runs back.")
            return 0

        reader = LunaryRunsReader(private_key=private_key, api_url=api_url)
        docs = reader.load_data(type="llm", tags=["reader"], start_time=started)
        print(f"Loaded {len(docs)} llm runs as Documents:")
        for doc in docs:
            meta = doc.metadata
            text = doc.text.replace("\n", " | ")
            print(f"    {meta['model']} ({meta['total_tokens']} tokens): {text}")

        index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
        engine = index.as_query_engine(llm=UsageLLM(), similarity_top_k=3)
        answer = engine.query("What did past conversations say about Paris?")
        print(f"Query over the index: {answer} (from {len(answer.source_nodes)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
