"""The worker side of ``LunaryCallbackHandler``: queued callback items -> Lunary run events.

Each callback of the handler queues ``(builder, run_id, parent_run_id, *args)``; the ingest
worker calls ``builder(run_id, parent_run_id, *args)`` in callback order. A builder
translates what the callback snapshotted (``messages``, ``usage``, ``model``, ``payloads``,
``attributes``) and lets the shared :class:`RunTracer` decide parents, hidden runs, sampling
and ignore rules. A callback and its builder are linked by their names (``on_tool_start``
queues :meth:`Builders.tool_start`) and by the order of the builder's parameters, which
``tests/test_langchain_builders.py`` checks for every callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from uuid import UUID

from .. import __version__
from .._log import log_once
from ..config import Settings, resolve
from ..events import WireEvent
from ..ingest import get_client
from ..tracer import MISSING, IgnoreRule, RunTracer
from .attributes import (
    chain_run_type,
    control_flow_output,
    is_control_flow,
    split_metadata,
    split_tags,
)
from .messages import message_to_openai
from .model import class_name, model_name, model_params
from .payloads import documents as documents_output
from .payloads import render, tool_output
from .usage import usage_from_result

RUNTIME = f"lunary-integrations/{__version__} langchain"

_RuleKey = tuple[tuple[str | None, str | None, bool], ...]
_tracers: dict[tuple[Settings, int, _RuleKey], RunTracer] = {}
_tracers_lock = threading.Lock()
_MAX_TRACERS = 64


def shared_tracer(settings: Settings, ignore: Sequence[IgnoreRule] = ()) -> RunTracer:
    """The process-wide tracer for these settings and ignore rules (created on first use,
    replaced when its ingest client was shut down)."""
    rules: _RuleKey = tuple((r.type, r.name, r.ignore_children) for r in ignore)
    key = (settings, id(settings.mask), rules)  # ``mask`` is not part of Settings equality
    tracer = _tracers.get(key)
    if tracer is not None and not _stale(tracer, settings):
        return tracer
    with _tracers_lock:
        tracer = _tracers.get(key)
        if tracer is None or _stale(tracer, settings):
            if len(_tracers) >= _MAX_TRACERS:
                _tracers.pop(next(iter(_tracers)))
            tracer = RunTracer(runtime=RUNTIME, settings=settings, ignore=ignore)
            _tracers[key] = tracer
        return tracer


def _stale(tracer: RunTracer, settings: Settings) -> bool:
    # shutdown() forgets clients; a tracer still holding one would drop everything.
    return tracer.client.enabled and get_client(settings) is not tracer.client


#: ``str(UUID)`` is a Python-level method (~0.6 µs) and a run id is needed as text at its start,
#: as a parent, and at its end: remembered by its int (a C-level hash), bounded.
_ID_TEXT: dict[int, str] = {}
_MAX_ID_TEXT = 8192


def _sid(run_id: Any) -> str:
    """``str(run_id)``, cached for ``UUID`` ids."""
    if type(run_id) is not UUID:
        return str(run_id)
    key = run_id.int
    text = _ID_TEXT.get(key)
    if text is None:
        if len(_ID_TEXT) >= _MAX_ID_TEXT:
            _ID_TEXT.clear()
        text = _ID_TEXT[key] = str(run_id)
    return text


B = TypeVar("B", bound=Callable[..., Any])


def builder(method: B) -> B:
    """Marks a method of :class:`Builders` as the target of a queued callback item."""
    method.__lunary_builder__ = True  # type: ignore[attr-defined]
    return method


class Builders:
    """One handler's worker side: its tracer (resolved on first use) and its defaults (tags,
    user and metadata added to every run).

    The builders are bound once, in ``__init__``: a queued item would otherwise hold a new
    bound method, one more object for the garbage collector to track until it is built."""

    def __init__(
        self,
        *,
        settings: Settings | None,
        ignore: Sequence[IgnoreRule],
        tags: list[str] | None,
        user_id: str | None,
        user_props: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        self._settings = settings
        self.ignore = ignore
        self._tracer: RunTracer | None = None
        self._tags = tags
        self._user_id = user_id
        self._user_props = user_props
        self._metadata = metadata
        for name in NAMES:
            setattr(self, name, getattr(self, name))

    @property
    def tracer(self) -> RunTracer:
        tracer = self._tracer
        if tracer is None:
            tracer = self._tracer = self._make_tracer()
        return tracer

    @tracer.setter
    def tracer(self, tracer: RunTracer) -> None:
        self._tracer = tracer

    def _make_tracer(self) -> RunTracer:
        try:
            settings = self._settings if self._settings is not None else resolve()
        except ValueError as exc:  # a bad environment must not break the user's runs
            log_once("lc-settings", "Lunary: invalid settings (%s); tracing is off", exc)
            settings = Settings(enabled=False)
        return shared_tracer(settings, self.ignore)

    # ------------------------------------------------------------------ builders
    # ``builder(run_id, parent_run_id, *args)``: the queued item without its first slot.

    @builder
    def chain_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        at: float,
        name: Any,
        serialized: Any,
        inputs: Any,
        tags: Any,
        metadata: Any,
    ) -> WireEvent | None:
        label = _label(name, serialized, "chain")
        payload = MISSING if inputs is MISSING else render(inputs)
        run_type = chain_run_type(label, metadata, parent_run_id)
        return self._start(run_id, parent_run_id, at, run_type, label, payload, tags, metadata)

    @builder
    def chain_end(
        self, run_id: UUID, _parent: None, at: float, outputs: Any, inputs: Any
    ) -> WireEvent | None:
        return self.tracer.end_event(
            _sid(run_id),
            render(outputs),
            input=MISSING if inputs is MISSING else render(inputs),
            timestamp=at,
        )

    @builder
    def llm_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        at: float,
        to_input: Callable[[Any], Any],
        payload: Any,
        serialized: Any,
        name: Any,
        invocation: Any,
        tags: Any,
        metadata: Any,
    ) -> WireEvent | None:
        model = model_name(metadata, invocation, serialized, name)
        params = model_params(invocation, metadata)
        return self._start(
            run_id, parent_run_id, at, "llm", model, to_input(payload), tags, metadata, params
        )

    @builder
    def llm_end(
        self, run_id: UUID, _parent: None, at: float, response: Any, first_token: float | None
    ) -> WireEvent | None:
        tracer = self.tracer
        rid = _sid(run_id)
        if first_token is not None:
            tracer.mark_first_token(rid, at=first_token)
        return tracer.end_event(
            rid, llm_output(response), tokens_usage=usage_from_result(response), timestamp=at
        )

    @builder
    def tool_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        at: float,
        name: Any,
        serialized: Any,
        payload: Any,
        structured: bool,
        call_id: Any,
        tags: Any,
        metadata: Any,
    ) -> WireEvent | None:
        label = _label(name, serialized, "tool")
        extra = {"tool_call_id": call_id} if call_id is not None else None
        return self._start(
            run_id,
            parent_run_id,
            at,
            "tool",
            label,
            render(payload) if structured else payload,
            tags,
            metadata,
            extra_metadata=extra,
        )

    @builder
    def tool_end(self, run_id: UUID, _parent: None, at: float, output: Any) -> WireEvent | None:
        return self.tracer.end_event(_sid(run_id), tool_output(output), timestamp=at)

    @builder
    def retriever_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        at: float,
        name: Any,
        serialized: Any,
        query: Any,
        tags: Any,
        metadata: Any,
    ) -> WireEvent | None:
        if not isinstance(name, str) and isinstance(metadata, Mapping):
            name = metadata.get("ls_retriever_name")
        label = _label(name, serialized, "retriever")
        return self._start(run_id, parent_run_id, at, "retriever", label, query, tags, metadata)

    @builder
    def retriever_end(
        self, run_id: UUID, _parent: None, at: float, documents: Any
    ) -> WireEvent | None:
        return self.tracer.end_event(_sid(run_id), documents_output(documents), timestamp=at)

    @builder
    def error(
        self, run_id: UUID, _parent: None, at: float, error: BaseException
    ) -> WireEvent | None:
        return self.tracer.error_event(_sid(run_id), error, timestamp=at)

    @builder
    def failure(
        self, run_id: UUID, _parent: None, at: float, error: BaseException
    ) -> WireEvent | None:
        """A chain's or tool's error; a LangGraph interrupt or command is not a failure."""
        if is_control_flow(error):
            return self.tracer.end_event(
                _sid(run_id),
                control_flow_output(error),
                metadata={"interrupted": True},
                timestamp=at,
            )
        return self.error(run_id, _parent, at, error)

    @builder
    def annotation(self, run_id: UUID, _parent: None, key: str, value: Any, append: bool) -> None:
        self.tracer.annotate(_sid(run_id), key, value, append=append)

    # ------------------------------------------------------------------ shared

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        at: float,
        run_type: str,
        name: str | None,
        input: Any,
        tags: Sequence[str] | None,
        metadata: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None = None,
        extra_metadata: Mapping[str, Any] | None = None,
    ) -> WireEvent | None:
        meta, uid, props = split_metadata(metadata)
        if uid is None:
            uid = self._user_id
        if props is None:
            props = self._user_props
        if self._metadata:
            meta = {**self._metadata, **meta}
        if extra_metadata:
            meta.update(extra_metadata)
        run_tags, hidden = split_tags(tags)
        if self._tags:
            run_tags.extend(t for t in self._tags if t not in run_tags)
        return self.tracer.start_event(
            _sid(run_id),
            _sid(parent_run_id) if parent_run_id is not None else None,
            run_type,
            name,
            input,
            tags=run_tags,
            metadata=meta,
            params=params,
            user_id=uid,
            user_props=props,
            hidden=hidden,
            timestamp=at,
        )


#: The builders' names, in the order they are declared.
NAMES = tuple(n for n, f in vars(Builders).items() if getattr(f, "__lunary_builder__", False))


def _label(name: Any, serialized: Any, default: str) -> str:
    """A run's name: LangChain's ``name`` (``serialized`` is often None), else the class."""
    if isinstance(name, str) and name:
        return name
    return class_name(serialized) or default


def llm_output(response: Any) -> Any:
    """The assistant message of one LLM run (a list when the model returned ``n > 1``)."""
    generations = getattr(response, "generations", None)
    if not generations or not generations[0]:
        return None
    outputs = [_generation(g) for g in generations[0]]
    return outputs[0] if len(outputs) == 1 else outputs


def _generation(generation: Any) -> Any:
    message = getattr(generation, "message", None)
    if message is not None:
        out = message_to_openai(message)
        out["role"] = "assistant"
        return out
    return {"role": "assistant", "content": getattr(generation, "text", None)}


__all__ = ["NAMES", "RUNTIME", "Builders", "builder", "llm_output", "shared_tracer"]
