"""RAG over past conversations: ``LunaryRunsRetriever`` inside an LCEL chain.

    python examples/rag_over_past_runs.py

First a support bot answers a few questions (traced with a handler); then a RAG chain
retrieves the stored ``llm`` runs mentioning a word (the retriever's query is the Runs API's
``search``: a substring match on input or output) and answers a question about them. Needs a
private key to read (the local collector has one). Uses an offline model reporting
``gpt-4o-mini`` usage (a real ChatOpenAI when ``OPENAI_API_KEY`` is set) and the embedded
local collector unless ``LUNARY_PUBLIC_KEY`` is set.
"""

from __future__ import annotations

import os
import sys
from operator import itemgetter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import chat_model, lunary_target
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel

import lunary_integrations
from lunary_integrations.langchain import LunaryCallbackHandler, LunaryRunsRetriever

PAST = {
    "Can I get a refund after 30 days?": "Refunds are accepted within 30 days only.",
    "How do I reset my password?": "Use Settings > Security > Reset password.",
    "My refund has not arrived yet": "Refunds reach your card within 5 business days.",
}


def format_docs(docs: list[Document]) -> str:
    return "\n".join(d.page_content.replace("\n", " | ") for d in docs)


def main() -> int:
    with lunary_target() as (private_key, _):
        support = ChatPromptTemplate.from_template("Context: {policy}\nCustomer: {q}")
        bot = support | chat_model() | StrOutputParser()
        handler = LunaryCallbackHandler(tags=["examples", "support"])
        for question, policy in PAST.items():
            bot.invoke({"q": question, "policy": policy}, config={"callbacks": [handler]})
        lunary_integrations.flush()
        if not private_key:
            print("Set LUNARY_PRIVATE_KEY to read past runs back.")
            return 0

        # private_key= and api_url= default to configure() / LUNARY_PRIVATE_KEY, LUNARY_API_URL
        retriever = LunaryRunsRetriever(type="llm", tags=["support"], k=3)
        prompt = ChatPromptTemplate.from_template(
            "Answer from past conversations.\nContext: {context}\nQuestion: {question}"
        )
        rag = (  # the retriever gets a search word, the model the question
            RunnableParallel(
                context=itemgetter("search") | retriever | format_docs,
                question=itemgetter("question"),
            )
            | prompt
            | chat_model()
            | StrOutputParser()
        )
        for doc in retriever.invoke("refund"):
            meta = doc.metadata
            print(f"Retrieved {meta['model']} run ({meta['total_tokens']} tokens):")
            print("   ", doc.page_content.replace("\n", " | "))
        answer = rag.invoke({"search": "refund", "question": "What do customers ask on refunds?"})
        print(f"RAG answer: {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
