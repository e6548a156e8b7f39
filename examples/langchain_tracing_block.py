"""``with lunary_tracing(...)``: trace every LangChain run started inside a block, no
``callbacks=`` anywhere. Runs outside the block are not traced.

    python examples/langchain_tracing_block.py

Uses an offline model reporting ``gpt-4o-mini`` usage (a real ChatOpenAI when
``OPENAI_API_KEY`` is set) and the embedded local collector unless ``LUNARY_PUBLIC_KEY`` is set.
"""

from __future__ import annotations

import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import chat_model, lunary_target, print_trace
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

import lunary_integrations
from lunary_integrations import RunsClient
from lunary_integrations.langchain import lunary_tracing
from lunary_integrations.runs import RunNotFoundError


def main() -> int:
    with lunary_target() as (private_key, api_url):
        prompt = ChatPromptTemplate.from_template("Translate to French: {text}")
        chain = prompt | chat_model() | StrOutputParser()

        inside, outside = uuid.uuid4(), uuid.uuid4()
        with lunary_tracing(tags=["examples", "block"], user_id="user-7"):
            chain.invoke({"text": "good morning"}, config={"run_id": inside})
        chain.invoke({"text": "good night"}, config={"run_id": outside})  # not traced

        lunary_integrations.flush()
        print("Inside the block, stored:")
        print_trace(inside)
        if private_key:
            with RunsClient(private_key=private_key, api_url=api_url) as client:
                try:
                    client.get(outside)
                    print("Outside the block: stored (unexpected!)")
                    return 1
                except RunNotFoundError:
                    print("Outside the block: not traced (404 from the Runs API)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
