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

Mapping: ``QUERY`` -> chain, ``RETRIEVE`` -> retriever (query in, nodes out), ``LLM`` ->
llm (messages or prompt, model, params, response, token usage), ``FUNCTION_CALL`` -> tool,
``AGENT_STEP`` -> agent, ``SYNTHESIZE`` -> chain. Other event types (chunking, node parsing,
embedding, templating, reranking...) are not sent unless ``all_events=True``; their children
hang from the nearest sent ancestor. Traces (``start_trace``/``end_trace``) add no run of
their own: each top-level event (parent ``'root'``) is the root of its trace, so a query
reads query -> retrieve, synthesize -> llm, as with :func:`instrument`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload

from .. import __version__
from ..config import resolve
from ..tracer import MISSING, IgnoreRule, RunTracer, guard
from . import messages as msg
from . import translate as tr
from .ids import to_run_id
from .usage import tokens_usage

RUNTIME = f"lunary-integrations/{__version__} llama-index-callbacks"

_TYPES: dict[str, str] = {
    CBEventType.QUERY.value: "chain",
    CBEventType.RETRIEVE.value: "retriever",
    CBEventType.LLM.value: "llm",
    CBEventType.FUNCTION_CALL.value: "tool",
    CBEventType.AGENT_STEP.value: "agent",
    CBEventType.SYNTHESIZE.value: "chain",
}
_ROOT = "root"


def _payload(payload: Any) -> Mapping[str, Any]:
    return payload if isinstance(payload, Mapping) else {}


def _first(payload: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = payload.get(key, MISSING)
        if value is not MISSING:
            return value
    return MISSING


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
        kind = getattr(event_type, "value", event_type)
        if kind == CBEventType.EXCEPTION.value:
            return  # reported on the event it ends (its payload carries the exception)
        run_id = to_run_id(event_id)
        parent = (
            to_run_id(parent_id)
            if isinstance(parent_id, str) and parent_id and parent_id != _ROOT
            else None
        )
        run_type = _TYPES.get(kind)
        p = _payload(payload)
        if run_type is None:
            if not self.all_events:
                tracer.start(run_id, parent, "chain", str(kind), hidden=True)
                return
            tracer.start(run_id, parent, "chain", str(kind), tr.simplify_payload(p))
            return
        if run_type == "llm":
            model = p.get(EventPayload.SERIALIZED.value)
            prompt = p.get(EventPayload.PROMPT.value)
            value = (
                msg.prompt_messages(prompt)
                if prompt is not None
                else msg.messages(p.get(EventPayload.MESSAGES.value))
            )
            tracer.start(
                run_id,
                parent,
                "llm",
                tr.llm_name(model, None, "llm"),
                value,
                params=msg.call_params(
                    p.get(EventPayload.ADDITIONAL_KWARGS.value), _model_params(model)
                )
                or None,
            )
        elif run_type == "tool":
            tool = p.get(EventPayload.TOOL.value)
            name = getattr(tool, "name", None)
            tracer.start(
                run_id,
                parent,
                "tool",
                name if isinstance(name, str) and name else "tool",
                _arguments(p.get(EventPayload.FUNCTION_CALL.value)),
            )
        else:
            value = _first(p, EventPayload.QUERY_STR.value, EventPayload.MESSAGES.value)
            tracer.start(run_id, parent, run_type, str(kind), tr.simplify(value))

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
        run_type = tracer.run_type(run_id)
        if run_type is None:
            return
        if run_type == "llm":
            response = _first(p, EventPayload.RESPONSE.value, EventPayload.COMPLETION.value)
            if response is MISSING:
                tracer.end(run_id)
                return
            tracer.end(
                run_id,
                msg.response_message(response),
                tokens_usage=tokens_usage(response),
            )
        elif run_type == "retriever":
            found = p.get(EventPayload.NODES.value, MISSING)
            tracer.end(run_id, found if found is MISSING else tr.nodes(found))
        elif run_type == "tool":
            out = p.get(EventPayload.FUNCTION_OUTPUT.value, MISSING)
            failure = tr.tool_error(out)
            if failure is not None:
                tracer.error(run_id, failure)
            else:
                tracer.end(run_id, out if out is MISSING else tr.output(out))
        else:
            response = _first(p, EventPayload.RESPONSE.value, EventPayload.NODES.value)
            tracer.end(run_id, response if response is MISSING else tr.output(response))


def _model_params(model: Any) -> dict[str, Any] | None:
    if not isinstance(model, Mapping):
        return None
    return {k: model[k] for k in msg.PARAM_FIELDS if model.get(k) is not None}


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return tr.simplify(value)


__all__ = ["LunaryCallbackHandler"]
