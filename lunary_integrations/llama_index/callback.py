"""Lunary for LlamaIndex's legacy callback system (``CallbackManager``).

Prefer :func:`lunary_integrations.llama_index.instrument`: it sees every component through
the instrumentation dispatcher, however and whenever it was built. This handler only sees
components whose ``CallbackManager`` holds it.

``set_global_handler("lunary")`` cannot exist: LlamaIndex hard-codes the names it knows and
has no plug-in point (``ValueError: Eval mode lunary not supported``). What works::

    from llama_index.core import Settings
    from llama_index.core.callbacks import CallbackManager
    from lunary_integrations.llama_index import LunaryCallbackHandler

    Settings.callback_manager = CallbackManager([LunaryCallbackHandler()])
    # or: Settings.callback_manager.add_handler(LunaryCallbackHandler())

    # or what set_global_handler does; only CallbackManagers created AFTER this line get it:
    import llama_index.core
    llama_index.core.global_handler = LunaryCallbackHandler()

Mapping (the ``legacy_*`` fields of ``kinds.SPECS``): ``QUERY`` -> chain, ``RETRIEVE`` ->
retriever (query in, nodes out), ``LLM`` -> llm (messages or prompt, model, params, response,
token usage), ``FUNCTION_CALL`` -> tool, ``AGENT_STEP`` -> agent, ``SYNTHESIZE`` -> chain.
Other event types (chunking, node parsing,
embedding, templating, reranking...) are not sent unless ``all_events=True``; their children
hang from the nearest sent ancestor. Traces (``start_trace``/``end_trace``) add no run of
their own: each top-level event (parent ``'root'``) is the root of its trace, so a query
reads query -> retrieve, synthesize -> llm, as with :func:`instrument`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload

from .. import __version__
from ..config import resolve
from ..tracer import IgnoreRule, RunTracer, guard
from . import translate as tr
from .ids import to_run_id
from .kinds import BY_KIND, LEGACY_KINDS, legacy_value_end

RUNTIME = f"lunary-integrations/{__version__} llama-index-callbacks"

_ROOT = "root"


def _payload(payload: Any) -> Mapping[str, Any]:
    return payload if isinstance(payload, Mapping) else {}


class LunaryCallbackHandler(BaseCallbackHandler):
    """A ``BaseCallbackHandler`` sending LlamaIndex callback events to Lunary.

    Options: ``tags``, ``user_id``, ``user_props``, ``metadata``, ``ignore`` (rules like
    ``{"type": "retriever"}``), ``all_events`` (send every event type), the base class's
    ``event_starts_to_ignore``/``event_ends_to_ignore``, and settings (``public_key``,
    ``api_url``...). Never raises into LlamaIndex.
    """

    def __init__(
        self,
        *,
        event_starts_to_ignore: Iterable[CBEventType] | None = None,
        event_ends_to_ignore: Iterable[CBEventType] | None = None,
        tags: Sequence[str] | None = None,
        user_id: str | None = None,
        user_props: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        ignore: Iterable[IgnoreRule | Mapping[str, Any]] = (),
        all_events: bool = False,
        **settings: Any,
    ) -> None:
        super().__init__(
            event_starts_to_ignore=list(event_starts_to_ignore or []),
            event_ends_to_ignore=list(event_ends_to_ignore or []),
        )
        self.all_events = bool(all_events)
        self.tracer = RunTracer(
            runtime=RUNTIME,
            settings=resolve(**settings),
            ignore=ignore,
            tags=tags,
            user_id=user_id,
            user_props=user_props,
            metadata=metadata,
        )

    # ------------------------------------------------------------------ callbacks

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        self._start(event_type, payload, event_id, parent_id)
        return event_id

    def on_event_end(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        **kwargs: Any,
    ) -> None:
        self._end(event_type, payload, event_id)

    def start_trace(self, trace_id: str | None = None) -> None:
        """A trace adds no run: its top-level events are the roots."""

    def end_trace(
        self,
        trace_id: str | None = None,
        trace_map: dict[str, list[str]] | None = None,
    ) -> None:
        """Nothing to do: every event ended on its own (runs that never end are evicted)."""

    # ------------------------------------------------------------------ translation

    @guard
    def _start(self, event_type: Any, payload: Any, event_id: Any, parent_id: Any) -> None:
        tracer = self.tracer
        if not tracer.enabled or not isinstance(event_id, str) or not event_id:
            return
        event = getattr(event_type, "value", event_type)
        if event == CBEventType.EXCEPTION.value:
            return  # reported on the event it ends (its payload carries the exception)
        run_id = to_run_id(event_id)
        parent = (
            to_run_id(parent_id)
            if isinstance(parent_id, str) and parent_id and parent_id != _ROOT
            else None
        )
        p = _payload(payload)
        kind = LEGACY_KINDS.get(event)
        if kind is None:
            if not self.all_events:
                tracer.start(run_id, parent, "chain", str(event), hidden=True)
                return
            tracer.start(run_id, parent, "chain", str(event), tr.simplify_payload(p))
            return
        spec = BY_KIND[kind]
        name, value, params = spec.legacy_start(p, str(event))
        tracer.start(run_id, parent, spec.run_type, name, value, params=params)

    @guard
    def _end(self, event_type: Any, payload: Any, event_id: Any) -> None:
        tracer = self.tracer
        if not isinstance(event_id, str) or not event_id:
            return
        run_id = to_run_id(event_id)
        p = _payload(payload)
        exception = p.get(EventPayload.EXCEPTION.value)
        if isinstance(exception, BaseException):
            if tr.is_control_flow(exception):
                tracer.end(run_id)
            else:
                tracer.error(run_id, exception)
            return
        if tracer.run_type(run_id) is None:
            return
        kind = LEGACY_KINDS.get(getattr(event_type, "value", event_type))
        read = BY_KIND[kind].legacy_end if kind is not None else legacy_value_end
        output, usage, failure = read(p)
        if failure is not None:
            tracer.error(run_id, failure)
        else:
            tracer.end(run_id, output, tokens_usage=usage)


__all__ = ["LunaryCallbackHandler"]
