"""Wire models: what is sent to ``POST /v1/runs/ingest`` and what the Runs API answers.

Field names are snake_case in Python and camelCase on the wire. Every model tolerates
unknown fields, because the server adds fields over time (``toxicity``, ``scores``, ...).

The hot path does not build these models (a pydantic model per callback costs more than the
whole translation); translators produce :data:`WireEvent` dicts with the same camelCase keys,
and :class:`RunEvent` validates those in ``track_event`` and in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypedDict, cast

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

RunType = Literal["llm", "chain", "agent", "tool", "retriever", "embed", "thread", "chat"]
EventName = Literal["start", "end", "error", "feedback", "update", "chat", "custom-event"]


class WireEvent(TypedDict, total=False):
    """What translators hand to the ingest client: one ingest event as the server reads it
    (lunary-protocol.md §1 and §4), camelCase keys, values JSON-safe once finished.

    A typo in a key is a type error. ``timestamp`` may be epoch seconds (float); the worker
    formats it. Content fields hold any JSON value (or a snapshot until the worker
    finishes the event, see ``tracer.py``)."""

    type: str
    event: str
    runId: str
    parentRunId: str
    timestamp: float | str
    name: str
    input: Any
    output: Any
    error: Any  # ``{message, stack?}``; an exception or text until the event is finished
    extra: dict[str, Any]
    params: Any
    tokensUsage: dict[str, int]
    tags: list[str]
    userId: str
    userProps: Any
    metadata: Mapping[str, Any]
    templateId: int | str
    templateVersionId: int | str
    feedback: dict[str, Any] | None
    message: Any
    threadTags: list[str]
    threadMetadata: dict[str, Any]
    runtime: str
    appId: str


def as_wire_event(fields: dict[str, Any]) -> WireEvent:
    """A validated plain dict (``RunEvent.to_wire()``) seen as a :class:`WireEvent`."""
    return cast(WireEvent, fields)


#: The value that makes the dashboard show an input or output as filtered.
NOT_INGESTED = "__NOT_INGESTED__"


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        protected_namespaces=(),
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class TokensUsage(_Wire):
    prompt: int | None = None
    completion: int | None = None
    prompt_cached: int | None = None


class ErrorInfo(_Wire):
    message: str
    stack: str | None = None


class RunEvent(_Wire):
    """One ingest event. ``timestamp`` is an ISO-8601 UTC string with milliseconds on the wire."""

    type: str
    event: str
    run_id: str
    parent_run_id: str | None = None
    timestamp: str
    name: str | None = None
    input: Any = None
    output: Any = None
    error: ErrorInfo | None = None
    extra: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    tokens_usage: TokensUsage | None = None
    tags: list[str] | None = None
    user_id: str | None = None
    user_props: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    template_id: int | None = None
    feedback: dict[str, Any] | None = None
    message: Any = None
    thread_tags: list[str] | None = None
    runtime: str | None = None


class IngestResult(_Wire):
    id: str | None = None
    success: bool = False
    error: str | None = None


class IngestReply(_Wire):
    results: list[IngestResult] = Field(default_factory=list)


# --------------------------------------------------------------------------- read models


class RunTokens(_Wire):
    prompt: int | None = None
    cached_prompt: int | None = None
    completion: int | None = None
    total: int | None = None


class RunUser(_Wire):
    id: int | str | None = None
    external_id: str | None = None
    created_at: datetime | None = None
    last_seen: datetime | None = None
    props: dict[str, Any] | None = None


class RunFeedback(_Wire):
    thumb: str | None = None
    comment: str | None = None


def _strip_enrichments(value: Any) -> Any:
    """The server adds ``"enrichments": []`` to every message object; it carries nothing."""
    if isinstance(value, dict):
        return {k: _strip_enrichments(v) for k, v in value.items() if k != "enrichments"}
    if isinstance(value, list):
        return [_strip_enrichments(v) for v in value]
    return value


class Run(_Wire):
    """A run as ``GET /v1/runs``, ``/v1/runs/{id}``, ``/related`` and jsonl exports return it.

    ``duration`` is the server's Postgres interval string (``"00:00:01.5"``); use
    :attr:`duration_seconds`, computed from the timestamps. ``/related`` rows carry
    ``parentRunId``, ``promptTokens`` and ``completionTokens`` instead of ``tokens``.
    """

    id: str
    project_id: str | None = None
    type: str | None = None
    name: str | None = None
    status: str | None = None
    created_at: datetime | None = None
    ended_at: datetime | None = None
    duration: str | float | None = None
    tokens: RunTokens | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    tags: list[str] | None = None
    input: Any = None
    output: Any = None
    error: Any = None
    params: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    feedback: RunFeedback | None = None
    parent_feedback: RunFeedback | None = None
    user: RunUser | None = None
    template_version_id: int | None = None
    template_slug: str | None = None
    trace_id: str | None = None
    parent_run_id: str | None = None
    is_public: bool | None = None
    first_message: Any = None
    messages_count: int | None = None

    @field_validator("input", "output", "error", "first_message", mode="before")
    @classmethod
    def _no_enrichments(cls, value: Any) -> Any:
        return _strip_enrichments(value)

    @field_validator("feedback", "parent_feedback", mode="before")
    @classmethod
    def _feedback_object(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None

    @property
    def duration_seconds(self) -> float | None:
        if self.created_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.created_at).total_seconds()

    @property
    def prompt_token_count(self) -> int | None:
        return self.tokens.prompt if self.tokens else self.prompt_tokens

    @property
    def completion_token_count(self) -> int | None:
        return self.tokens.completion if self.tokens else self.completion_tokens

    @property
    def total_tokens(self) -> int | None:
        p, c = self.prompt_token_count, self.completion_token_count
        if p is None and c is None:
            return None
        return (p or 0) + (c or 0)


class RunsPage(_Wire):
    """``GET /v1/runs``: ``page`` counts from 0 and there is no ``total``."""

    page: int = 0
    limit: int = 50
    data: list[Run] = Field(default_factory=list)


class ThreadMessage(TypedDict, total=False):
    role: str
    content: Any


__all__ = [
    "NOT_INGESTED",
    "AliasChoices",
    "ErrorInfo",
    "EventName",
    "IngestReply",
    "IngestResult",
    "Run",
    "RunEvent",
    "RunFeedback",
    "RunTokens",
    "RunType",
    "RunUser",
    "RunsPage",
    "ThreadMessage",
    "TokensUsage",
    "WireEvent",
    "as_wire_event",
]
