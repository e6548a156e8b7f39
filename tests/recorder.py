"""A stand-in for the ingest client: what a tracer would queue, kept in a list."""

from __future__ import annotations

from typing import Any


class Recorder:
    enabled = True

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def enqueue(self, event: dict[str, Any]) -> bool:
        self.events.append(event)
        return True

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Events of one kind (``start``, ``end``, ``error``)."""
        return [e for e in self.events if e["event"] == kind]

    def by_run(self, run_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["runId"] == run_id]
