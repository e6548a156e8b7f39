"""LangChain and LangGraph integration (``pip install lunary-integrations[langchain]``).

Importing this module registers the ``LUNARY_TRACING`` hook with LangChain, once, and how the
serializer renders LangChain messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "lunary_integrations.langchain needs langchain-core: "
        "pip install 'lunary-integrations[langchain]'"
    ) from exc

from ..serialize import register_type_handler
from .callback import LunaryCallbackHandler
from .serialize_hooks import MESSAGES_MODULE, message_fields
from .tracing import lunary_tracing

register_type_handler(MESSAGES_MODULE, message_fields)

if TYPE_CHECKING:
    from .retriever import LunaryRunsRetriever


def __getattr__(name: str) -> Any:
    if name == "LunaryRunsRetriever":
        from .retriever import LunaryRunsRetriever

        return LunaryRunsRetriever
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LunaryCallbackHandler", "LunaryRunsRetriever", "lunary_tracing"]
