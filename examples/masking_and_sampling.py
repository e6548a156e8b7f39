"""What is sent: ``mask=``, ``sample_rate=``, ``ignore=`` and ``capture_content=False``.

    python examples/masking_and_sampling.py

Each is a setting of the handler here; they are also ``configure()`` options (and
``LUNARY_SAMPLE_RATE`` / ``LUNARY_CAPTURE_CONTENT`` variables). Uses an offline model
reporting ``gpt-4o-mini`` usage (a real ChatOpenAI when ``OPENAI_API_KEY`` is set) and the
embedded local collector unless ``LUNARY_PUBLIC_KEY`` is set; reading back needs a private key.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import chat_model, lunary_target
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

import lunary_integrations
from lunary_integrations import RunsClient
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.runs import RunNotFoundError

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def redact(value: Any) -> Any:
    """The mask: gets the JSON-safe snapshot of every input/output, returns what is sent."""
    if isinstance(value, str):
        return EMAIL.sub("<email>", value)
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def lookup_card(request: dict[str, str]) -> dict[str, str]:
    return {"text": f"{request['text']} (card 4242 4242 4242 4242)"}


def config(run_id: uuid.UUID, **settings: Any) -> Any:
    """A run config with its own handler (settings apply to the runs that handler sees)."""
    handler = LunaryCallbackHandler(tags=["examples", "privacy"], **settings)
    return {"callbacks": [handler], "run_id": run_id}


def main() -> int:
    with lunary_target() as (private_key, api_url):
        chain = ChatPromptTemplate.from_template("{text}") | chat_model() | StrOutputParser()
        secret_chain = RunnableLambda(lookup_card).with_config(run_name="SecretLookup") | chain
        masked, ignored, no_content = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        sampled = [uuid.uuid5(uuid.NAMESPACE_URL, f"example-{i}") for i in range(20)]

        chain.invoke({"text": "Mail jane.doe@example.com"}, config(masked, mask=redact))
        for run_id in sampled:  # kept or dropped per trace, decided from the root's id
            chain.invoke({"text": "hello"}, config(run_id, sample_rate=0.5))
        rules = [{"type": "chain", "name": "Secret*"}]
        secret_chain.invoke({"text": "Find my card"}, config(ignored, ignore=rules))
        chain.invoke({"text": "A private question"}, config(no_content, capture_content=False))
        lunary_integrations.flush()
        if not private_key:
            print("Set LUNARY_PRIVATE_KEY to read the runs back.")
            return 0

        with RunsClient(private_key=private_key, api_url=api_url) as client:

            def stored(run_id: uuid.UUID, name: str = "gpt-4o-mini") -> Any:
                return next(r for r in client.related(run_id).rows if r.name == name)

            print(f"mask: llm input sent as {stored(masked).input}")
            sizes = []
            for run_id in sampled:
                with contextlib.suppress(RunNotFoundError):  # sampled out: the whole trace
                    sizes.append(len(client.related(run_id).rows))
            print(f"sample_rate=0.5: kept {len(sizes)}/20 traces, each whole: {set(sizes)} runs")
            step = stored(ignored, "SecretLookup")
            print(f"ignore: SecretLookup input={step.input!r} output={step.output!r}")
            llm = stored(no_content)
            print(f"capture_content=False: llm input={llm.input!r}, tokens {llm.total_tokens}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
