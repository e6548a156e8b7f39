"""``LunaryCallbackHandler``: LangChain / LangGraph callbacks -> Lunary run events.

The handler is thin: translators (``messages``, ``usage``, ``model``, ``payloads``,
``attributes``) turn callback arguments into values, and a shared :class:`RunTracer` decides
parents, hidden runs, sampling and ignore rules, then queues the event. No I/O happens here,
so the handler runs inline in async code (no executor hop) and never raises into the chain.

Construction is free (``LUNARY_TRACING`` builds a new instance on every ``configure()``
call): settings are resolved on the first event, and every handler with the same settings and
ignore rules shares one tracer, hence one run map. That is also what keeps a run seen by two
handlers (one passed explicitly, one from ``lunary_tracing``) from being sent twice: the
tracer ignores a second start of a run that is open.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from .. import __version__
from .._log import log_once
from ..config import Settings, resolve
from ..ingest import get_client
from ..serialize import to_jsonable, truncate_text
from ..tracer import MISSING, IgnoreRule, RunTracer, guard
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

    def _active(self) -> RunTracer | None:
        tracer = self._tracer or self.tracer
        return tracer if tracer.client.enabled else None

    def _start(
        self,
        tracer: RunTracer,
        run_id: UUID,
        parent_run_id: UUID | None,
        run_type: str,
        name: str | None,
        input: Any,
        tags: Sequence[str] | None,
        metadata: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None = None,
        extra_metadata: Mapping[str, Any] | None = None,
    ) -> None:
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
        tracer.start(
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
        )

    def _fail(self, tracer: RunTracer, run_id: UUID, error: BaseException) -> None:
        rid = _sid(run_id)
        if is_control_flow(error):  # a LangGraph interrupt or command: not a failure
            tracer.end(rid, control_flow_output(error), metadata={"interrupted": True})
        else:
            tracer.error(rid, error)

    # ------------------------------------------------------------------ chains

    @guard
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
        tracer = self._active()
        if tracer is None:
            return
        name = _label(kwargs.get("name"), serialized, "chain")
        # A streamed chain (LangChain passes ``defers_inputs``, True or False) starts with the
        # placeholder ``{"input": ""}``; its real input comes with its end.
        payload = MISSING if "defers_inputs" in kwargs else render(inputs)
        run_type = chain_run_type(name, metadata, parent_run_id)
        self._start(tracer, run_id, parent_run_id, run_type, name, payload, tags, metadata)

    @guard
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        tracer = self._active()
        if tracer is None:
            return
        inputs = kwargs.get("inputs", MISSING)
        tracer.end(
            _sid(run_id), render(outputs), input=MISSING if inputs is MISSING else render(inputs)
        )

    @guard
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        tracer = self._active()
        if tracer is not None:
            self._fail(tracer, run_id, error)

    # ------------------------------------------------------------------ models

    @guard
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
        tracer = self._active()
        if tracer is None:
            return
        self._start_llm(
            tracer, serialized, chat_input(messages), run_id, parent_run_id, tags, metadata, kwargs
        )

    @guard
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
        tracer = self._active()
        if tracer is None:
            return
        self._start_llm(
            tracer, serialized, text_input(prompts), run_id, parent_run_id, tags, metadata, kwargs
        )

    def _start_llm(
        self,
        tracer: RunTracer,
        serialized: Any,
        payload: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        invocation = kwargs.get("invocation_params")
        name = model_name(metadata, invocation, serialized, kwargs.get("name"))
        params = model_params(invocation, metadata)
        self._start(tracer, run_id, parent_run_id, "llm", name, payload, tags, metadata, params)

    @guard
    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        # Only the first token matters: time to first token, sent with the run's end.
        tracer = self._tracer
        if tracer is not None:
            tracer.mark_first_token(_sid(run_id))

    @guard
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        tracer = self._active()
        if tracer is None:
            return
        tracer.end(_sid(run_id), llm_output(response), tokens_usage=usage_from_result(response))

    @guard
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        tracer = self._active()
        if tracer is not None:
            tracer.error(_sid(run_id), error)

    # ------------------------------------------------------------------ tools, retrievers

    @guard
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
        tracer = self._active()
        if tracer is None:
            return
        name = _label(kwargs.get("name"), serialized, "tool")
        payload = render(inputs) if inputs is not None else input_str
        call_id = kwargs.get("tool_call_id")
        extra = {"tool_call_id": call_id} if call_id is not None else None
        self._start(
            tracer,
            run_id,
            parent_run_id,
            "tool",
            name,
            payload,
            tags,
            metadata,
            extra_metadata=extra,
        )

    @guard
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        tracer = self._active()
        if tracer is not None:
            tracer.end(_sid(run_id), tool_output(output))

    @guard
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        tracer = self._active()
        if tracer is not None:
            self._fail(tracer, run_id, error)  # interrupt() inside a tool is control flow too

    @guard
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
        tracer = self._active()
        if tracer is None:
            return
        name = kwargs.get("name")
        if not isinstance(name, str) and isinstance(metadata, Mapping):
            name = metadata.get("ls_retriever_name")
        name = _label(name, serialized, "retriever")
        self._start(tracer, run_id, parent_run_id, "retriever", name, query, tags, metadata)

    @guard
    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        tracer = self._active()
        if tracer is not None:
            tracer.end(_sid(run_id), documents_output(documents))

    @guard
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        tracer = self._active()
        if tracer is not None:
            tracer.error(_sid(run_id), error)

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
        tracer = self._tracer
        rid = _sid(run_id)
        if tracer is None or not tracer.is_open(rid):
            return
        if not isinstance(value, (int, str)):  # snapshot now: the caller may mutate it later
            value = to_jsonable(value, _ANNOTATION_BYTES)
        tracer.annotate(rid, key, value, append=append)


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
