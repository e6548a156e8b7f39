"""``LUNARY_TRACING=true``: trace every LangChain run of the process with no code change.

    LUNARY_TRACING=true python examples/langchain_env_tracing.py

(The script sets the variable itself so it runs as is.) The only line needed is an import of
``lunary_integrations.langchain`` somewhere in the process: it registers the hook, which reads
the variable at each run. Uses an offline model reporting ``gpt-4o-mini`` usage (a real
ChatOpenAI when ``OPENAI_API_KEY`` is set) and the embedded local collector unless
``LUNARY_PUBLIC_KEY`` is set.
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
import lunary_integrations.langchain  # registers the LUNARY_TRACING hook)


def main() -> int:
    os.environ["LUNARY_TRACING"] = "true"
    with lunary_target():
        # Plain LangChain code: no callbacks, no context manager.
        prompt = ChatPromptTemplate.from_template("Summarise in one line: {text}")
        chain = prompt | chat_model() | StrOutputParser()
        run_id = uuid.uuid4()  # only so we can read this trace back below
        chain.invoke({"text": "Lunary records every LLM call."}, config={"run_id": run_id})

        lunary_integrations.flush()
        print("Traced with LUNARY_TRACING=true, no callbacks:")
        print_trace(run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
