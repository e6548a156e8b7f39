"""Framework-neutral run bookkeeping shared by the LangChain and LlamaIndex adapters.

Adapters translate framework objects into plain values (pure functions in their own
subpackages) and call :meth:`RunTracer.start`, :meth:`end` and :meth:`error`. This module
decides what reaches the server and with which parent:

* a ``parentRunId`` is sent only for a parent this tracer started and sent (the real
  server stalls 5 s on an unknown parent, then drops the link);
* hidden runs are not sent and their children hang from the nearest sent ancestor;
* sampling is decided once at the root and inherited by the whole trace;
* ignore rules (official SDK compatible) send ``__NOT_INGESTED__`` instead of content, or
  nothing at all for the run and its children with ``ignore_children``;
* ``mask`` and ``capture_content`` apply to every captured input and output;
* runs that never end are evicted (bounded memory) and counted.

No I/O, one short lock, never raises to the adapter's caller (adapters wrap their own
translation in ``guard``). ``start``/``end``/``error`` queue the event they build; the
``*_event`` forms return it instead, for adapters that build events on the ingest worker
from a snapshot taken on the caller's thread (see ``snapshot.py``; the LangChain handler).
Every run is in one :class:`RunMode`, decided at its start.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import IntEnum
from typing import Any, Literal, TypeVar, cast

from ._log import log_once, logger
from .config import Settings, resolve
from .events import NOT_INGESTED, WireEvent
from .ingest import Client, get_client
from .serialize import to_jsonable, truncate_text
from .snapshot import Later, Snapshotter

#: Sentinel for "argument not given" (``None`` is a legitimate output).
MISSING: Any = object()

_MAX_STACK_CHARS = 16_000
_MAX_METADATA_VALUE_CHARS = 2_000
#: A run's name and each tag are cut to this (the dashboard shows them on one line).
_MAX_NAME_CHARS = 1_000
_MAX_TAG_CHARS = 200

F = TypeVar("F", bound=Callable[..., Any])


def callback_failed(where: str, exc: Exception) -> None:
    """A callback's own failure: logged once per place and kind; the user's run goes on."""
    log_once(
        f"callback:{where}:{type(exc).__name__}",
        "Lunary: %s failed (%r); the run continues, its trace may be incomplete",
        where,
        exc,
    )


def guard(method: F) -> F:
    """Never let an exception escape into the user's app: log once per kind, return None."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # the user's run matters more than its trace
            callback_failed(method.__qualname__, exc)
            return None

    return cast(F, wrapper)


def tolerant(fallback: Callable[..., Any]) -> Callable[[F], F]:
    """For translators: if the user's object raises while being read, return
    ``fallback(*args)`` instead (logged once), so the run's event is still sent with what
    could be captured, rather than being lost with the whole callback."""

    def decorate(translate: F) -> F:
        @functools.wraps(translate)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return translate(*args, **kwargs)
            except Exception as exc:
                log_once(
                    f"translate:{translate.__qualname__}:{type(exc).__name__}",
                    "Lunary: could not read a value in %s (%r); sending what could be captured",
                    translate.__qualname__,
                    exc,
                )
                return fallback(*args)

        return cast(F, wrapper)

    return decorate


class IgnoreRule:
    """``{"type": "chain", "name": "Runnable*", "ignore_children": False}`` (globs on name)."""

    __slots__ = ("ignore_children", "name", "type")

    def __init__(
        self, type: str | None = None, name: str | None = None, ignore_children: bool = False
    ) -> None:
        if type is None and name is None:
            raise ValueError("an ignore rule needs a type, a name, or both")
        self.type = type
        self.name = name
        self.ignore_children = bool(ignore_children)

    @classmethod
    def parse(cls, rule: IgnoreRule | Mapping[str, Any]) -> IgnoreRule:
        if isinstance(rule, IgnoreRule):
            return rule
        if not isinstance(rule, Mapping):
            raise ValueError(
                f"ignore rules are dicts like {{'type': ..., 'name': ...}}, got {rule!r}"
            )
        unknown = set(rule) - {"type", "name", "ignore_children", "ignoreChildren"}
        if unknown:
            raise ValueError(f"unknown key(s) in ignore rule: {sorted(unknown)}")
        return cls(
            rule.get("type"),
            rule.get("name"),
            bool(rule.get("ignore_children", rule.get("ignoreChildren", False))),
        )

    def matches(self, run_type: str, name: str | None) -> bool:
        if self.type is not None and self.type != run_type:
            return False
        return self.name is None or (isinstance(name, str) and fnmatch.fnmatchcase(name, self.name))


class RunMode(IntEnum):
    """How a run's events are treated."""

    SENT = 0  # as captured
    FILTERED = 1  # sent, content replaced by __NOT_INGESTED__ (an ignore rule)
    HIDDEN = 2  # not sent; its children hang from its parent (internal plumbing)
    DROPPED = 3  # not sent, nor anything below it (sampled out, ignored with children)


# Module-level names: the hot path compares members by identity.
SENT, FILTERED, HIDDEN, DROPPED = RunMode.SENT, RunMode.FILTERED, RunMode.HIDDEN, RunMode.DROPPED
#: Object-valued fields serialized whole on the worker (content fields have their own path).
_OBJECT_KEYS: tuple[Literal["params"], Literal["userProps"]] = ("params", "userProps")


#: Items kept per list built with ``annotate(..., append=True)``.
_MAX_ANNOTATION_ITEMS = 20


class _Run:
    __slots__ = ("child_mode", "end_meta", "mode", "parent", "started", "type")

    def __init__(
        self,
        run_type: str,
        mode: RunMode,
        parent: str | None,
        child_mode: RunMode,
        started: float,
    ) -> None:
        self.type = run_type
        self.mode = mode
        #: The parent id sent for this run; a hidden run's children attach there too.
        self.parent = parent
        #: What this run's children start from (a hidden run passes on what it inherited).
        self.child_mode = child_mode
        self.started = started
        #: Metadata gathered while the run is open, sent with its end (the server merges it).
        self.end_meta: dict[str, Any] | None = None


class RunTracer:
    """Turns start/end/error of framework runs into Lunary wire events."""

    def __init__(
        self,
        *,
        runtime: str,
        settings: Settings | None = None,
        client: Client | None = None,
        ignore: Iterable[IgnoreRule | Mapping[str, Any]] = (),
        tags: Sequence[str] | None = None,
        user_id: str | None = None,
        user_props: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        max_open_runs: int = 10_000,
        value_types: tuple[type, ...] = (),
    ) -> None:
        self.settings = settings if settings is not None else resolve()
        self.client = client if client is not None else get_client(self.settings)
        self.runtime = runtime
        self.ignore = [IgnoreRule.parse(rule) for rule in ignore]
        self.tags = [_name(t, _MAX_TAG_CHARS) for t in tags if isinstance(t, str)] if tags else []
        self.user_id = user_id
        self.user_props = dict(user_props) if user_props else None
        self.metadata = flatten_metadata(metadata) if metadata else {}
        if max_open_runs <= 0:
            raise ValueError("max_open_runs must be positive")
        self.max_open_runs = max_open_runs
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        s = self.settings
        self._field_cap = s.max_field_bytes
        #: An ASCII ``str`` this short fits the cap whatever it escapes (6 bytes a char at
        #: most): it is its own snapshot (what ``to_jsonable`` would return), no walk needed.
        self._str_fast = (s.max_field_bytes - 2) // 6
        self._capture = s.capture_content
        self._mask = s.mask
        self._sample_rate = s.sample_rate
        self.evicted = 0
        #: What ``start``/``end`` keep of content until the worker serializes it.
        self.snapshot = Snapshotter(value_types, s.max_field_bytes)

    @property
    def enabled(self) -> bool:
        return self.client.enabled

    # ------------------------------------------------------------------ lifecycle

    # Two paths build the same events. ``start``/``end``/``error`` queue the event with its
    # content snapshotted (cheap, for the caller's thread); the worker finishes it
    # (serializes, masks, flattens: ``_finished``). ``start_event``/``end_event``/
    # ``error_event`` finish it at once and return it, for callers already off the hot path
    # (the LangChain and LlamaIndex builders run on the ingest worker).

    def start(
        self,
        run_id: str,
        parent_run_id: str | None,
        run_type: str,
        name: str | None,
        input: Any = MISSING,
        *,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        user_props: Mapping[str, Any] | None = None,
        hidden: bool = False,
        timestamp: float | None = None,
    ) -> bool:
        """Record a run start and queue its event (see :meth:`start_event`); True if an
        event was queued."""
        opened = self._open(
            run_id, parent_run_id, run_type, name, input, tags, metadata, params,
            user_id, user_props, hidden, timestamp,
        )  # fmt: skip
        if opened is None:
            return False
        event, record = opened
        snapshot = self.snapshot
        if "input" in event:
            event["input"] = snapshot(event["input"])
        if "params" in event:
            event["params"] = snapshot(event["params"])
        if "userProps" in event:
            event["userProps"] = snapshot(event["userProps"])
        return self._remember(run_id, record) and self._queue(event)

    def start_event(
        self,
        run_id: str,
        parent_run_id: str | None,
        run_type: str,
        name: str | None,
        input: Any = MISSING,
        *,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        user_props: Mapping[str, Any] | None = None,
        hidden: bool = False,
        timestamp: float | None = None,
    ) -> WireEvent | None:
        """Record a run start; returns the event to send (None: nothing to send).

        ``parent_run_id`` is the framework's parent: it is sent only if this tracer sent
        that parent (a hidden parent passes its own parent on). The user goes on roots only.
        A second start of a run that is still open is ignored (the server would refuse
        it): two handlers sharing this tracer may both see the same run.
        """
        opened = self._open(
            run_id, parent_run_id, run_type, name, input, tags, metadata, params,
            user_id, user_props, hidden, timestamp,
        )  # fmt: skip
        if opened is None:
            return None
        event, record = opened
        event = self._finished(None, None, event)  # before the run is remembered
        return event if self._remember(run_id, record) else None

    def end(
        self,
        run_id: str,
        output: Any = MISSING,
        *,
        input: Any = MISSING,
        tokens_usage: Mapping[str, int | None] | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: float | None = None,
    ) -> bool:
        """Record a run's end and queue its event (see :meth:`end_event`)."""
        event = self._close(run_id, output, input, tokens_usage, metadata, timestamp)
        if event is None:
            return False
        snapshot = self.snapshot
        if "output" in event:
            event["output"] = snapshot(event["output"])
        if "input" in event:
            event["input"] = snapshot(event["input"])
        if "metadata" in event:
            event["metadata"] = snapshot(event["metadata"])
        return self._queue(event)

    def end_event(
        self,
        run_id: str,
        output: Any = MISSING,
        *,
        input: Any = MISSING,
        tokens_usage: Mapping[str, int | None] | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: float | None = None,
    ) -> WireEvent | None:
        """Record a run's end; returns its event. ``input`` replaces the start's input (the
        server stores an end's input), for inputs known only at the end (a streamed chain)."""
        event = self._close(run_id, output, input, tokens_usage, metadata, timestamp)
        return self._finished(None, None, event) if event is not None else None

    def error(
        self, run_id: str, error: BaseException | str, *, timestamp: float | None = None
    ) -> bool:
        """Record a run's failure and queue its event (see :meth:`error_event`)."""
        return self._queue(self._error(run_id, error, timestamp))

    def error_event(
        self, run_id: str, error: BaseException | str, *, timestamp: float | None = None
    ) -> WireEvent | None:
        """Record a run's failure, with the exception's own traceback; returns its event."""
        event = self._error(run_id, error, timestamp)
        return self._finished(None, None, event) if event is not None else None

    def _queue(self, event: WireEvent | None) -> bool:
        if event is None:
            return False
        return self.client.enqueue(
            (self._finished, event["runId"], event.get("parentRunId"), event)
        )

    def _finished(self, _run: Any, _parent: Any, event: WireEvent) -> WireEvent:
        """Serialize, mask and flatten what the event holds as given or as snapshots.
        Never raises (every step has its own fallback)."""
        if "input" in event:
            event["input"] = self._content(event["input"])
        if "output" in event:
            event["output"] = self._content(event["output"])
        for key in _OBJECT_KEYS:
            if key in event:
                value = _resolved(event[key])
                if value:
                    event[key] = to_jsonable(value, self._field_cap)
                else:
                    del event[key]
        meta = event.get("metadata")
        if meta is not None:
            event["metadata"] = flatten_metadata(meta)
        error = event.get("error")
        if error is not None:
            event["error"] = (
                error_info(error) if isinstance(error, BaseException) else {"message": _text(error)}
            )
        return event

    def _open(
        self,
        run_id: str,
        parent_run_id: str | None,
        run_type: str,
        name: str | None,
        input: Any,
        tags: Iterable[str] | None,
        metadata: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        user_id: str | None,
        user_props: Mapping[str, Any] | None,
        hidden: bool,
        timestamp: float | None,
    ) -> tuple[WireEvent, _Run] | None:
        """The start event with its content as given, and the run to remember once the
        event is safely built; None if nothing is to be sent (the run is remembered then)."""
        runs = self._runs
        if run_id in runs:
            return None
        parent = runs.get(parent_run_id) if parent_run_id is not None else None
        if parent is None:  # a root for us: unseen parents are never sent
            sent_parent = None
            inherited = self._root_mode(run_id)
        else:
            sent_parent = parent.parent if parent.mode is HIDDEN else parent_run_id
            inherited = parent.child_mode
        mode = inherited
        if mode is SENT or mode is FILTERED:
            if hidden:
                mode = HIDDEN
            elif self.ignore:
                mode = self._apply_ignore(run_type, name, mode)
        child_mode = inherited if mode is HIDDEN else mode
        now = time.time() if timestamp is None else timestamp
        record = _Run(run_type, mode, sent_parent, child_mode, now)
        if mode is not SENT and mode is not FILTERED:
            self._remember(run_id, record)
            return None

        # The event is built before the run is remembered: if building it fails (a hostile
        # value), no child is later sent with a parent the server never received.
        event: WireEvent = {
            "type": run_type,
            "event": "start",
            "runId": run_id,
            "timestamp": now,
            "runtime": self.runtime,
        }
        if name is not None:
            event["name"] = _name(name)
        if sent_parent is not None:
            event["parentRunId"] = sent_parent
        if input is not MISSING:
            self._put_content(event, "input", input, mode)
        all_tags = self._tags(tags)
        if all_tags:
            event["tags"] = all_tags
        meta = flatten_metadata(metadata) if metadata else None  # flat: a copy already
        if self.metadata:
            meta = {**self.metadata, **meta} if meta else dict(self.metadata)
        if meta:
            event["metadata"] = meta
        if params:
            event["params"] = params
        if sent_parent is None:  # the user belongs on the root; children inherit it
            uid = user_id if user_id is not None else self.user_id
            if uid is not None:
                event["userId"] = _name(uid)
                props = user_props if user_props is not None else self.user_props
                if props:
                    event["userProps"] = props
        return event, record

    def _close(
        self,
        run_id: str,
        output: Any,
        input: Any,
        tokens_usage: Mapping[str, int | None] | None,
        metadata: Mapping[str, Any] | None,
        timestamp: float | None,
    ) -> WireEvent | None:
        """The end event with its content as given; None if the run sends nothing."""
        run = self._forget(run_id)
        if run is None or (run.mode is not SENT and run.mode is not FILTERED):
            return None
        event: WireEvent = {
            "type": run.type,
            "event": "end",
            "runId": run_id,
            "timestamp": time.time() if timestamp is None else timestamp,
        }
        if output is not MISSING:
            self._put_content(event, "output", output, run.mode)
        if input is not MISSING:
            self._put_content(event, "input", input, run.mode)
        if tokens_usage:
            usage = {k: v for k, v in tokens_usage.items() if v is not None}
            if usage:
                event["tokensUsage"] = usage
        if run.end_meta:
            metadata = {**run.end_meta, **metadata} if metadata else run.end_meta
        if metadata:
            event["metadata"] = metadata
        return event

    def _error(
        self, run_id: str, error: BaseException | str, timestamp: float | None
    ) -> WireEvent | None:
        """The error event, with the exception itself (its traceback does not change)."""
        run = self._forget(run_id)
        if run is None or (run.mode is not SENT and run.mode is not FILTERED):
            return None
        return {
            "type": run.type,
            "event": "error",
            "runId": run_id,
            "timestamp": time.time() if timestamp is None else timestamp,
            "error": error,
        }

    def mark_first_token(
        self, run_id: str, key: str = "timeToFirstToken", at: float | None = None
    ) -> None:
        """Note, once, the milliseconds from the run's start to ``at`` (default: now), sent
        with its end."""
        run = self._runs.get(run_id)
        if run is not None and (run.end_meta is None or key not in run.end_meta):
            now = time.time() if at is None else at
            self.annotate(run_id, key, round((now - run.started) * 1000))

    def annotate(self, run_id: str, key: str, value: Any, *, append: bool = False) -> bool:
        """Add ``key: value`` to the metadata sent with an open run's end; with ``append`` the
        values gather in a list (at most 20). False if the run is not open."""
        run = self._runs.get(run_id)
        if run is None:
            return False
        meta = run.end_meta
        if meta is None:
            meta = run.end_meta = {}
        if not append:
            meta[key] = value
            return True
        items = meta.get(key)
        if not isinstance(items, list):
            items = meta[key] = []
        if len(items) < _MAX_ANNOTATION_ITEMS:
            items.append(value)
        return True

    def is_open(self, run_id: str) -> bool:
        return run_id in self._runs

    def run_type(self, run_id: str) -> str | None:
        run = self._runs.get(run_id)
        return run.type if run is not None else None

    def open_runs(self) -> int:
        return len(self._runs)

    # ------------------------------------------------------------------ helpers

    def _root_mode(self, run_id: str) -> RunMode:
        rate = self._sample_rate
        if rate >= 1.0:
            return SENT
        if rate <= 0.0:
            return DROPPED
        # Deterministic in the root id, so every process that sees this trace agrees.
        return SENT if zlib.crc32(run_id.encode()) / 0xFFFFFFFF < rate else DROPPED

    def _apply_ignore(self, run_type: str, name: str | None, mode: RunMode) -> RunMode:
        for rule in self.ignore:
            if rule.matches(run_type, name):
                return DROPPED if rule.ignore_children else FILTERED
        return mode

    def _put_content(
        self, event: WireEvent, key: Literal["input", "output"], value: Any, mode: RunMode
    ) -> None:
        if mode is FILTERED:
            event[key] = NOT_INGESTED
        elif self._capture:
            event[key] = value

    def _content(self, value: Any) -> Any:
        """An input or output as sent: serialized within the field cap, then masked."""
        if value is NOT_INGESTED:  # an ignore rule's placeholder: nothing to serialize or mask
            return value
        if type(value) is Later:
            value = _resolved(value)
        if type(value) is str and len(value) <= self._str_fast and value.isascii():
            snapshot: Any = value
        else:
            snapshot = to_jsonable(value, self._field_cap)
        if self._mask is not None:
            try:
                snapshot = to_jsonable(self._mask(snapshot), self._field_cap)
            except Exception as exc:  # fail closed: a broken mask must not leak content
                log_once("mask", "Lunary: mask raised %r; content replaced by a placeholder", exc)
                snapshot = NOT_INGESTED
        return snapshot

    def _tags(self, tags: Iterable[str] | None) -> list[str] | None:
        if not tags:
            return self.tags or None
        # The server stores a list of strings: anything else is dropped, long tags are cut.
        given = [_name(t, _MAX_TAG_CHARS) for t in tags if isinstance(t, str)]
        if not self.tags:
            return given or None
        merged = list(self.tags)
        merged.extend(t for t in given if t not in merged)
        return merged

    def _remember(self, run_id: str, run: _Run) -> bool:
        """Store an open run; False if that id is open already (the first start wins)."""
        with self._lock:
            runs = self._runs
            if run_id in runs:
                return False
            if len(runs) >= self.max_open_runs:
                runs.pop(next(iter(runs)))  # the oldest open run: it will never be ended
                self.evicted += 1
                log_once(
                    "evicted",
                    "Lunary: more than %d runs open at once; the oldest are forgotten",
                    self.max_open_runs,
                )
            runs[run_id] = run
            return True

    def _forget(self, run_id: str) -> _Run | None:
        with self._lock:
            return self._runs.pop(run_id, None)


def _resolved(value: Any) -> Any:
    """A :class:`Later` computed (None, logged once, if it raises); anything else as is."""
    if type(value) is not Later:
        return value
    try:
        return value()
    except Exception as exc:
        log_once(
            f"later:{type(exc).__name__}",
            "Lunary: could not read a value (%r); sending what could be captured",
            exc,
        )
        return None


def error_info(error: BaseException) -> dict[str, str]:
    """``{message, stack}`` from the exception's own traceback (not the caller's stack)."""
    try:  # a hostile __str__ must not cost the run its error event
        message = str(error) or type(error).__name__
    except Exception:
        message = f"<{type(error).__name__}>"
    try:
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    except Exception:
        stack = f"{type(error).__name__}: {message}"
    return {
        "message": truncate_text(message, _MAX_STACK_CHARS),
        "stack": truncate_text(stack, _MAX_STACK_CHARS),
    }


def flatten_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The server keeps only flat metadata: scalars and lists of scalars stay, anything else
    becomes a JSON string (it would otherwise be dropped silently). Never raises."""
    flat: dict[str, Any] = {}
    try:
        items = list(metadata.items())
    except Exception:  # a hostile mapping: no metadata rather than no run
        return flat
    for key, value in items:
        if value is None:
            continue
        k = key if isinstance(key, str) else _text(key)
        try:
            if isinstance(value, (str, bool, int, float)):
                flat[k] = _scalar(value)
                continue
            if isinstance(value, (list, tuple)) and all(
                isinstance(v, (str, bool, int, float)) for v in value
            ):
                flat[k] = [_scalar(v) for v in value]
                continue
        except Exception:
            pass
        try:
            text = json.dumps(to_jsonable(value, _MAX_METADATA_VALUE_CHARS), allow_nan=False)
        except Exception:
            text = "<unserializable>"
        flat[k] = text
    return flat


def _name(value: Any, limit: int = _MAX_NAME_CHARS) -> str:
    """A name or tag: a plain ``str`` of at most ``limit`` characters."""
    text = value if type(value) is str else _text(value)
    return text if len(text) <= limit else truncate_text(text, limit)


def _text(value: Any) -> str:
    """``str(value)`` that never raises (a hostile ``__str__``/``__repr__``), bounded."""
    try:
        text = str(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return truncate_text(text if type(text) is str else str(text), _MAX_METADATA_VALUE_CHARS)


def _scalar(value: str | bool | int | float) -> Any:
    if isinstance(value, str):
        return truncate_text(str.__str__(value), _MAX_METADATA_VALUE_CHARS)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and infinities are not JSON
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return to_jsonable(value, _MAX_METADATA_VALUE_CHARS)  # as the serializer does: text
    return value


__all__ = [
    "MISSING",
    "IgnoreRule",
    "RunMode",
    "RunTracer",
    "error_info",
    "flatten_metadata",
    "guard",
    "logger",
]
