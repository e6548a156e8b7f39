"""``track_event``: trace code outside the frameworks (your own agent loop, a raw SDK call).

    python examples/track_event_manual.py

Each run is a ``start`` and an ``end`` (or ``error``) event with the same ``run_id``; a child
names its parent with ``parent_run_id``. An ``llm`` run's ``name`` is the model and
``tokens_usage`` its usage, from which Lunary computes the cost. Events are queued and sent in
the background: ``flush()`` before reading back. Uses the embedded local collector unless
``LUNARY_PUBLIC_KEY`` is set.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fakes import lunary_target, print_trace

import lunary_integrations
from lunary_integrations import track_event


def weather(city: str) -> str:
    return {"Paris": "sunny, 24°C"}.get(city, "unknown")


def main() -> int:
    with lunary_target():
        question = "What's the weather in Paris?"
        agent, llm, tool = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        track_event(
            type="agent",
            event="start",
            run_id=agent,
            name="weather_agent",
            input=question,
            user_id="user-1",
            tags=["examples", "manual"],
        )

        track_event(
            type="llm",
            event="start",
            run_id=llm,
            parent_run_id=agent,
            name="gpt-4o-mini",
            input=[{"role": "user", "content": question}],
        )
        time.sleep(0.015)  # the provider call
        track_event(
            type="llm",
            event="end",
            run_id=llm,
            output={"role": "assistant", "content": "Calling weather(Paris)"},
            tokens_usage={"prompt": 14, "completion": 6},
        )

        track_event(
            type="tool",
            event="start",
            run_id=tool,
            parent_run_id=agent,
            name="weather",
            input={"city": "Paris"},
        )
        answer = weather("Paris")
        track_event(type="tool", event="end", run_id=tool, output=answer)

        track_event(type="agent", event="end", run_id=agent, output=f"It is {answer}.")
        lunary_integrations.flush()
        print("Stored trace:")
        print_trace(agent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
