"""LlamaIndex span kinds, each declared once in ``SPECS``.

A kind says which components' spans it covers, the run type, how the run's name and input
are read at the start, how its output is read at the end, and which legacy callback events
are that kind. ``instrumentation.py`` (spans), its worker-side builders and ``callback.py``
(the legacy ``CallbackManager``) all read the table: adding a kind is adding a
``SpanKind`` member and its ``KindSpec`` entry (OpenInference's "one registration per kind").

Default mapping (``all_spans=False``), chosen so the trace reads like the user's program:

* query engines and chat engines -> ``chain`` named ``Class.method``
  (``RetrieverQueryEngine.query``); synthesizers' ``synthesize`` -> ``chain`` (it groups
  the LLM calls of one answer, like the legacy ``SYNTHESIZE`` event);
* retrievers' ``retrieve`` -> ``retriever`` (query string in, nodes out);
* LLM ``chat``/``complete`` and their async/stream variants -> ``llm``;
* a batch of text embeddings -> ``embed``;
* tools -> ``tool`` named after the tool; ``Workflow.run`` (agents included) -> ``agent``;
* workflow steps: a step of a workflow *you* wrote -> ``chain`` named ``MyFlow.step``;
  steps of LlamaIndex's own workflows (``FunctionAgent``, ``AgentWorkflow``...) are plumbing
  and hidden, so an agent shows as agent -> llm / tool / llm;
* your own ``@dispatcher.span`` functions and other public methods -> ``chain``.

Hidden (not sent; children are re-parented to the nearest sent ancestor): private methods
(``_query``, ``_retrieve``...), node parsers and text splitters, pydantic programs
(``DefaultRefineProgram``), synthesizer internals (``get_response``), single-query embeddings,
LLM wrappers (``predict``, ``stream``, ``structured_predict``...), and an LLM span nested in
an LLM span of the same instance (a ``CustomLLM``'s ``complete`` under its own ``chat``):
the same dedupe applies to any span nested in a sent span of the same instance and kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.chat_engine.types import BaseChatEngine
from llama_index.core.node_parser.interface import NodeParser
from llama_index.core.response_synthesizers.base import BaseSynthesizer
from llama_index.core.tools.types import BaseTool
from llama_index.core.types import BasePydanticProgram
from workflows import Workflow

from ..snapshot import Later
from ..tracer import MISSING
from . import messages as msg
from . import translate as tr
from .ids import span_label
from .usage import tokens_usage


class SpanKind(IntEnum):
    """What a span is to Lunary. An IntEnum: it compares, hashes and indexes tuples as the
    int it is (C slots), so the span handler's hot path pays nothing for the names.
    ``HIDDEN`` is 0: ``not kind`` is the hot path's test for it."""

    HIDDEN = 0
    CHAIN = 1
    LLM = 2
    RETRIEVER = 3
    EMBED = 4
    TOOL = 5
    AGENT = 6
    #: A workflow step: resolved per span (``KindSpec.resolve``), never sent as such.
    STEP = 7


class Result(Enum):
    """How a span's result becomes its run's end, on the caller's thread (``exit``)."""

    #: ``translate.output`` of the result, snapshotted.
    VALUE = "value"
    #: The run ends on LlamaIndex's LLM end event (a stream's comes after its span exits).
    LLM_EVENTS = "llm_events"
    #: Retrieved nodes: kept by reference, made dicts on the worker (``translate.nodes``).
    NODES = "nodes"
    #: A ``ToolOutput``: one that reports a failure ends the run as an error.
    TOOL_OUTPUT = "tool_output"
    #: Embeddings: their count and dimensions.
    COUNTS = "counts"


@dataclass(frozen=True, slots=True)
class Components:
    """Spans of instances of ``classes``: their ``methods`` have the kind that lists this
    (None: every public method), their other methods ``others``."""

    classes: tuple[type, ...]
    methods: frozenset[str] | None = None
    others: SpanKind = SpanKind.HIDDEN


#: Worker side: ``(instance, label, call)`` -> ``(name, input, params)``; ``call.arguments``
#: is the copy of the span's arguments made at its start (None if it had none).
StartReader = Callable[[Any, str, Any], tuple[str, Any, Any]]
#: Legacy handler: ``(payload, event type)`` -> ``(name, input, params)``.
LegacyStart = Callable[[Mapping[str, Any], str], tuple[str, Any, Any]]
#: Legacy handler: ``payload`` -> ``(output, tokens usage, failure message or None)``.
LegacyEnd = Callable[[Mapping[str, Any]], tuple[Any, Any, str | None]]


# --------------------------------------------------------------------------- readers


def _call_start(instance: Any, label: str, call: Any) -> tuple[str, Any, Any]:
    return label, tr.arguments_input(call), None


def _agent_start(instance: Any, label: str, call: Any) -> tuple[str, Any, Any]:
    return label, tr.agent_input(call), None


def _retriever_start(instance: Any, label: str, call: Any) -> tuple[str, Any, Any]:
    return label, tr.retriever_input(call), None


def _tool_start(instance: Any, label: str, call: Any) -> tuple[str, Any, Any]:
    return tr.tool_name(instance, label), tr.arguments_input(call), None


def _embed_start(instance: Any, label: str, call: Any) -> tuple[str, Any, Any]:
    model = {"model_name": getattr(instance, "model_name", None)}
    return tr.llm_name(model, instance, label), tr.embed_input(call), None


def _llm_start(instance: Any, label: str, call: Any) -> tuple[str, Any, Any]:
    """The call's arguments (what LlamaIndex's start event repeats): the messages, or the
    prompt as LlamaIndex's decorator reads it, and the per-call keyword arguments over the
    model's settings (its fields do not change mid-call); the model id from
    ``to_payload()``, the start event's ``model_dict``."""
    arguments = call.arguments
    value: Any = MISSING
    call_kwargs = None
    if arguments is not None:
        call_kwargs = arguments.get("kwargs")
        if "messages" in arguments:
            value = Later(msg.messages, arguments["messages"])
        elif (prompt := msg.call_prompt(arguments)) is not None:
            value = Later(msg.prompt_messages, prompt)
    params = msg.call_params(call_kwargs, _instance_params(instance))
    return tr.llm_name(tr.llm_payload(instance), instance, label), value, params


_MAX_CACHE = 4_096
_param_fields: dict[type, tuple[str, ...]] = {}


def _instance_params(instance: Any) -> dict[str, Any]:
    cls = type(instance)
    fields = _param_fields.get(cls)
    if fields is None:  # pydantic models: read only declared fields (cheap, no errors)
        declared = getattr(cls, "model_fields", None)
        fields = tuple(n for n in msg.PARAM_FIELDS if declared is None or n in declared)
        if len(_param_fields) < _MAX_CACHE:
            _param_fields[cls] = fields
    return msg.instance_params(instance, fields)


def _first(payload: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = payload.get(key, MISSING)
        if value is not MISSING:
            return value
    return MISSING


def _legacy_query_start(payload: Mapping[str, Any], event: str) -> tuple[str, Any, Any]:
    value = _first(payload, EventPayload.QUERY_STR.value, EventPayload.MESSAGES.value)
    return event, tr.simplify(value), None


def _legacy_llm_start(payload: Mapping[str, Any], event: str) -> tuple[str, Any, Any]:
    model = payload.get(EventPayload.SERIALIZED.value)
    prompt = payload.get(EventPayload.PROMPT.value)
    value = (
        msg.prompt_messages(prompt)
        if prompt is not None
        else msg.messages(payload.get(EventPayload.MESSAGES.value))
    )
    params = msg.call_params(
        payload.get(EventPayload.ADDITIONAL_KWARGS.value), _model_params(model)
    )
    return tr.llm_name(model, None, "llm"), value, params or None


def _model_params(model: Any) -> dict[str, Any] | None:
    if not isinstance(model, Mapping):
        return None
    return {k: model[k] for k in msg.PARAM_FIELDS if model.get(k) is not None}


def _legacy_tool_start(payload: Mapping[str, Any], event: str) -> tuple[str, Any, Any]:
    name = getattr(payload.get(EventPayload.TOOL.value), "name", None)
    call = payload.get(EventPayload.FUNCTION_CALL.value)
    return name if isinstance(name, str) and name else "tool", _json_arguments(call), None


def _json_arguments(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return tr.simplify(value)


def legacy_value_end(payload: Mapping[str, Any]) -> tuple[Any, Any, str | None]:
    """A legacy event's response (or nodes) as output: the default for any kind."""
    response = _first(payload, EventPayload.RESPONSE.value, EventPayload.NODES.value)
    return (response if response is MISSING else tr.output(response)), None, None


def _legacy_llm_end(payload: Mapping[str, Any]) -> tuple[Any, Any, str | None]:
    response = _first(payload, EventPayload.RESPONSE.value, EventPayload.COMPLETION.value)
    if response is MISSING:
        return MISSING, None, None
    return msg.response_message(response), tokens_usage(response), None


def _legacy_nodes_end(payload: Mapping[str, Any]) -> tuple[Any, Any, str | None]:
    found = payload.get(EventPayload.NODES.value, MISSING)
    return (found if found is MISSING else tr.nodes(found)), None, None


def _legacy_tool_end(payload: Mapping[str, Any]) -> tuple[Any, Any, str | None]:
    out = payload.get(EventPayload.FUNCTION_OUTPUT.value, MISSING)
    failure = tr.tool_error(out)
    return (out if out is MISSING else tr.output(out)), None, failure


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Everything kind-specific, for the span handler, its worker and the legacy handler."""

    #: The Lunary run type.
    run_type: str
    #: The components whose spans are this kind (see :func:`classify`).
    components: tuple[Components, ...] = ()
    #: Worker side: the run's name, input and params at its start.
    start: StartReader = _call_start
    #: Caller side: how the span's result becomes the run's end.
    result: Result = Result.VALUE
    #: Caller side: the arguments are an LLM call's (copied; its messages snapshotted).
    llm_call: bool = False
    #: Its instance is a workflow: its steps, below it, are told builtin or the user's by it.
    runs_steps: bool = False
    #: A kind decided per span, from the workflow running it and the label (steps).
    resolve: Callable[[type | None, str], SpanKind] | None = None
    #: Legacy ``CBEventType`` values of this kind, and how their payloads are read.
    legacy_events: tuple[str, ...] = ()
    legacy_start: LegacyStart = _legacy_query_start
    legacy_end: LegacyEnd = legacy_value_end


def _resolve_step(workflow: type | None, label: str) -> SpanKind:
    """A step of LlamaIndex's own workflows (agents) is plumbing; the user's is a chain."""
    return SpanKind.HIDDEN if builtin_step(workflow, label) else SpanKind.CHAIN


LLM_METHODS = frozenset(
    {
        "chat",
        "achat",
        "stream_chat",
        "astream_chat",
        "complete",
        "acomplete",
        "stream_complete",
        "astream_complete",
    }
)

#: One entry per kind. Classification tries the entries' components in this order (the
#: first match decides); a span matching none is a ``chain``.
SPECS: dict[SpanKind, KindSpec] = {
    SpanKind.LLM: KindSpec(
        "llm",
        (Components((BaseLLM,), LLM_METHODS),),
        start=_llm_start,
        result=Result.LLM_EVENTS,
        llm_call=True,
        legacy_events=(CBEventType.LLM.value,),
        legacy_start=_legacy_llm_start,
        legacy_end=_legacy_llm_end,
    ),
    SpanKind.EMBED: KindSpec(
        "embed",
        (
            Components(
                (BaseEmbedding,),
                frozenset({"get_text_embedding_batch", "aget_text_embedding_batch"}),
            ),
        ),
        start=_embed_start,
        result=Result.COUNTS,
    ),
    SpanKind.HIDDEN: KindSpec("chain", (Components((NodeParser, BasePydanticProgram)),)),
    SpanKind.RETRIEVER: KindSpec(
        "retriever",
        (Components((BaseRetriever,), frozenset({"retrieve", "aretrieve"})),),
        start=_retriever_start,
        result=Result.NODES,
        legacy_events=(CBEventType.RETRIEVE.value,),
        legacy_end=_legacy_nodes_end,
    ),
    SpanKind.TOOL: KindSpec(
        "tool",
        (Components((BaseTool,)),),
        start=_tool_start,
        result=Result.TOOL_OUTPUT,
        legacy_events=(CBEventType.FUNCTION_CALL.value,),
        legacy_start=_legacy_tool_start,
        legacy_end=_legacy_tool_end,
    ),
    SpanKind.AGENT: KindSpec(
        "agent",
        (Components((Workflow,), frozenset({"run"}), others=SpanKind.CHAIN),),
        start=_agent_start,
        runs_steps=True,
        legacy_events=(CBEventType.AGENT_STEP.value,),
    ),
    SpanKind.CHAIN: KindSpec(
        "chain",
        (
            Components((BaseSynthesizer,), frozenset({"synthesize", "asynthesize"})),
            Components((BaseQueryEngine, BaseChatEngine)),
        ),
        legacy_events=(CBEventType.QUERY.value, CBEventType.SYNTHESIZE.value),
    ),
    SpanKind.STEP: KindSpec("chain", resolve=_resolve_step),
}

#: ``SPECS`` as a tuple indexed by kind.
BY_KIND: tuple[KindSpec, ...] = tuple(SPECS[kind] for kind in SpanKind)
#: Legacy event type -> its kind (event types not listed are hidden unless ``all_events``).
LEGACY_KINDS: dict[str, SpanKind] = {
    event: kind for kind, spec in SPECS.items() for event in spec.legacy_events
}
_MATCHERS: tuple[tuple[SpanKind, Components], ...] = tuple(
    (kind, components) for kind, spec in SPECS.items() for components in spec.components
)


# --------------------------------------------------------------------------- classification

#: Tag the workflows runtime puts on step spans (their ``instance`` is None).
STEP_TAG = "llamaindex.step.input_event"
_BUILTIN_MODULES = ("llama_index.", "workflows.")

#: (class, ``Class.method``) -> kind, filled by :func:`classify`.
KINDS: dict[tuple[type, str], SpanKind] = {}
#: class -> {length of a span id: (``Class.method``, kind, ``Class.method-``,
#: ``Class.method.``)}, filled by :func:`classify_span`. The dispatcher's span ids are
#: ``Class.method-<uuid4>``: the instance's class and the id's length find a span's label and
#: kind without slicing or hashing a new string. One class's methods can have names of one
#: length, so a hit is checked: ``label + "-" <= id_ < label + "."`` holds exactly when the
#: id starts with ``label + "-"`` (two string comparisons; ``str.startswith`` parses its
#: arguments like a varargs call, several times the cost in situ).
KINDS_BY_LENGTH: dict[type, dict[int, tuple[str, SpanKind, str, str]]] = {}
_builtin_steps: dict[tuple[type, str], bool] = {}


def classify_span(id_: str, instance: Any, tags: Mapping[str, Any] | None) -> tuple[str, SpanKind]:
    """A span's label (``Class.method``, its id without the uuid) and default kind."""
    label = span_label(id_)
    if instance is None:  # plain functions and workflow steps
        return label, classify(None, label, tags is not None and STEP_TAG in tags)
    cls = type(instance)
    kind = classify(cls, label, False)
    if len(label) < len(id_):  # a dispatcher's id, ``label-<uuid4>``
        if len(KINDS_BY_LENGTH) >= _MAX_CACHE:  # dynamic classes: stay bounded
            KINDS_BY_LENGTH.clear()
        KINDS_BY_LENGTH.setdefault(cls, {})[len(id_)] = (label, kind, label + "-", label + ".")
    return label, kind


def classify(cls: type | None, label: str, is_step: bool) -> SpanKind:
    """The default kind of a span of ``cls`` named ``Class.method`` (cached per pair)."""
    if cls is None:  # plain functions and workflow steps: nothing to cache
        return _classify(None, label, is_step)
    key = (cls, label)
    kind = KINDS.get(key)
    if kind is None:
        kind = _classify(cls, label, is_step)
        if len(KINDS) >= _MAX_CACHE:  # dynamic classes: stay bounded
            KINDS.clear()
        KINDS[key] = kind
    return kind


def _classify(cls: type | None, label: str, is_step: bool) -> SpanKind:
    method = label.rpartition(".")[2]
    if method.startswith("_") and not (method.startswith("__") and method.endswith("__")):
        return SpanKind.HIDDEN
    if cls is None:
        return SpanKind.STEP if is_step else SpanKind.CHAIN
    for kind, components in _MATCHERS:
        if issubclass(cls, components.classes):
            methods = components.methods
            return kind if methods is None or method in methods else components.others
    return SpanKind.CHAIN


def builtin_step(workflow_cls: type | None, label: str) -> bool:
    """Whether step ``Class.step`` of this workflow is defined by LlamaIndex itself."""
    if workflow_cls is None:
        return False
    key = (workflow_cls, label)
    found = _builtin_steps.get(key)
    if found is None:
        owner = label.rpartition(".")[0]
        found = False
        for klass in workflow_cls.__mro__:
            if klass.__qualname__ == owner:
                found = klass.__module__.startswith(_BUILTIN_MODULES)
                break
        if len(_builtin_steps) >= _MAX_CACHE:
            _builtin_steps.clear()
        _builtin_steps[key] = found
    return found


__all__ = [
    "BY_KIND",
    "KINDS",
    "KINDS_BY_LENGTH",
    "LEGACY_KINDS",
    "LLM_METHODS",
    "SPECS",
    "STEP_TAG",
    "Components",
    "KindSpec",
    "Result",
    "SpanKind",
    "builtin_step",
    "classify",
    "classify_span",
    "legacy_value_end",
]
