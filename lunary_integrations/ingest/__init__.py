"""The shared ingest client (see ``client.py`` for the delivery guarantees)."""

from .client import Deferred, IngestClient, materialize
from .registry import Client, DisabledClient, all_clients, flush, get_client, shutdown

__all__ = [
    "Client",
    "Deferred",
    "DisabledClient",
    "IngestClient",
    "all_clients",
    "flush",
    "get_client",
    "materialize",
    "shutdown",
]
