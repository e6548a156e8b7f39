"""Pure translation of LlamaIndex values into Lunary run fields: names, inputs and
outputs (nodes, messages, workflow events, tool outputs...). Which spans become which runs
is ``kinds.py``'s table; it calls these readers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import AsyncGeneratorType, CoroutineType, GeneratorType
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from llama_index.core.chat_engine.types import StreamingAgentChatResponse
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.tools.types import ToolOutput
from workflows.events import Event as WorkflowEvent
from workflows.events import StopEvent

from ..serialize import truncate_text
from ..tracer import MISSING
from . import messages as msg

_MAX_NODE_TEXT = 2_000
_MAX_CACHE = 4_096


def tool_name(instance: Any, label: str) -> str:
    name = getattr(getattr(instance, "metadata", None), "name", None)
    return name if isinstance(name, str) and name else label


def llm_payload(instance: Any) -> Mapping[str, Any] | None:
    """What LlamaIndex's LLM start events carry as ``model_dict``: ``to_payload()``, the
    class name and the metadata (``model_name`` included); None if the LLM cannot say."""
    try:
        to_payload = getattr(instance, "to_payload", None)
        if to_payload is not None:
            payload = to_payload()
        else:  # an LLM-like object without LlamaIndex's base class
            payload = {"model_name": getattr(instance.metadata, "model_name", None)}
    except Exception:  # a metadata property that raises: the name falls back to fields
        return None
    return payload if isinstance(payload, Mapping) else None


def llm_name(model_dict: Any, instance: Any, label: str) -> str:
    """The model id Lunary prices by: ``model_dict["model_name"]``; when LlamaIndex only
    knows ``'unknown'`` (mocks, custom LLMs without metadata), the instance's ``model``
    field, then the LLM's class name."""
    if isinstance(model_dict, Mapping):
        name = model_dict.get("model_name")
        if isinstance(name, str) and name and name != "unknown":
            return name
    model = getattr(instance, "model", None) if _has_model_field(type(instance)) else None
    if isinstance(model, str) and model:
        return model
    if isinstance(model_dict, Mapping):
        cls_name = model_dict.get("class_name")
        if isinstance(cls_name, str) and cls_name:
            return cls_name
    return label.rpartition(".")[0] or label


_model_fields: dict[type, bool] = {}


def _has_model_field(cls: type) -> bool:
    """Whether instances of ``cls`` may have a ``model``: asking a pydantic model for a field
    it lacks raises inside ``getattr`` (microseconds), so it is decided once per class."""
    has = _model_fields.get(cls)
    if has is None:
        fields = getattr(cls, "model_fields", None)
        has = hasattr(cls, "model") or (isinstance(fields, Mapping) and "model" in fields)
        if not isinstance(fields, Mapping):
            has = True  # not pydantic: a plain attribute lookup is cheap
        if len(_model_fields) < _MAX_CACHE:
            _model_fields[cls] = has
    return has


# --------------------------------------------------------------------------- values
# Dispatch on exact types, decided once per type: ``hasattr`` on a pydantic model that lacks
# the attribute costs a raised AttributeError, too slow for a per-span path.

_PRIMITIVES = (str, int, float, bool, type(None))
_STREAMS: tuple[type, ...] = (
    GeneratorType,
    AsyncGeneratorType,
    CoroutineType,
    StreamingResponse,
    AsyncStreamingResponse,
    StreamingAgentChatResponse,
)


def query_text(value: Any) -> Any:
    """``QueryBundle`` -> its query string; anything else as is."""
    return value.query_str if isinstance(value, QueryBundle) else value


def nodes(value: Any) -> list[dict[str, Any]] | Any:
    """``NodeWithScore`` list -> ``[{text, score, id, metadata}]`` (text cut per node)."""
    if not isinstance(value, (list, tuple)):
        return value
    out: list[dict[str, Any]] = []
    for item in value:
        node = item.node if isinstance(item, NodeWithScore) else item
        text = getattr(node, "text", None)
        if not isinstance(text, str):
            get_content = getattr(node, "get_content", None)
            try:
                text = get_content() if get_content is not None else None
            except Exception:
                text = None
        entry: dict[str, Any] = {
            "text": truncate_text(text, _MAX_NODE_TEXT) if isinstance(text, str) else None,
            "score": getattr(item, "score", None),
            "id": getattr(node, "node_id", None),
        }
        metadata = getattr(node, "metadata", None)
        if metadata:
            entry["metadata"] = metadata
        out.append(entry)
    return out


def _simplify_list(value: list[Any]) -> Any:
    if not value:
        return value
    first = value[0]
    if isinstance(first, NodeWithScore):
        return nodes(value)
    if isinstance(first, ChatMessage):
        return msg.messages(value)
    return value


def _event_fields(value: Any) -> Any:
    try:
        return value.to_dict()
    except Exception:
        return value


def _identity(value: Any) -> Any:
    return value


_simplifiers: dict[type, Any] = {}


def _simplifier(cls: type) -> Any:
    if issubclass(cls, QueryBundle):
        return query_text
    if issubclass(cls, ChatMessage):
        return msg.message
    if cls is list:
        return _simplify_list
    if issubclass(cls, WorkflowEvent):  # workflow events keep their fields in ``_data``
        return _event_fields
    return _identity


def simplify(value: Any) -> Any:
    """Common LlamaIndex values -> what a reader wants to see (the serializer does the rest)."""
    cls = type(value)
    if cls in _PRIMITIVES:
        return value
    fn = _simplifiers.get(cls)
    if fn is None:
        fn = _simplifier(cls)
        if len(_simplifiers) < _MAX_CACHE:
            _simplifiers[cls] = fn
    return fn(value)


#: Legacy callback payload keys that are bulky and say nothing to a reader.
_SKIP_PAYLOAD = frozenset({"serialized", "embeddings", "template_vars"})


def simplify_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A legacy callback payload as run input."""
    return {str(k): simplify(v) for k, v in payload.items() if k not in _SKIP_PAYLOAD}


SKIP_ARGS = frozenset({"self", "ctx", "context", "init_state", "tags", "callback_manager"})

#: LlamaIndex values read on the ingest worker by reference: LlamaIndex does not change the
#: fields shown (query text, node text, message content) once they reach a span or event.
VALUE_TYPES: tuple[type, ...] = (QueryBundle, NodeWithScore, ChatMessage, WorkflowEvent)


def arguments_input(bound_args: Any) -> Any:
    """A span's call arguments: the single argument itself, else a dict of them."""
    arguments = getattr(bound_args, "arguments", None)
    if not isinstance(arguments, Mapping):
        return MISSING
    out: dict[str, Any] = {}
    for name, value in arguments.items():
        if name in SKIP_ARGS:
            continue
        if name == "kwargs" and isinstance(value, Mapping):
            for k, v in value.items():
                out[str(k)] = simplify(v)
        elif name == "args" and isinstance(value, tuple):
            if value:
                out["args"] = [simplify(v) for v in value]
        else:
            out[name] = simplify(value)
    if len(out) == 1:
        return next(iter(out.values()))
    return out if out else MISSING


def first_argument(bound_args: Any) -> Any:
    arguments = getattr(bound_args, "arguments", None)
    if not isinstance(arguments, Mapping):
        return MISSING
    for name, value in arguments.items():
        if name not in SKIP_ARGS:
            return value
    return MISSING


def retriever_input(bound_args: Any) -> Any:
    return query_text(first_argument(bound_args))


def agent_input(bound_args: Any) -> Any:
    """``Workflow.run``: the start event's fields (an agent's ``user_msg`` alone)."""
    arguments = getattr(bound_args, "arguments", None)
    event = arguments.get("start_event") if isinstance(arguments, Mapping) else None
    if event is None:
        return arguments_input(bound_args)
    data = simplify(event)
    if isinstance(data, Mapping) and "user_msg" in data:
        return simplify(data["user_msg"])
    return data


def embed_input(bound_args: Any) -> Any:
    return first_argument(bound_args)


def embed_output(result: Any) -> Any:
    if isinstance(result, list):
        first = result[0] if result else None
        return {"count": len(result), "dimensions": len(first) if isinstance(first, list) else None}
    return MISSING


def is_stream(result: Any) -> bool:
    """Results produced later: the span exits before they are consumed."""
    return isinstance(result, _STREAMS)


def _missing(value: Any) -> Any:
    return MISSING


def _response_field(value: Any) -> Any:
    # Response / AgentChatResponse carry text; AgentOutput carries a ChatMessage.
    response = value.response
    return response if type(response) is str else simplify(response)


def _stop_event(value: Any) -> Any:
    return output(value.result)


def _tool_output(value: Any) -> Any:
    return value.content


#: result type -> its converter (filled by ``output``; read directly by span exits).
OUTPUTS: dict[type, Any] = {}


def _output_for(cls: type) -> Any:
    if issubclass(cls, _STREAMS):
        return _missing
    if issubclass(cls, StopEvent):
        return _stop_event
    if issubclass(cls, ToolOutput):
        return _tool_output
    fields = getattr(cls, "model_fields", None)
    has_response = (isinstance(fields, Mapping) and "response" in fields) or any(
        f.name == "response"
        for f in (dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ())
    )
    if has_response:
        return _response_field
    return simplify


def output(result: Any) -> Any:
    """A span's return value as run output (MISSING when there is nothing to show yet)."""
    cls = type(result)
    if cls in _PRIMITIVES:
        return result
    fn = OUTPUTS.get(cls)
    if fn is None:
        fn = _output_for(cls)
        if len(OUTPUTS) < _MAX_CACHE:
            OUTPUTS[cls] = fn
    return fn(result)


def tool_error(result: Any) -> str | None:
    """A ``ToolOutput`` that reports a failure (agents catch tool exceptions)."""
    if isinstance(result, ToolOutput) and result.is_error:
        content = result.content
        return content if isinstance(content, str) and content else "tool error"
    return None


#: Exceptions that end a span without being errors (cancellation and workflow control flow).
_CONTROL_FLOW = frozenset(
    {"CancelledError", "GeneratorExit", "WorkflowDone", "WaitingForEvent", "StopIteration"}
)


def is_control_flow(err: BaseException | None) -> bool:
    return err is not None and type(err).__name__ in _CONTROL_FLOW


__all__ = [
    "agent_input",
    "arguments_input",
    "embed_input",
    "embed_output",
    "is_control_flow",
    "is_stream",
    "llm_name",
    "nodes",
    "output",
    "query_text",
    "retriever_input",
    "simplify",
    "simplify_payload",
    "tool_error",
    "tool_name",
]
