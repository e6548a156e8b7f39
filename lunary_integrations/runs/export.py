"""Parsing the streamed bodies of ``GET /v1/runs/export`` line by line."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Literal

from ..events import Run

ExportFormat = Literal["jsonl", "csv", "ojsonl"]
EXPORT_FORMATS: tuple[str, ...] = ("jsonl", "csv", "ojsonl")
#: What the server can export; it answers 422 without one.
EXPORT_TYPES: tuple[str, ...] = ("llm", "trace", "thread")


class ExportParser:
    """Feeds raw lines in, gets parsed items out: a :class:`Run` per ``jsonl`` line, a
    ``{"messages": [...]}`` dict per ``ojsonl`` line, a ``{column: cell}`` dict per CSV row.

    CSV cells may hold newlines inside quotes, so CSV lines are gathered until their quotes
    balance before the record is parsed.
    """

    def __init__(self, format: ExportFormat) -> None:
        if format not in EXPORT_FORMATS:
            raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
        self.format = format
        self._header: list[str] | None = None
        self._pending: list[str] = []

    def feed(self, line: str) -> Iterator[Any]:
        if self.format != "csv":
            if line.strip():
                data = json.loads(line)
                yield Run.model_validate(data) if self.format == "jsonl" else data
            return
        self._pending.append(line)
        record = "\n".join(self._pending)
        if record.count('"') % 2:  # inside a quoted cell: wait for the rest of the record
            return
        self._pending.clear()
        if not record.strip():
            return
        cells = next(csv.reader([record]))
        if self._header is None:
            self._header = cells
        else:
            yield dict(zip(self._header, cells, strict=True))

    def parse(self, lines: Iterable[str]) -> Iterator[Any]:
        for line in lines:
            yield from self.feed(line)

    async def aparse(self, lines: AsyncIterator[str]) -> AsyncIterator[Any]:
        async for line in lines:
            for item in self.feed(line):
                yield item


__all__ = ["EXPORT_FORMATS", "EXPORT_TYPES", "ExportFormat", "ExportParser"]
