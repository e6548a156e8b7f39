"""Complete the runs of a ``type=llm`` list, whose content the server truncates.

The list endpoint cuts each llm run to its last input message, 100 characters, when the
query says ``type=llm``; ``GET /v1/runs/{id}`` has the full run. These helpers re-fetch
exactly those rows, with bounded concurrency, keeping the list's order. A run deleted in
between keeps its list row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ..events import Run
from .client import AsyncRunsClient, RunsClient
from .errors import RunNotFoundError
from .filters import RunFilters, wants_llm_only


def _truncated(runs: Sequence[Run], filters: RunFilters) -> list[Run]:
    return [run for run in runs if run.type == "llm"] if wants_llm_only(filters) else []


def complete_runs(
    client: RunsClient, runs: Sequence[Run], filters: RunFilters, *, max_concurrency: int = 8
) -> list[Run]:
    """``runs`` with every truncated llm row replaced by the full run (a small thread pool)."""
    targets = _truncated(runs, filters)
    if not targets:
        return list(runs)

    def full(run: Run) -> Run:
        try:
            return client.get(run.id)
        except RunNotFoundError:
            return run

    with ThreadPoolExecutor(max_workers=max(1, min(max_concurrency, len(targets)))) as pool:
        fetched = {run.id: run for run in pool.map(full, targets)}
    return [fetched.get(run.id, run) for run in runs]


async def acomplete_runs(
    client: AsyncRunsClient, runs: Sequence[Run], filters: RunFilters, *, max_concurrency: int = 8
) -> list[Run]:
    """The async twin of :func:`complete_runs` (``gather`` under a semaphore)."""
    targets = _truncated(runs, filters)
    if not targets:
        return list(runs)
    gate = asyncio.Semaphore(max(1, max_concurrency))

    async def full(run: Run) -> Run:
        async with gate:
            try:
                return await client.get(run.id)
            except RunNotFoundError:
                return run

    fetched = {run.id: run for run in await asyncio.gather(*(full(r) for r in targets))}
    return [fetched.get(run.id, run) for run in runs]


__all__ = ["acomplete_runs", "complete_runs"]
