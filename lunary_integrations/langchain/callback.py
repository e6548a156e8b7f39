"""``LunaryCallbackHandler``: LangChain / LangGraph callbacks -> Lunary run events.

Two halves. On the caller's thread, a callback only stamps the time, snapshots what the
caller could still mutate (``snapshot.py``: containers copied, messages and documents kept by
reference) and queues a :data:`~lunary_integrations.ingest.Deferred` item: a few
microseconds, no I/O, so the handler runs inline in async code and never raises into the
chain. On the ingest worker, the ``_built_*`` methods translate (``messages``, ``usage``,
``model``, ``payloads``, ``attributes``) and a shared :class:`RunTracer` decides parents,
hidden runs, sampling and ignore rules, in the order the callbacks happened.

Construction is free (``LUNARY_TRACING`` builds a new instance on every ``configure()``
call): settings are resolved on the first event, and every handler with the same settings and
ignore rules shares one tracer, hence one run map. That is also what keeps a run seen by two
handlers (one passed explicitly, one from ``lunary_tracing``) from being sent twice: the
tracer ignores a second start of a run that is open.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from langchain_core.prompt_values import PromptValue

from .. import __version__
from .._log import log_once
from ..config import Settings, resolve
from ..events import WireEvent
from ..ingest import Client, get_client
from ..serialize import to_jsonable, truncate_text
from ..snapshot import Snapshotter
from ..tracer import MISSING, IgnoreRule, RunTracer, guard
from ..tracer import callback_failed as _failed
from .attributes import (
    chain_run_type,
    control_flow_output,
    is_control_flow,
    split_metadata,
    split_tags,
)
from .messages import chat_input, message_to_openai, text_input
from .model import class_name, model_name, model_params
from .payloads import documents as documents_output
from .payloads import render, tool_output
from .usage import usage_from_result

RUNTIME = f"lunary-integrations/{__version__} langchain"

#: Size of one custom event or agent step kept in the enclosing run's end metadata.
_ANNOTATION_BYTES = 2_000

_RuleKey = tuple[tuple[str | None, str | None, bool], ...]
_tracers: dict[tuple[Settings, int, _RuleKey], RunTracer] = {}
_tracers_lock = threading.Lock()
_MAX_TRACERS = 64

#: LangChain's value types: LangChain never mutates them once a callback has them, so the
#: snapshot keeps them by reference and the worker renders them.
VALUE_TYPES = (BaseMessage, PromptValue, Document, LLMResult, Generation, ChatGeneration)

#: First streamed token per open LLM run (run id -> time), read by its end: kept on the
#: caller's side so that a token costs a dict lookup, not a queued item. Bounded.
_first_tokens: dict[Any, float] = {}
_MAX_FIRST_TOKENS = 10_000


@functools.lru_cache(maxsize=16)
def _snapshotter(max_field_bytes: int) -> Snapshotter:
    return Snapshotter(VALUE_TYPES, max_field_bytes)


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


class LunaryCallbackHandler(BaseCallbackHandler):
    """Sends every LangChain / LangGraph run it sees to Lunary.

    >>> chain.invoke(x, config={"callbacks": [LunaryCallbackHandler()]})  # doctest: +SKIP

    ``app_id``/``public_key``, ``api_url`` and any other setting (``sample_rate=``,
    ``mask=``...) override ``configure()`` and the environment. ``ignore`` takes the official
    SDK's rules (``[{"type": "chain", "name": "Runnable*"}]``). ``tags`` and ``metadata`` are
    added to every run; ``user_id``/``user_props`` apply when the run's metadata names no user
    (``metadata={"user_id": ...}`` in the run config wins).
    """

    run_inline = True  # no I/O: async runs call it directly instead of via an executor
    raise_error = False

    def __init__(
        self,
        app_id: str | None = None,
        *,
        public_key: str | None = None,
        api_url: str | None = None,
        ignore: Iterable[IgnoreRule | Mapping[str, Any]] | None = None,
        tags: Sequence[str] | None = None,
        user_id: str | None = None,
        user_props: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        self._tracer: RunTracer | None = None
        #: The tracer's client, set on the first event.
        self._client: Client | None = None
        self._snap: Snapshotter = _snapshotter(65_536)
        self._tags = list(tags) if tags else None
        self._user_id = user_id
        self._user_props = dict(user_props) if user_props else None
        self._metadata = dict(metadata) if metadata else None
        self._ignore = [IgnoreRule.parse(rule) for rule in ignore] if ignore else []
        explicit = {k: v for k, v in settings.items() if v is not None}
        if app_id is not None or public_key is not None:
            explicit["public_key"] = public_key if public_key is not None else app_id
        if api_url is not None:
            explicit["api_url"] = api_url
        # Explicit settings are checked now (a bad value is the caller's ValueError); without
        # any, nothing is resolved before the first event.
        self._settings: Settings | None = resolve(**explicit) if explicit else None
        # Bound once: a queued item would otherwise hold a new bound method, one more object
        # for the garbage collector to track until the worker builds the item.
        for name in _BUILDERS:
            setattr(self, name, getattr(self, name))

    # ------------------------------------------------------------------ plumbing

    @property
    def tracer(self) -> RunTracer:
        tracer = self._tracer
        if tracer is None:
            tracer = self._tracer = self._make_tracer()
        return tracer

    def _make_tracer(self) -> RunTracer:
        try:
            settings = self._settings if self._settings is not None else resolve()
        except ValueError as exc:  # a bad environment must not break the user's runs
            log_once("lc-settings", "Lunary: invalid settings (%s); tracing is off", exc)
            settings = Settings(enabled=False)
        return shared_tracer(settings, self._ignore)

    def _connect(self) -> Client:
        """First event: resolve the tracer; its client is the queue from now on."""
        tracer = self.tracer
        self._snap = _snapshotter(tracer.settings.max_field_bytes)
        self._client = tracer.client
        return tracer.client

    # ------------------------------------------------------------------ caller side
    # Each callback: stamp, snapshot, queue. Inputs and outputs are the user's data: a full
    # snapshot. ``tags``, ``metadata`` and invocation params are LangChain's own per-run
    # list and dicts of settings: a shallow copy is enough.

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            client = self._client or self._connect()
            if client.enabled:
                snap = self._snap
                # A streamed chain (LangChain passes ``defers_inputs``, True or False) starts
                # with the placeholder ``{"input": ""}``; its real input comes with its end.
                client.enqueue(
                    (
                        self._built_chain_start,
                        run_id,
                        parent_run_id,
                        time.time(),
                        kwargs.get("name"),
                        serialized,
                        MISSING if "defers_inputs" in kwargs else snap(inputs),
                        _copy(tags),
                        _copy(metadata),
                    )
                )
        except Exception as exc:
            _failed("on_chain_start", exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            client = self._client or self._connect()
            if client.enabled:
                snap = self._snap
                inputs = kwargs.get("inputs", MISSING)
                client.enqueue(
                    (
                        self._built_chain_end,
                        run_id,
                        None,
                        time.time(),
                        snap(outputs),
                        MISSING if inputs is MISSING else snap(inputs),
                    )
                )
        except Exception as exc:
            _failed("on_chain_end", exc)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._queue_error(self._built_failure, run_id, error)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._queue_llm_start(
            chat_input, serialized, messages, run_id, parent_run_id, tags, metadata, kwargs
        )

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._queue_llm_start(
            text_input, serialized, prompts, run_id, parent_run_id, tags, metadata, kwargs
        )

    def _queue_llm_start(
        self,
        to_input: Callable[[Any], Any],
        serialized: Any,
        payload: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        try:
            client = self._client or self._connect()
            if client.enabled:
                snap = self._snap
                invocation = kwargs.get("invocation_params")
                client.enqueue(
                    (
                        self._built_llm_start,
                        run_id,
                        parent_run_id,
                        time.time(),
                        to_input,
                        snap(payload),
                        serialized,
                        kwargs.get("name"),
                        _copy(invocation),
                        _copy(tags),
                        _copy(metadata),
                    )
                )
        except Exception as exc:
            _failed("on_llm_start", exc)

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        # Only the first token matters: time to first token, sent with the run's end.
        try:
            if run_id not in _first_tokens:
                if len(_first_tokens) >= _MAX_FIRST_TOKENS:  # runs that never ended
                    _first_tokens.clear()
                _first_tokens[run_id] = time.time()
        except Exception as exc:
            _failed("on_llm_new_token", exc)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            first_token = _first_tokens.pop(run_id, None) if _first_tokens else None
            client = self._client or self._connect()
            if client.enabled:
                client.enqueue(
                    (
                        self._built_llm_end,
                        run_id,
                        None,
                        time.time(),
                        self._snap(response),
                        first_token,
                    )
                )
        except Exception as exc:
            _failed("on_llm_end", exc)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if _first_tokens:
            _first_tokens.pop(run_id, None)
        self._queue_error(self._built_error, run_id, error)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            client = self._client or self._connect()
            if client.enabled:
                snap = self._snap
                client.enqueue(
                    (
                        self._built_tool_start,
                        run_id,
                        parent_run_id,
                        time.time(),
                        kwargs.get("name"),
                        serialized,
                        snap(inputs) if inputs is not None else snap(input_str),
                        inputs is not None,
                        kwargs.get("tool_call_id"),
                        _copy(tags),
                        _copy(metadata),
                    )
                )
        except Exception as exc:
            _failed("on_tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._queue_end(self._built_tool_end, run_id, output, "on_tool_end")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._queue_error(self._built_failure, run_id, error)  # interrupt() is control flow

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            client = self._client or self._connect()
            if client.enabled:
                snap = self._snap
                client.enqueue(
                    (
                        self._built_retriever_start,
                        run_id,
                        parent_run_id,
                        time.time(),
                        kwargs.get("name"),
                        serialized,
                        snap(query),
                        _copy(tags),
                        _copy(metadata),
                    )
                )
        except Exception as exc:
            _failed("on_retriever_start", exc)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._queue_end(self._built_retriever_end, run_id, documents, "on_retriever_end")

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._queue_error(self._built_error, run_id, error)

    def _queue_end(
        self, build: Callable[..., WireEvent | None], run_id: UUID, output: Any, where: str
    ) -> None:
        try:
            client = self._client or self._connect()
            if client.enabled:
                client.enqueue((build, run_id, None, time.time(), self._snap(output)))
        except Exception as exc:
            _failed(where, exc)

    def _queue_error(
        self, build: Callable[..., WireEvent | None], run_id: UUID, error: BaseException
    ) -> None:
        # The exception is kept as it is: its message and traceback do not change.
        try:
            client = self._client or self._connect()
            if client.enabled:
                client.enqueue((build, run_id, None, time.time(), error))
        except Exception as exc:
            _failed("on_error", exc)

    # ------------------------------------------------------------------ annotations
    # These carry no run of their own: they are kept in the enclosing run's end metadata
    # (bounded), rather than sent as events the dashboard would not show.

    @guard
    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Legacy ``AgentExecutor``: each step's tool and input, on the executor's run."""
        step = {
            "tool": getattr(action, "tool", None),
            "toolInput": getattr(action, "tool_input", None),
            "log": getattr(action, "log", None),
        }
        self._annotate(run_id, "agentActions", step, append=True)

    @guard
    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        log = getattr(finish, "log", None)
        if isinstance(log, str) and log:
            self._annotate(run_id, "agentFinish", truncate_text(log, _ANNOTATION_BYTES))

    @guard
    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """``dispatch_custom_event``: kept as ``customEvents`` (at most 20, each ~2 KB) on the
        run that dispatched it."""
        self._annotate(run_id, "customEvents", {"name": name, "data": data}, append=True)

    @guard
    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        attempt = getattr(retry_state, "attempt_number", None)
        if isinstance(attempt, int):
            self._annotate(run_id, "retryAttempts", attempt)

    def _annotate(self, run_id: UUID, key: str, value: Any, *, append: bool = False) -> None:
        client = self._client or self._connect()
        if not client.enabled:
            return
        if not isinstance(value, (int, str)):  # rare and small: serialized now
            value = to_jsonable(value, _ANNOTATION_BYTES)
        client.enqueue((self._built_annotation, run_id, None, key, value, append))

    # ------------------------------------------------------------------ worker side
    # ``build(run_key, parent_key, *args)`` of the queued items: translate, then let the
    # tracer decide. They run in callback order, on the ingest worker (or synchronously
    # under a test double of the client).

    def _built_chain_start(
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

    def _built_chain_end(
        self, run_id: UUID, _parent: None, at: float, outputs: Any, inputs: Any
    ) -> WireEvent | None:
        return self.tracer.end_event(
            _sid(run_id),
            render(outputs),
            input=MISSING if inputs is MISSING else render(inputs),
            timestamp=at,
        )

    def _built_llm_start(
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

    def _built_llm_end(
        self, run_id: UUID, _parent: None, at: float, response: Any, first_token: float | None
    ) -> WireEvent | None:
        tracer = self.tracer
        rid = _sid(run_id)
        if first_token is not None:
            tracer.mark_first_token(rid, at=first_token)
        return tracer.end_event(
            rid, llm_output(response), tokens_usage=usage_from_result(response), timestamp=at
        )

    def _built_tool_start(
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

    def _built_tool_end(
        self, run_id: UUID, _parent: None, at: float, output: Any
    ) -> WireEvent | None:
        return self.tracer.end_event(_sid(run_id), tool_output(output), timestamp=at)

    def _built_retriever_start(
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

    def _built_retriever_end(
        self, run_id: UUID, _parent: None, at: float, documents: Any
    ) -> WireEvent | None:
        return self.tracer.end_event(_sid(run_id), documents_output(documents), timestamp=at)

    def _built_error(
        self, run_id: UUID, _parent: None, at: float, error: BaseException
    ) -> WireEvent | None:
        return self.tracer.error_event(_sid(run_id), error, timestamp=at)

    def _built_failure(
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
        return self._built_error(run_id, _parent, at, error)

    def _built_annotation(
        self, run_id: UUID, _parent: None, key: str, value: Any, append: bool
    ) -> None:
        self.tracer.annotate(_sid(run_id), key, value, append=append)

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


_BUILDERS = tuple(n for n in vars(LunaryCallbackHandler) if n.startswith("_built_"))


def _copy(value: Any) -> Any:
    """A shallow copy of LangChain's run tags, metadata and invocation params."""
    if not value:
        return None
    kind = type(value)
    return kind(value) if kind is list or kind is dict else to_jsonable(value, 65_536)


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


__all__ = ["RUNTIME", "LunaryCallbackHandler", "llm_output", "shared_tracer"]
