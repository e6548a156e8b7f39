"""LlamaIndex instrumentation: a span handler on the root dispatcher, an event handler on the
LLM callbacks' dispatcher.

    from lunary_integrations.llama_index import instrument
    instrument()            # every query, chat, retrieval, tool, agent and workflow is traced

The root dispatcher sees every span of every LlamaIndex (and ``workflows``) component,
whenever it was built, so this is the recommended integration; the legacy
``LunaryCallbackHandler`` only sees components built with its ``CallbackManager``. Of the
~40 event types only the LLM start/end/exception events matter here, and LlamaIndex sends
every one of them from one dispatcher (``llama_index.core.llms.callbacks``, the decorators
every LLM's ``chat``/``complete`` go through): the event handler sits there, so the ~12 other
events of a query never call it (one call fewer each, ~10% of the tax in situ). The span
handler takes the place of the root's ``NullSpanHandler``, a placeholder that does nothing
but is called twice for every span (about half a no-op handler pair's cost per query, in
situ); ``uninstrument()`` puts it back.

How spans become runs (see ``kinds.py`` for the mapping and the noise rules):

* parents come from the ``parent_span_id`` LlamaIndex gives each span (a ContextVar, so
  correct across ``await``, concurrent tasks and ``llama_index``'s context-copying threads);
  nothing here keeps ambient state of its own;
* an ``llm`` run starts with its span, from the call's arguments (the messages or prompt and
  per-call params ``LLMChatStartEvent``/``LLMCompletionStartEvent`` repeat; the model id is
  read on the worker, from ``to_payload()`` as the event's ``model_dict``), and ends on the
  matching end event: a streaming call's span exits when the generator is returned, its end
  event only after the stream is consumed. A stream that breaks sends ``ExceptionEvent``:
  the run becomes an ``error``. An LLM whose override lost LlamaIndex's decorator sends no
  events: its run ends with its span;
* a dropped span (an exception) is an ``error``; cancellation and workflow control flow
  (``CancelledError``, ``WorkflowDone``...) end the run normally.

Handlers run inside the user's call, so they only decide which spans become runs and queue
snapshots (``snapshot.py``); the run events are built on the ingest worker, in span order.
No I/O, and every entry point catches its own exceptions (the dispatcher would swallow one
silently; ours are logged once).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from llama_index.core.instrumentation import (  # type: ignore[attr-defined]  # re-exported, no __all__
    get_dispatcher,
)
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.span import BaseSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler, NullSpanHandler
from llama_index.core.llms import callbacks as llm_callbacks
from pydantic import Field

from .. import __version__
from ..config import resolve
from ..snapshot import KEEP, Later
from ..tracer import MISSING, IgnoreRule, RunTracer, guard
from ..tracer import callback_failed as _failed
from . import messages as msg
from . import translate as tr
from .ids import to_run_id
from .kinds import BY_KIND, KINDS_BY_LENGTH, Result, SpanKind, classify_span
from .usage import tokens_usage

RUNTIME = f"lunary-integrations/{__version__} llama-index"

_now = time.time

#: ``kinds.classify_span``'s cache, read directly: a span enter is the hottest call here.
_KINDS_BY_LENGTH = KINDS_BY_LENGTH
#: ``translate.output``'s cache (result type -> its converter), read directly at span exits.
_OUTPUTS = tr.OUTPUTS

_HIDDEN, _CHAIN = SpanKind.HIDDEN, SpanKind.CHAIN
# The kinds' table (``kinds.SPECS``), one tuple per field the hot paths read, indexed by kind:
# a tuple item instead of an attribute lookup per span.
_RESOLVE = tuple(spec.resolve for spec in BY_KIND)
_LLM_CALL = tuple(spec.llm_call for spec in BY_KIND)
_RUNS_STEPS = tuple(spec.runs_steps for spec in BY_KIND)
_RESULT = tuple(spec.result for spec in BY_KIND)
_ON_LLM_EVENTS, _NODES, _TOOL_OUTPUT, _COUNTS = (
    Result.LLM_EVENTS,
    Result.NODES,
    Result.TOOL_OUTPUT,
    Result.COUNTS,
)


#: The only events that matter: a start event says an end event will follow (a stream's
#: comes after its span exits); LLM runs end on the others.
_LLM_EVENTS = frozenset(
    {
        LLMChatStartEvent,
        LLMCompletionStartEvent,
        LLMChatEndEvent,
        LLMCompletionEndEvent,
        ExceptionEvent,
    }
)


class _Span:
    """What we remember about an open span. Made without ``__init__`` (see ``enter``): a class
    without one is instantiated in C, where an ``__init__`` costs a special-method lookup and
    a nested interpreter call, half the cost of a record."""

    __slots__ = (
        "attach",
        "decorated",
        "exited",
        "kind",
        "owner",
        "owner_kind",
        "run_id",
        "workflow",
    )

    #: The span id (made a run id on the worker); "" for a hidden span: never sent.
    run_id: str
    kind: SpanKind
    #: The run its children attach to: this one, or a hidden root span's own parent.
    attach: str | None
    #: The instance of the nearest sent run (this one if sent; running, so alive anyway), and
    #: its kind: a span of the same instance and kind below it is a duplicate (CustomLLM
    #: chat -> complete) and is hidden.
    owner: Any
    owner_kind: SpanKind
    workflow: type | None  # runs of workflows (agents): the workflow class (for its steps)
    # LLM runs are remembered until both their span's exit and their end event came:
    decorated: bool  # its start event came: an end event will follow
    exited: bool  # its span exited, or its end event came


class _Core:
    """The span/event logic shared by both handlers (plain Python: fast attribute access)."""

    def __init__(self, tracer: RunTracer, all_spans: bool, max_open_spans: int) -> None:
        self.tracer = tracer
        self.all_spans = all_spans
        self.max_open_spans = max_open_spans
        #: Hidden spans take the fast path in ``enter`` while fewer spans than this are open.
        self._hide_below = 0 if all_spans else max_open_spans
        self.spans: dict[str, _Span] = {}
        self._evict_lock = threading.Lock()
        self.enabled = tracer.client.enabled
        self._client = tracer.client
        # Bound methods, read once: the hot paths call them for every run.
        self._snap = tracer.snapshot.value
        self._snap_arguments = tracer.snapshot.arguments
        self._kinds = tracer.snapshot.kinds
        # Bound once: each queued item would otherwise hold a new bound method.
        for name in (
            "_built_start",
            "_built_end",
            "_built_nodes_end",
            "_built_error",
        ):
            setattr(self, name, getattr(self, name))

    # ------------------------------------------------------------------ spans
    # On the caller's thread: only which spans become runs, and their parents (a dict of
    # small records); the runs' contents are snapshots, their events built on the worker.
    # Span ids are kept as LlamaIndex gives them and made run ids on the worker.

    def enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        parent_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> None:
        """``span_enter``: the dispatcher calls it directly (see :class:`LunarySpanHandler`)."""
        try:
            spans = self.spans
            parent = spans.get(parent_id)  # type: ignore[arg-type]  # a root's None: no parent
            try:  # the cache filled by ``classify_span``: a hit is checked against the label
                label, kind, lo, hi = _KINDS_BY_LENGTH[type(instance)][len(id_)]
                if not lo <= id_ < hi:  # does not start with "Class.method-"
                    label, kind = classify_span(id_, instance, tags)
            except KeyError:
                label, kind = classify_span(id_, instance, tags)
            if not kind and parent is not None and len(spans) < self._hide_below:  # _HIDDEN
                # Most spans: hidden, they share their parent's record (see below).
                spans[id_] = parent
                return
            resolve = _RESOLVE[kind]
            if resolve is not None:  # workflow steps: decided by the workflow running them
                kind = resolve(parent.workflow if parent is not None else None, label)
            if self.all_spans:
                if kind == _HIDDEN:
                    kind = _CHAIN
            elif (
                kind != _HIDDEN
                and parent is not None
                and instance is not None
                and parent.owner is instance
                and parent.owner_kind == kind
            ):
                kind = _HIDDEN  # the same component calling itself (chat -> complete)

            parent_run = parent.attach if parent is not None else parent_id

            if len(spans) >= self.max_open_spans:
                self._evict()
            if kind == _HIDDEN:
                # Not sent: the span shares its parent's record, so its children attach to the
                # nearest sent ancestor. A record is its own span's only under its own id
                # (``run_id``): the exits and events of the spans sharing it are ignored.
                if parent is not None:
                    spans[id_] = parent
                    return
                span = spans[id_] = _Span()
                span.run_id, span.kind, span.attach = "", _HIDDEN, parent_run
                span.owner, span.owner_kind, span.workflow = None, _HIDDEN, None
                span.decorated = span.exited = False
                return

            span = spans[id_] = _Span()  # set here, not in a function: one call fewer per run
            span.run_id = span.attach = id_
            span.kind = kind
            if instance is not None:
                span.owner, span.owner_kind = instance, kind
            elif parent is not None:
                span.owner, span.owner_kind = parent.owner, parent.owner_kind
            else:
                span.owner, span.owner_kind = None, _HIDDEN
            span.workflow = type(instance) if _RUNS_STEPS[kind] else None
            span.decorated = span.exited = False
            # Names and inputs are made on the worker, from the instance and a copy of the
            # arguments: the caller pays for one dict copy (a snapshot when a value may change).
            # Calls into other modules are avoided where a few lines do: in situ, with the
            # caches cold, each costs more than its work (benchmarks/bench_llama_index.py).
            try:
                arguments = bound_args.arguments  # a slot: cheaper than getattr()
            except AttributeError:
                arguments = None
            if type(arguments) is not dict:
                arguments = None
            elif _LLM_CALL[kind]:
                # Read on the worker (``kinds._llm_start``): the prompt (a string), the messages
                # (snapshotted), the per-call keyword arguments (copied; filtered there).
                arguments = arguments.copy()
                if type(call_kwargs := arguments.get("kwargs")) is dict:
                    arguments["kwargs"] = call_kwargs.copy()
                if "messages" in arguments:
                    arguments["messages"] = self._snap(arguments["messages"])
            else:
                kinds = self._kinds
                for value in arguments.values():
                    if kinds.get(type(value)) != KEEP:
                        arguments = self._snap_arguments(arguments, tr.SKIP_ARGS)
                        break
                else:  # the usual case: a query, a string: the values are their own snapshots
                    arguments = arguments.copy()
            self._client.enqueue(
                (self._built_start, id_, parent_run, _now(), kind, label, instance, arguments)
            )
        except Exception as exc:
            _failed("span_enter", exc)

    def exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments | None = None,
        instance: Any = None,
        result: Any = None,
        **_: Any,
    ) -> None:
        """``span_exit``: the dispatcher calls it directly (see :class:`LunarySpanHandler`)."""
        span = self.spans.pop(id_, None)  # ids are str: this cannot raise
        if span is None or span.run_id != id_:  # a hidden span (see ``enter``)
            return
        try:
            how = _RESULT[span.kind]
            if how is _ON_LLM_EVENTS:
                if not span.exited:  # else its end event came first: nothing left to do
                    self._exit_llm(id_, span, result)
                return
            build: Callable[..., Any] = self._built_end
            if how is _NODES:  # nodes: kept by reference, made dicts on the worker
                build = self._built_nodes_end
                # ``NodeWithScore`` values are kept: copying the list is their whole snapshot.
                output: Any = result.copy() if type(result) is list else self._snap(result)
            elif how is _TOOL_OUTPUT and (failure := tr.tool_error(result)) is not None:
                build, output = self._built_error, failure
            elif how is _COUNTS:
                output = tr.embed_output(result)  # a new dict of counts
            else:
                convert = _OUTPUTS.get(type(result))
                output = convert(result) if convert is not None else tr.output(result)
                if output is not MISSING and type(output) is not str:
                    output = self._snap(output)
            self._client.enqueue((build, id_, None, _now(), output))
        except Exception as exc:
            _failed("span_exit", exc)

    def _exit_llm(self, id_: str, span: _Span, result: Any) -> None:
        """An LLM span's exit before its end event."""
        if tr.is_stream(result):
            if span.decorated:  # its end event comes once the stream is consumed
                span.exited = True
                self.spans[id_] = span
            else:  # no LlamaIndex events (undecorated override): no output to wait for
                self._end(id_, MISSING)
        else:  # undecorated, or its end event did not come
            self._end(id_, result)

    def drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments | None = None,
        instance: Any = None,
        err: BaseException | None = None,
        **_: Any,
    ) -> None:
        """``span_drop``: the dispatcher calls it directly (see :class:`LunarySpanHandler`)."""
        span = self.spans.pop(id_, None)
        if span is not None and span.run_id == id_:
            self._drop(span, err)

    @guard
    def _drop(self, span: _Span, err: BaseException | None) -> None:
        if tr.is_control_flow(err):
            self._end(span.run_id, MISSING)
            return
        self._error(span.run_id, err if err is not None else "span dropped")

    # ------------------------------------------------------------------ events

    def handle(self, event: Any, **_: Any) -> None:
        """The event handler's ``handle``: the dispatcher calls it directly."""
        if type(event) not in _LLM_EVENTS:  # streamed chunks, predict events: ignored here
            return
        try:
            span_id = event.span_id
            span = self.spans.get(span_id)
            if span is None or span.run_id != span_id or _RESULT[span.kind] is not _ON_LLM_EVENTS:
                return  # not an LLM run's own event (a hidden span's below it: ignored)
            cls = type(event)
            if cls is LLMChatStartEvent or cls is LLMCompletionStartEvent:
                span.decorated = True  # the run started with its span (see ``enter``)
                return
            build: Callable[..., Any] = self._built_end
            if cls is ExceptionEvent:
                build, output = self._built_error, event.exception
            else:  # LlamaIndex does not change a response once its end event is sent
                output = event.response
            self._client.enqueue((build, span_id, None, _now(), output))
            if span.exited:
                self.spans.pop(span_id, None)
            else:
                span.exited = True  # the span exit that follows only forgets it
        except Exception as exc:
            _failed("event", exc)

    # ------------------------------------------------------------------ helpers

    # ``enter``, ``exit``, ``handle``, ``_end`` and ``_error`` queue deferred items; the
    # tracer's decisions (sampling, ignore rules, parents it never sent) and the events are
    # made on the worker, in the order the spans happened. ``output`` is a snapshot, a
    # ``Later``, or an LLM's response (which LlamaIndex does not change once returned).

    def _end(self, run_id: str, output: Any) -> None:
        self._client.enqueue((self._built_end, run_id, None, _now(), output))

    def _error(self, run_id: str, error: BaseException | str) -> None:
        self._client.enqueue((self._built_error, run_id, None, _now(), error))

    def _built_start(
        self,
        run_id: str,
        parent_run: str | None,
        at: float,
        kind: SpanKind,
        label: str,
        instance: Any,
        arguments: dict[str, Any] | None,
    ) -> Any:
        """A run's start, read by its kind's ``start`` (``kinds.SPECS``)."""
        spec = BY_KIND[kind]
        call = SimpleNamespace(arguments=arguments)  # what the readers read
        try:
            name, value, params = spec.start(instance, label, call)
        except Exception as exc:  # a component whose attributes raise: still a run
            _failed("span_enter", exc)
            name, value, params = label, MISSING, None
        return self.tracer.start_event(
            to_run_id(run_id),
            to_run_id(parent_run) if parent_run is not None else None,
            spec.run_type,
            name,
            value,
            params=params,
            timestamp=at,
        )

    def _built_end(self, span_id: str, _parent: None, at: float, output: Any) -> Any:
        run_id = to_run_id(span_id)
        if self.tracer.run_type(run_id) == "llm":
            usage = tokens_usage(output) if output is not MISSING else None
            output = output if output is MISSING else msg.response_message(output)
            return self.tracer.end_event(run_id, output, tokens_usage=usage, timestamp=at)
        return self.tracer.end_event(run_id, output, timestamp=at)

    def _built_nodes_end(self, span_id: str, _parent: None, at: float, nodes: Any) -> Any:
        return self.tracer.end_event(to_run_id(span_id), Later(tr.nodes, nodes), timestamp=at)

    def _built_error(self, span_id: str, _parent: None, at: float, error: Any) -> Any:
        return self.tracer.error_event(to_run_id(span_id), error, timestamp=at)

    def _evict(self) -> None:
        spans = self.spans
        with self._evict_lock:  # spans that never exit (abandoned streams): oldest out
            while len(spans) >= self.max_open_spans:
                try:
                    spans.pop(next(iter(spans)))
                except (StopIteration, KeyError, RuntimeError):
                    break


class LunarySpanHandler(BaseSpanHandler[BaseSpan]):
    """Turns LlamaIndex spans into Lunary runs (keeps no ``open_spans`` of its own)."""

    # A plain (excluded) field, not a private attribute: pydantic serves private attributes
    # through ``__getattr__``, too slow for a call per span.
    core: Any = Field(default=None, exclude=True, repr=False)

    def __init__(self, core: _Core) -> None:
        super().__init__()
        self.core = core
        # Disabled (no key, LUNARY_ENABLED=false): spans are not even looked at.
        enter = core.enter if core.enabled else _ignore
        _bind(self, span_enter=enter, span_exit=core.exit, span_drop=core.drop)

    @classmethod
    def class_name(cls) -> str:
        return "LunarySpanHandler"

    # The dispatcher calls these three directly (bound to the core's methods per instance,
    # see ``_bind``); the base class's bookkeeping (a pydantic span object per call, a lock)
    # is skipped because the core keeps its own.
    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.core.enter(id_, bound_args, instance, parent_id, tags)

    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> None:
        self.core.exit(id_, bound_args, instance, result)

    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        self.core.drop(id_, bound_args, instance, err)

    def new_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        self.span_enter(id_, bound_args, instance, parent_span_id, tags)
        return None

    def prepare_to_exit_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        self.span_exit(id_, bound_args, instance, result)
        return None

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        self.span_drop(id_, bound_args, instance, err)
        return None


class LunaryEventHandler(BaseEventHandler):
    """Completes LLM runs from LlamaIndex's LLM start/end/exception events."""

    core: Any = Field(default=None, exclude=True, repr=False)

    def __init__(self, core: _Core) -> None:
        super().__init__()
        self.core = core
        _bind(self, handle=core.handle)

    @classmethod
    def class_name(cls) -> str:
        return "LunaryEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.core.handle(event)


def _ignore(*args: Any, **kwargs: Any) -> None:
    pass


def _bind(handler: Any, **methods: Any) -> None:
    """Shadow the handler's methods with the core's, on the instance: the dispatcher calls
    them for every span and event of every query, and one Python frame per call instead of
    two is a measurable part of the tracing tax (``benchmarks/bench_llama_index.py``).
    Set past pydantic's ``__setattr__``: they are not fields, and are never serialized."""
    for name, method in methods.items():
        object.__setattr__(handler, name, method)


# --------------------------------------------------------------------------- install

_install_lock = threading.Lock()
_installed: tuple[LunarySpanHandler, LunaryEventHandler] | None = None
#: The root's ``NullSpanHandler`` that the installed span handler stands in for, if any.
_placeholder: BaseSpanHandler[Any] | None = None


def instrument(
    *,
    tags: Sequence[str] | None = None,
    user_id: str | None = None,
    user_props: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    ignore: Iterable[IgnoreRule | Mapping[str, Any]] = (),
    all_spans: bool = False,
    max_open_spans: int = 10_000,
    **settings: Any,
) -> None:
    """Trace every LlamaIndex component of this process into Lunary.

    ``tags``/``user_id``/``user_props``/``metadata`` go on every trace; ``ignore`` takes
    rules like ``{"type": "retriever"}`` or ``{"name": "MockLLM*", "ignore_children": True}``;
    ``all_spans=True`` sends every LlamaIndex span, plumbing included (debugging).
    Other keyword arguments are settings (``public_key``, ``api_url``, ``sample_rate``...).

    Idempotent: while instrumented, further calls change nothing (call :func:`uninstrument`
    first to change options). Raises ``ValueError`` for bad settings or ignore rules.
    """
    global _installed, _placeholder
    with _install_lock:
        if _installed is not None:
            return
        if max_open_spans <= 0:
            raise ValueError("max_open_spans must be positive")
        tracer = RunTracer(
            runtime=RUNTIME,
            settings=resolve(**settings),
            ignore=ignore,
            tags=tags,
            user_id=user_id,
            user_props=user_props,
            metadata=metadata,
            max_open_runs=max_open_spans,
            value_types=tr.VALUE_TYPES,
        )
        core = _Core(tracer, bool(all_spans), max_open_spans)
        handlers = (LunarySpanHandler(core), LunaryEventHandler(core))
        _placeholder = _attach(handlers)
        _installed = handlers


def uninstrument() -> None:
    """Remove the handlers :func:`instrument` added (dispatchers have no removal API, so they
    are taken out of their lists, by identity) and put back the placeholder the span handler
    stood in for. Safe to call when not instrumented."""
    global _installed, _placeholder
    with _install_lock:
        if _installed is None:
            return
        _detach(_installed, _placeholder)
        _installed = _placeholder = None


def is_instrumented() -> bool:
    return _installed is not None


def _llm_event_dispatcher() -> Any:
    """Where LlamaIndex sends LLM start/end/exception events (the root if that ever moves)."""
    dispatcher = getattr(llm_callbacks, "dispatcher", None)
    return dispatcher if dispatcher is not None else get_dispatcher()


def _attach(
    handlers: tuple[LunarySpanHandler, LunaryEventHandler],
) -> BaseSpanHandler[Any] | None:
    """Install ``handlers``; returns the root's placeholder the span handler replaced (for
    :func:`_detach`), or None if the root had none and the handler was appended."""
    root = get_dispatcher()
    span_handlers = root.span_handlers
    replaced = None
    for i, handler in enumerate(span_handlers):
        if type(handler) is NullSpanHandler:
            # One item swapped, not the list resized: a dispatch in flight on another thread
            # calls one or the other, and skips no third handler.
            span_handlers[i], replaced = handlers[0], handler
            break
    else:
        root.add_span_handler(handlers[0])
    _llm_event_dispatcher().add_event_handler(handlers[1])
    return replaced


def _detach(
    handlers: tuple[LunarySpanHandler, LunaryEventHandler],
    placeholder: BaseSpanHandler[Any] | None,
) -> None:
    span_handlers = get_dispatcher().span_handlers
    i = _index(span_handlers, handlers[0])
    if i is not None:
        if placeholder is not None and not any(type(h) is NullSpanHandler for h in span_handlers):
            span_handlers[i] = placeholder  # one item swapped, as in ``_attach``
        else:
            del span_handlers[i]
    _remove(_llm_event_dispatcher().event_handlers, handlers[1])


def _index(handlers: list[Any], handler: Any) -> int | None:
    # By identity: pydantic's == would match any handler with equal fields.
    return next((i for i, h in enumerate(handlers) if h is handler), None)


def _remove(handlers: list[Any], handler: Any) -> None:
    i = _index(handlers, handler)
    if i is not None:
        del handlers[i]


__all__ = [
    "RUNTIME",
    "LunaryEventHandler",
    "LunarySpanHandler",
    "instrument",
    "is_instrumented",
    "uninstrument",
]
