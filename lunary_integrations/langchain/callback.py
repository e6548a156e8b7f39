"""``LunaryCallbackHandler``: LangChain / LangGraph callbacks -> Lunary run events.

Two halves. On the caller's thread (this module), a callback only stamps the time,
snapshots what the caller could still mutate (``snapshot.py``: containers copied, messages
and documents kept by reference) and returns the item to queue: ``(builder, run_id,
parent_run_id, *args)``. :func:`queued`, the one skeleton around every callback, queues it
(a few microseconds, no I/O, so the handler runs inline in async code) and never lets an
exception into the chain. On the ingest worker, the builder of that item (``builders.py``,
named after the callback: ``on_tool_start`` -> ``Builders.tool_start``) translates, and a
shared :class:`RunTracer` decides parents, hidden runs, sampling and ignore rules, in the
order the callbacks happened.

Construction is free (``LUNARY_TRACING`` builds a new instance on every ``configure()``
call): settings are resolved on the first event, and every handler with the same settings and
ignore rules shares one tracer, hence one run map. That is also what keeps a run seen by two
handlers (one passed explicitly, one from ``lunary_tracing``) from being sent twice: the
tracer ignores a second start of a run that is open.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from langchain_core.prompt_values import PromptValue

from ..config import Settings, resolve
from ..ingest import Client, Deferred
from ..serialize import to_jsonable, truncate_text
from ..snapshot import Snapshotter
from ..tracer import MISSING, IgnoreRule, RunTracer
from ..tracer import callback_failed as _failed
from .builders import RUNTIME, Builders, llm_output, shared_tracer
from .messages import chat_input, text_input

#: Size of one custom event or agent step kept in the enclosing run's end metadata.
_ANNOTATION_BYTES = 2_000

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


C = TypeVar("C", bound=Callable[..., Any])


def queued(callback: C) -> C:
    """The caller side of every callback, written once: connect on the first event; while
    tracing is on, queue the item ``callback`` returns (``None``: nothing to queue); never
    raise into the user's chain (a failure is logged once per callback and kind)."""
    where = callback.__name__

    @functools.wraps(callback)
    def queue(self: LunaryCallbackHandler, *args: Any, **kwargs: Any) -> None:
        try:
            client = self._client or self._connect()
            if client.enabled:
                item = callback(self, *args, **kwargs)
                if item is not None:
                    client.enqueue(item)
        except Exception as exc:
            _failed(where, exc)

    return cast(C, queue)


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
        #: The tracer's client, set on the first event.
        self._client: Client | None = None
        self._snap: Snapshotter = _snapshotter(65_536)
        self._ignore = [IgnoreRule.parse(rule) for rule in ignore] if ignore else []
        explicit = {k: v for k, v in settings.items() if v is not None}
        if app_id is not None or public_key is not None:
            explicit["public_key"] = public_key if public_key is not None else app_id
        if api_url is not None:
            explicit["api_url"] = api_url
        # Explicit settings are checked now (a bad value is the caller's ValueError); without
        # any, nothing is resolved before the first event.
        settings_now: Settings | None = resolve(**explicit) if explicit else None
        #: The worker side: what each queued item is built by.
        self._b = Builders(
            settings=settings_now,
            ignore=self._ignore,
            tags=list(tags) if tags else None,
            user_id=user_id,
            user_props=dict(user_props) if user_props else None,
            metadata=dict(metadata) if metadata else None,
        )

    # ------------------------------------------------------------------ plumbing

    @property
    def tracer(self) -> RunTracer:
        """The tracer this handler's events go through (resolved on first use)."""
        return self._b.tracer

    @tracer.setter
    def tracer(self, tracer: RunTracer) -> None:
        self._b.tracer = tracer

    def _connect(self) -> Client:
        """First event: resolve the tracer; its client is the queue from now on."""
        tracer = self.tracer
        self._snap = _snapshotter(tracer.settings.max_field_bytes)
        self._client = tracer.client
        return tracer.client

    # ------------------------------------------------------------------ caller side
    # Each callback: stamp, snapshot, return the item ``(builder, run_id, parent_run_id,
    # *args)`` for ``builder(run_id, parent_run_id, *args)``. Inputs and outputs are the user's
    # data: a full snapshot. ``tags``, ``metadata`` and invocation params are LangChain's own
    # per-run list and dicts of settings: a shallow copy is enough.

    @queued
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
    ) -> Deferred:
        # A streamed chain (LangChain passes ``defers_inputs``, True or False) starts with the
        # placeholder ``{"input": ""}``; its real input comes with its end.
        return (
            self._b.chain_start,
            run_id,
            parent_run_id,
            time.time(),
            kwargs.get("name"),
            serialized,
            MISSING if "defers_inputs" in kwargs else self._snap(inputs),
            _copy(tags),
            _copy(metadata),
        )

    @queued
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> Deferred:
        snap = self._snap
        inputs = kwargs.get("inputs", MISSING)
        return (
            self._b.chain_end,
            run_id,
            None,
            time.time(),
            snap(outputs),
            MISSING if inputs is MISSING else snap(inputs),
        )

    @queued
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> Deferred:
        # The exception is kept as it is: its message and traceback do not change.
        return (self._b.failure, run_id, None, time.time(), error)

    @queued
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
    ) -> Deferred:
        return self._llm_start(
            chat_input, serialized, messages, run_id, parent_run_id, tags, metadata, kwargs
        )

    @queued
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
    ) -> Deferred:
        return self._llm_start(
            text_input, serialized, prompts, run_id, parent_run_id, tags, metadata, kwargs
        )

    def _llm_start(
        self,
        to_input: Callable[[Any], Any],
        serialized: Any,
        payload: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        kwargs: Mapping[str, Any],
    ) -> Deferred:
        return (
            self._b.llm_start,
            run_id,
            parent_run_id,
            time.time(),
            to_input,
            self._snap(payload),
            serialized,
            kwargs.get("name"),
            _copy(kwargs.get("invocation_params")),
            _copy(tags),
            _copy(metadata),
        )

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        # Only the first token matters: time to first token, sent with the run's end. Not a
        # queued item: a token costs a dict lookup.
        try:
            if run_id not in _first_tokens:
                if len(_first_tokens) >= _MAX_FIRST_TOKENS:  # runs that never ended
                    _first_tokens.clear()
                _first_tokens[run_id] = time.time()
        except Exception as exc:
            _failed("on_llm_new_token", exc)

    @queued
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> Deferred:
        first_token = _first_tokens.pop(run_id, None) if _first_tokens else None
        return (self._b.llm_end, run_id, None, time.time(), self._snap(response), first_token)

    @queued
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> Deferred:
        if _first_tokens:
            _first_tokens.pop(run_id, None)
        return (self._b.error, run_id, None, time.time(), error)

    @queued
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
    ) -> Deferred:
        return (
            self._b.tool_start,
            run_id,
            parent_run_id,
            time.time(),
            kwargs.get("name"),
            serialized,
            self._snap(inputs) if inputs is not None else self._snap(input_str),
            inputs is not None,
            kwargs.get("tool_call_id"),
            _copy(tags),
            _copy(metadata),
        )

    @queued
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> Deferred:
        return (self._b.tool_end, run_id, None, time.time(), self._snap(output))

    @queued
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> Deferred:
        return (self._b.failure, run_id, None, time.time(), error)  # interrupt() is control flow

    @queued
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
    ) -> Deferred:
        return (
            self._b.retriever_start,
            run_id,
            parent_run_id,
            time.time(),
            kwargs.get("name"),
            serialized,
            self._snap(query),
            _copy(tags),
            _copy(metadata),
        )

    @queued
    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> Deferred:
        return (self._b.retriever_end, run_id, None, time.time(), self._snap(documents))

    @queued
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> Deferred:
        return (self._b.error, run_id, None, time.time(), error)

    # ------------------------------------------------------------------ annotations
    # These carry no run of their own: they are kept in the enclosing run's end metadata
    # (bounded), rather than sent as events the dashboard would not show.

    @queued
    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> Deferred:
        """Legacy ``AgentExecutor``: each step's tool and input, on the executor's run."""
        step = {
            "tool": getattr(action, "tool", None),
            "toolInput": getattr(action, "tool_input", None),
            "log": getattr(action, "log", None),
        }
        return _annotation(self._b, run_id, "agentActions", step, append=True)

    @queued
    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> Deferred | None:
        log = getattr(finish, "log", None)
        if isinstance(log, str) and log:
            return _annotation(
                self._b, run_id, "agentFinish", truncate_text(log, _ANNOTATION_BYTES)
            )
        return None

    @queued
    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> Deferred:
        """``dispatch_custom_event``: kept as ``customEvents`` (at most 20, each ~2 KB) on the
        run that dispatched it."""
        return _annotation(
            self._b, run_id, "customEvents", {"name": name, "data": data}, append=True
        )

    @queued
    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> Deferred | None:
        attempt = getattr(retry_state, "attempt_number", None)
        if isinstance(attempt, int):
            return _annotation(self._b, run_id, "retryAttempts", attempt)
        return None


def _annotation(
    builders: Builders, run_id: UUID, key: str, value: Any, *, append: bool = False
) -> Deferred:
    if not isinstance(value, (int, str)):  # rare and small: serialized now
        value = to_jsonable(value, _ANNOTATION_BYTES)
    return (builders.annotation, run_id, None, key, value, append)


def _copy(value: Any) -> Any:
    """A shallow copy of LangChain's run tags, metadata and invocation params."""
    if not value:
        return None
    kind = type(value)
    return kind(value) if kind is list or kind is dict else to_jsonable(value, 65_536)


__all__ = ["RUNTIME", "LunaryCallbackHandler", "llm_output", "queued", "shared_tracer"]
