"""LlamaIndex's legacy callback system: a ``LunaryCallbackHandler`` on
``Settings.callback_manager``.

    python examples/llama_index_legacy_handler.py

Prefer ``instrument()`` (see llama_index_instrument.py): it sees every component, however it
was built. This handler only sees components whose ``CallbackManager`` holds it, i.e. those
built after ``Settings.callback_manager`` is set (or given the manager explicitly).

There is no ``set_global_handler("lunary")``, and there cannot be: LlamaIndex hard-codes the
names that function knows. ``llama_index.core.global_handler = LunaryCallbackHandler()`` is
what it would do, and works only for ``CallbackManager``s created after that line.

Uses ``MockEmbedding`` and an offline LLM reporting ``gpt-4o-mini`` usage, and the embedded
local collector unless ``LUNARY_PUBLIC_KEY`` is set.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import UsageLLM, lunary_target, print_traces, since_now
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager
from llama_index.core.embeddings import MockEmbedding

import lunary_integrations
from lunary_integrations.llama_index import LunaryCallbackHandler

DOCS = [
    "Paris is the capital of France. The Louvre is its most visited museum.",
    "Rome is the capital of Italy. The Colosseum held 50,000 spectators.",
]


def main() -> int:
    with lunary_target():
        started = since_now()
        # Settings are read when the handler is made: create it after configure().
        handler = LunaryCallbackHandler(tags=["examples", "legacy"], user_id="user-5")
        Settings.callback_manager = CallbackManager([handler])

        # Built after the line above, so these components report to the handler.
        index = VectorStoreIndex.from_documents(
            [Document(text=d) for d in DOCS], embed_model=MockEmbedding(embed_dim=8)
        )
        engine = index.as_query_engine(llm=UsageLLM(), similarity_top_k=2)
        print(f"Query: {engine.query('What do you know about Paris and Rome?')}")

        lunary_integrations.flush()
        print("Stored traces:")
        print_traces(tags=["legacy"], start_time=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
