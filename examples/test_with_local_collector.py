"""Assert on the traces your app emits, with the local collector as a pytest fixture.

    pytest examples/test_with_local_collector.py

Copy this file into your tests (or put the ``pytest_plugins`` line in your ``conftest.py``).
``lunary_local`` starts the embedded Lunary-compatible collector on 127.0.0.1, points this
process's settings at it (``LUNARY_*`` variables are ignored during the test) and stops it
afterwards. Swap ``chat_model()`` for your own chain's model.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import chat_model
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

import lunary_integrations
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.local import LocalLunary

pytest_plugins = ["lunary_integrations.testing"]


def test_chain_is_traced(lunary_local: LocalLunary) -> None:
    chain = ChatPromptTemplate.from_template("Tell me about {topic}") | chat_model()
    chain = chain | StrOutputParser()
    handler = LunaryCallbackHandler(tags=["test"])

    chain.invoke({"topic": "Lunary"}, config={"callbacks": [handler], "run_name": "about"})
    assert lunary_integrations.flush(10)

    runs = {run["name"]: run for run in lunary_local.all_runs()}
    assert set(runs) == {"about", "ChatPromptTemplate", "gpt-4o-mini", "StrOutputParser"}
    root, llm = runs["about"], runs["gpt-4o-mini"]
    assert root["type"] == "chain" and root["parentRunId"] is None
    assert root["tags"] == ["test"] and root["status"] == "success"
    assert llm["type"] == "llm" and llm["parentRunId"] == root["id"]
    assert llm["tokens"]["prompt"] > 0 and llm["tokens"]["completion"] > 0
    print(f"{len(runs)} runs; llm tokens: {llm['tokens']}")
