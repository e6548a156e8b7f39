from __future__ import annotations

import pytest

from lunary_integrations import config
from lunary_integrations.config import DEFAULT_API_URL, Settings, configure, resolve


def test_defaults_without_anything() -> None:
    s = resolve()
    assert s.api_url == DEFAULT_API_URL and s.public_key is None and not s.can_send


def test_precedence_argument_over_configure_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNARY_PUBLIC_KEY", "env-key")
    monkeypatch.setenv("LUNARY_API_URL", "http://env.example")
    assert resolve().public_key == "env-key"
    configure(public_key="configured-key")
    s = resolve()
    assert s.public_key == "configured-key" and s.api_url == "http://env.example"
    assert resolve(public_key="explicit-key").public_key == "explicit-key"
    config.reset()
    assert resolve().public_key == "env-key"


def test_app_id_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNARY_APP_ID", "legacy")
    assert resolve().public_key == "legacy"
    monkeypatch.setenv("LUNARY_PUBLIC_KEY", "modern")
    assert resolve().public_key == "modern"
    assert resolve(app_id="sdk-style").public_key == "sdk-style"


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"api_url": "ftp://x"}, "api_url"),
        ({"api_url": "not a url"}, "api_url"),
        ({"max_batch_events": 0}, "max_batch_events"),
        ({"max_batch_events": -5}, "max_batch_events"),
        ({"max_queue_events": True}, "max_queue_events"),
        ({"flush_interval": -1}, "flush_interval"),
        ({"request_timeout": 0}, "request_timeout"),
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_batch_bytes": 30 * 1024 * 1024}, "max_batch_bytes"),
        ({"mask": "not callable"}, "mask"),
    ],
)
def test_bad_values_are_a_value_error_naming_the_setting(
    options: dict[str, object], setting: str
) -> None:
    with pytest.raises(ValueError, match=setting):
        configure(**options)
    assert config._configured == {}  # nothing half-applied


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="flush_intervall"):
        configure(flush_intervall=1)


def test_bad_environment_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNARY_ENABLED", "maybe")
    with pytest.raises(ValueError, match="LUNARY_ENABLED"):
        resolve()
    monkeypatch.setenv("LUNARY_ENABLED", "false")
    assert resolve(public_key="k").can_send is False


def test_keys_never_appear_in_repr() -> None:
    s = Settings(public_key="pk-secret-123", private_key="sk-secret-456")
    text = repr(s) + str(s)
    assert "pk-secret-123" not in text and "sk-secret-456" not in text
    assert "public_key=set" in text
