"""A pytest plugin for asserting on the traces your app emits.

Enable it in your ``conftest.py``::

    pytest_plugins = ["lunary_integrations.testing"]

    def test_my_chain(lunary_local):
        my_chain.invoke(..., config={"callbacks": [LunaryCallbackHandler()]})
        lunary_integrations.flush()
        assert [r["name"] for r in lunary_local.all_runs()] == [...]

``lunary_local`` starts the embedded collector on 127.0.0.1, points this process's settings
at it (environment variables are ignored for the test) and cleans up afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from . import config
from .ingest import registry

if TYPE_CHECKING:
    from .local import LocalLunary

_ENV_PREFIX = "LUNARY_"


@pytest.fixture
def lunary_local(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalLunary]:
    from .local import LocalLunary

    for name in list(os.environ):
        if name.startswith(_ENV_PREFIX):
            monkeypatch.delenv(name)
    registry.shutdown(timeout=5)
    config.reset()
    with LocalLunary() as server:
        config.configure(
            public_key=server.public_key,
            private_key=server.private_key,
            api_url=server.url,
            flush_interval=0.02,
        )
        try:
            yield server
        finally:
            registry.shutdown(timeout=10)
            config.reset()
