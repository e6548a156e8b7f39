"""The shared ingest client: a bounded queue drained by one worker thread.

Callers only ``enqueue`` (an append to a deque: O(1), no lock, no I/O). An item is a wire
event, or a :data:`Deferred` one: ``(build, run_key, parent_key, *args)``, whose
``build(run_key, parent_key, *args)`` makes the event (or None) on the worker, so that
translation and serialization cost the caller nothing. The worker sleeps until a batch's
worth of items is queued (``max_batch_events``) or ``flush_interval`` has passed since the
first one (an idle worker is woken by the first item to start that clock), then builds,
encodes and posts them, retries and counts. Waking seldom is what keeps the worker cheap for
the app: every wake-up takes the GIL from the app's thread, and on a busy machine the app's
thread pays for each switch (measured in ``benchmarks/``: waking every 64 items cost the
caller's thread more CPU than waking every 500 or 2 000, the garbage collector's extra work
for the longer-lived items included).

``flush`` puts a marker in the queue and waits for the worker to reach it, so it returns only
once everything enqueued before it was answered, the batch in flight included.

Drop policy: when the queue holds ``max_queue_events``, new events are dropped (counted,
logged once), and so are the later events of the runs they belong to and of their children:
the server would otherwise stall on children of a parent it never received.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeAlias

from .._log import log_once, logger
from ..config import Settings
from ..events import WireEvent
from ..retry_policy import ingest_policy
from .encode import batch_body, batch_overhead, encode_event
from .transport import ALREADY_EXISTS, Outcome, Transport, Verdict

#: A single event refused with 413 is re-cut to a quarter of its size, again and again, while
#: that quarter is at least this big; below it, it is given up (a server refusing 16 KiB is
#: not refusing it for its size). At most ~6 attempts from the 16 MiB ceiling.
_HARDER_FLOOR = 16 * 1024

#: Runs remembered as dropped (so their ends and children are dropped too); a bounded set.
_MAX_DROPPED_IDS = 100_000


#: ``(build, run_key, parent_key, *args)``: an event built on the worker by
#: ``build(run_key, parent_key, *args)`` (None: nothing to send). The keys identify the run
#: and its parent for the drop policy, in whatever form the adapter has them.
Deferred: TypeAlias = tuple[Any, ...]


def materialize(item: WireEvent | Deferred) -> WireEvent | None:
    """The event an item stands for (a deferred one is built now; it may raise)."""
    if type(item) is tuple:
        built: WireEvent | None = item[0](*item[1:])
        return built
    return item  # type: ignore[return-value]


def _run_keys(item: WireEvent | Deferred) -> tuple[Any, Any]:
    if type(item) is tuple:
        return item[1], item[2]
    return item.get("runId"), item.get("parentRunId")  # type: ignore[union-attr]


class _FlushMarker:
    __slots__ = ("done", "problems_before")

    def __init__(self, problems_before: int) -> None:
        self.done = threading.Event()
        self.problems_before = problems_before


class IngestClient:
    """Sends run events to one Lunary project. Thread-safe; get it from ``get_client()``."""

    enabled = True

    def __init__(
        self,
        settings: Settings,
        transport: Transport | None = None,
        on_worker_start: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._transport = transport
        #: Called as each worker starts (the registry's exit hook); the client knows no registry.
        self._on_worker_start = on_worker_start
        self._policy = ingest_policy(settings.max_retries, settings.max_backoff)
        self._max_queue = settings.max_queue_events
        self._batch_events = settings.max_batch_events
        self._init_state()

    def _init_state(self) -> None:
        self._queue: collections.deque[WireEvent | Deferred | _FlushMarker] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False
        #: ``enqueue`` appends without further checks while fewer items are queued: the
        #: queue's bound once the worker runs; 0 (every event takes ``_admit``) before it is
        #: started, once the client is closed, and while some runs' events are dropped.
        self._room = 0
        #: ``enqueue`` wakes the worker when it finds at least this many items queued: 0 while
        #: the worker is idle (nothing queued or held), else one short of a batch.
        self._wake_at = self._batch_events - 1
        self._deadline: float | None = None  # set by shutdown: give up retrying after it
        self._dropped_runs: dict[Any, None] = {}
        self._carry: bytes | None = None
        self._held = 0  # events encoded by the worker, not yet answered
        self._counts = collections.Counter[str]()

    # ------------------------------------------------------------------ caller side (hot)

    def enqueue(self, event: WireEvent | Deferred) -> bool:
        """Queue one event; never blocks, never raises. False if it was dropped."""
        queue = self._queue
        queued = len(queue)
        if queued >= self._room and not self._admit(event):
            return False
        queue.append(event)
        if queued >= self._wake_at and not self._wake.is_set():
            self._wake.set()  # a lock: paid once per wake-up, not once per event
        return True

    def _admit(self, event: WireEvent | Deferred) -> bool:
        """The slow path (see ``_room``): False (counted) to drop the event, once the client
        is closed, for a run dropped earlier, or when the queue is full; else True, starting
        the worker for the first event."""
        if self._closed:
            self._count_drop(event, "closed")
            return False
        if self._dropped_runs and not self._dropped_runs.keys().isdisjoint(_run_keys(event)):
            self._count_drop(event, "run dropped earlier")
            return False
        if len(self._queue) >= self._max_queue:
            self._count_drop(event, "queue full")
            return False
        if self._worker is None:
            self._start_worker()
        return True

    def _count_drop(self, event: WireEvent | Deferred, reason: str) -> None:
        run_key = _run_keys(event)[0]
        with self._count_lock:
            self._counts["dropped"] += 1
            if run_key is not None:  # its later events, and its children's, go the same way
                if len(self._dropped_runs) >= _MAX_DROPPED_IDS:
                    self._dropped_runs.pop(next(iter(self._dropped_runs)))
                self._dropped_runs[run_key] = None
                self._room = 0  # later events are checked against the dropped runs
        log_once(
            f"drop:{reason}",
            "Lunary: dropping events (%s); see get_client().stats() for counts",
            reason,
        )

    def _start_worker(self) -> None:
        with self._start_lock:
            if self._worker is not None or self._closed:
                return
            worker = threading.Thread(target=self._run, name="lunary-ingest", daemon=True)
            self._worker = worker
            with self._count_lock:  # ``_count_drop`` sets it to 0 under this lock
                if not self._dropped_runs:
                    self._room = self._max_queue
            if self._on_worker_start is not None:
                self._on_worker_start()
            worker.start()

    # ------------------------------------------------------------------ public control

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event enqueued before this call was answered by the server.

        Returns True if that happened within ``timeout`` seconds and nothing was dropped or
        refused meanwhile; False otherwise (details in :meth:`stats`).
        """
        if self._worker is None and not self._queue:
            return True  # nothing was ever queued
        marker = _FlushMarker(self._problems())
        self._queue.append(marker)
        if self._worker is None:
            self._start_worker()
        self._wake.set()
        if not marker.done.wait(timeout):
            return False
        return self._problems() == marker.problems_before

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush (up to ``timeout``), stop the worker and close the connection. Idempotent."""
        if self._closed:
            return True
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self._deadline = time.monotonic() + timeout
        ok = self.flush(timeout)
        self._closed = True
        self._room = 0
        self._stop.set()
        self._wake.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, self._deadline - time.monotonic()) + 0.5)
        if self._transport is not None:
            self._transport.close()
        return ok

    def stats(self) -> dict[str, Any]:
        """Counters since the client was created (events unless the name says otherwise)."""
        with self._count_lock:
            counts = dict(self._counts)
        return {
            "queued": self._held
            + sum(1 for item in list(self._queue) if not isinstance(item, _FlushMarker)),
            "sent": counts.get("sent", 0),
            "duplicates": counts.get("duplicates", 0),
            "failed": counts.get("failed", 0),
            "dropped": counts.get("dropped", 0),
            "retries": counts.get("retries", 0),
            "batches": counts.get("batches", 0),
            "bytes_sent": counts.get("bytes_sent", 0),
            "truncated": counts.get("truncated", 0),
        }

    def _problems(self) -> int:
        with self._count_lock:
            return self._counts["failed"] + self._counts["dropped"]

    def _count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            self._counts[name] += n

    # ------------------------------------------------------------------ fork

    def _reset_after_fork(self) -> None:
        """In a forked child: the parent's queue and thread are the parent's business."""
        self._transport = None  # never reuse the parent's sockets
        self._init_state()

    # ------------------------------------------------------------------ worker side

    def _run(self) -> None:
        try:
            while True:
                parts, markers = self._collect()
                if parts:
                    self._deliver(parts)
                    self._held = 0
                for marker in markers:
                    marker.done.set()
                if self._stop.is_set() and not self._queue and self._carry is None:
                    return
        except Exception:  # a bug here must not kill delivery silently
            logger.exception("Lunary: the ingest worker stopped on an unexpected error")
            self._closed = True
            self._room = 0
            for item in list(self._queue):
                if isinstance(item, _FlushMarker):
                    item.done.set()

    def _collect(self) -> tuple[list[bytes], list[_FlushMarker]]:
        """Encode items as they arrive; return a batch once it is full (count or bytes), its
        first event is ``flush_interval`` old, a flush reaches it, or the client stops."""
        queue, settings, wake = self._queue, self.settings, self._wake
        parts: list[bytes] = []
        markers: list[_FlushMarker] = []
        size = batch_overhead(1)
        if self._carry is not None:
            parts.append(self._carry)
            size += len(self._carry)
            self._carry = None
            self._held = 1
        deadline: float | None = None
        while True:
            while queue and len(parts) < self._batch_events:
                item = queue.popleft()
                if isinstance(item, _FlushMarker):
                    markers.append(item)
                    return parts, markers  # answer the flush before taking later events
                data = self._encode(item)
                if data is None:
                    continue
                if parts and size + len(data) + 1 > settings.max_batch_bytes:
                    self._carry = data
                    return parts, markers
                parts.append(data)
                size += len(data) + 1
                self._held = len(parts)
            if len(parts) >= self._batch_events or self._stop.is_set():
                return parts, markers
            remaining: float | None = None
            if parts:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + settings.flush_interval
                remaining = deadline - now
                if remaining <= 0:
                    return parts, markers
            # Idle (nothing held): the next item wakes the worker. The threshold is lowered
            # before the queue is looked at, so an item enqueued in between is never left
            # waiting.
            self._wake_at = self._batch_events - 1 if parts else 0
            if not queue:
                wake.wait(remaining)
            self._wake_at = self._batch_events - 1
            wake.clear()

    def _encode(self, item: WireEvent | Deferred) -> bytes | None:
        """The item's bytes; None when there is nothing to send or it could not be encoded."""
        try:
            event = materialize(item)
        except Exception as exc:  # a translation bug: lose this event, not the worker
            self._count("dropped")
            log_once(
                f"build:{type(exc).__name__}",
                "Lunary: an event could not be built (%r); it was dropped",
                exc,
            )
            return None
        if event is None:  # a hidden, sampled-out or duplicate run: nothing to send
            return None
        try:
            data = encode_event(event, self.settings.max_event_bytes)
        except Exception:
            data = None
        if data is None:
            self._count("dropped")
            log_once("oversized", "Lunary: an event could not be encoded within max_event_bytes")
        return data

    def _deliver(self, parts: list[bytes]) -> None:
        """Send one batch until it is answered, split or given up on."""
        transport = self._transport
        if transport is None:
            transport = self._transport = Transport(self.settings)
        attempt = 0
        while True:
            outcome = transport.post(batch_body(parts))
            verdict = outcome.verdict
            if verdict is Verdict.DELIVERED:
                self._count("batches")
                self._count("bytes_sent", sum(len(p) for p in parts))
                self._read_results(outcome, len(parts))
                return
            if verdict is Verdict.TOO_LARGE and len(parts) == 1:
                smaller = _harder(parts[0])
                if smaller is not None:  # one event, still too large for this server
                    self._count("truncated")
                    log_once("truncated-harder", "Lunary: 413 on one event; sending it cut")
                    self._deliver([smaller])
                    return
            if verdict is Verdict.TOO_LARGE or verdict is Verdict.REJECTED:
                self._split_or_give_up(parts, outcome)
                return
            if verdict is Verdict.UNAUTHORIZED:
                self._give_up(parts, outcome)
                return
            attempt += 1
            if verdict is Verdict.SERVER_ERROR and attempt > self._policy.max_retries:
                self._split_or_give_up(parts, outcome)
                return
            if self._deadline is not None and time.monotonic() >= self._deadline:
                self._give_up(parts, outcome)
                return
            self._count("retries")
            log_once(
                f"retry:{outcome.status}",
                "Lunary: sending failed (%s), retrying with backoff",
                outcome.status or outcome.detail,
                level=logging.INFO,
            )
            self._sleep(self._policy.delay(attempt - 1, outcome.retry_after))

    def _split_or_give_up(self, parts: list[bytes], outcome: Outcome) -> None:
        """Halve a refused batch until the offending event is alone, then give that one up."""
        if len(parts) > 1:
            middle = len(parts) // 2
            self._deliver(parts[:middle])
            self._deliver(parts[middle:])
        else:
            self._give_up(parts, outcome)

    def _sleep(self, seconds: float) -> None:
        if self._deadline is not None:
            seconds = min(seconds, max(0.0, self._deadline - time.monotonic()))
        self._stop.wait(seconds)

    def _read_results(self, outcome: Outcome, n_sent: int) -> None:
        if not outcome.results:  # an answer without results: the batch was taken
            self._count("sent", n_sent)
            return
        sent = duplicates = failed = 0
        for result in outcome.results:
            if result.get("success") is True:
                sent += 1
            elif result.get("error") == ALREADY_EXISTS:
                duplicates += 1
            else:
                failed += 1
                error = str(result.get("error"))[:120]
                log_once(f"refused:{error}", "Lunary refused an event: %s", error)
        with self._count_lock:
            self._counts["sent"] += sent + duplicates
            self._counts["duplicates"] += duplicates
            self._counts["failed"] += failed

    def _give_up(self, parts: list[bytes], outcome: Outcome) -> None:
        self._count("failed", len(parts))
        reason = f"HTTP {outcome.status}" if outcome.status else outcome.detail
        log_once(
            f"give-up:{outcome.verdict.value}:{outcome.status}",
            "Lunary: %d event(s) not delivered (%s: %s)",
            len(parts),
            reason,
            outcome.detail if outcome.status else "",
        )


def _harder(part: bytes) -> bytes | None:
    """``part`` re-encoded to a quarter of its size, or None when that is below the floor."""
    target = len(part) // 4
    if target < _HARDER_FLOOR:
        return None
    try:
        event = json.loads(part)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    data = encode_event(event, target)
    return data if data is not None and len(data) < len(part) else None
