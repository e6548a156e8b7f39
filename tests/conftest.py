from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lunary_integrations import config
from lunary_integrations._log import forget_logged
from lunary_integrations.ingest import registry

pytest_plugins = ["lunary_integrations.testing"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LUNARY_* variable of the machine leaks into a test; no client outlives one."""
    for name in list(os.environ):
        if name.startswith("LUNARY_"):
            monkeypatch.delenv(name)
    config.reset()
    forget_logged()
    yield
    registry.shutdown(timeout=5)
    config.reset()
