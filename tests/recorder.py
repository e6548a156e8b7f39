"""A stand-in for the ingest client: what a tracer would queue, kept in a list."""

from __future__ import annotations

from typing import Any

from lunary_integrations.ingest import materialize


class Recorder:
    enabled = True

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def enqueue(self, item: Any) -> bool:
        """Like the real worker, a deferred item ``(build, run_key, parent_key, *args)`` is
        built, here at once (so tests read events synchronously)."""
        event = materialize(item)
        if event is not None:
            self.events.append(event)
        return True

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Events of one kind (``start``, ``end``, ``error``)."""
        return [e for e in self.events if e["event"] == kind]

    def by_run(self, run_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["runId"] == run_id]
