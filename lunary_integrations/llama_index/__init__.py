"""LlamaIndex integration (``pip install lunary-integrations[llama-index]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "lunary_integrations.llama_index needs llama-index-core: "
        "pip install 'lunary-integrations[llama-index]'"
    ) from exc

if TYPE_CHECKING:
    from .callback import LunaryCallbackHandler
    from .instrumentation import instrument, uninstrument
    from .retriever import LunaryRunsReader, LunaryRunsRetriever

_EXPORTS = {
    "instrument": "instrumentation",
    "uninstrument": "instrumentation",
    "LunaryCallbackHandler": "callback",
    "LunaryRunsRetriever": "retriever",
    "LunaryRunsReader": "retriever",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "LunaryCallbackHandler",
    "LunaryRunsReader",
    "LunaryRunsRetriever",
    "instrument",
    "uninstrument",
]
