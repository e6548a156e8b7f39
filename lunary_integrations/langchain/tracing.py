"""Tracing without ``callbacks=``: ``lunary_tracing()`` blocks and ``LUNARY_TRACING=true``.

Both go through LangChain's ``register_configure_hook``, registered once when this module is
imported: every ``CallbackManager.configure`` call (each runnable, model, tool, retriever
invocation) adds the handler held by the ContextVar, or with the environment variable set, a
new no-arg ``LunaryCallbackHandler`` (cheap to build, sharing the process-wide tracer).
LangChain skips both when an instance of the class is already among the run's handlers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.tracers.context import register_configure_hook

from .callback import LunaryCallbackHandler

ENV_VAR = "LUNARY_TRACING"

_handler_var: ContextVar[LunaryCallbackHandler | None] = ContextVar(
    "lunary_langchain_handler", default=None
)
register_configure_hook(_handler_var, True, LunaryCallbackHandler, ENV_VAR)


@contextmanager
def lunary_tracing(**options: Any) -> Iterator[LunaryCallbackHandler]:
    """Trace every LangChain / LangGraph run started in the block (threads and tasks that
    copy the context included).

    Takes ``LunaryCallbackHandler``'s options: ``tags``, ``user_id``, ``user_props``,
    ``metadata``, ``ignore`` and settings such as ``public_key`` or ``api_url``. Yields the
    handler. Blocks nest: the innermost one applies.
    """
    handler = LunaryCallbackHandler(**options)
    token = _handler_var.set(handler)
    try:
        yield handler
    finally:
        _handler_var.reset(token)


__all__ = ["ENV_VAR", "lunary_tracing"]
