"""A per-call ``LunaryCallbackHandler`` on a LangChain chain: ``prompt | model | parser``.

    python examples/langchain_handler.py

Only the calls given the handler in ``config={"callbacks": [...]}`` are traced. The user is
read from the run's metadata (``user_id``), tags from the handler. Uses an offline model
reporting ``gpt-4o-mini`` usage (a real ChatOpenAI when ``OPENAI_API_KEY`` is set) and the
embedded local collector unless ``LUNARY_PUBLIC_KEY`` is set.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import chat_model, lunary_target, print_trace
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

import lunary_integrations
from lunary_integrations.langchain import LunaryCallbackHandler


def main() -> int:
    with lunary_target():
        prompt = ChatPromptTemplate.from_messages(
            [("system", "You are a concise travel guide."), ("human", "{question}")]
        )
        chain = prompt | chat_model() | StrOutputParser()

        handler = LunaryCallbackHandler(tags=["examples", "handler"])
        run_id = uuid.uuid4()  # LangChain's run id is the Lunary run id
        config: Any = {
            "callbacks": [handler],
            "metadata": {"user_id": "user-42"},
            "run_id": run_id,
            "run_name": "travel_guide",
        }
        answer = chain.invoke({"question": "What should I see in Rome?"}, config=config)
        print(f"Answer: {answer}")

        lunary_integrations.flush()
        print("Stored trace:")
        print_trace(run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
