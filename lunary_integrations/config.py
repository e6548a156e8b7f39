"""Settings: one validated, immutable object per resolution.

Precedence, highest first: explicit argument > ``configure(...)`` > environment > default.
Validation happens here, at configuration time, so a bad value is a ``ValueError`` that names
the setting instead of a surprise inside a user's run.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

DEFAULT_API_URL = "https://api.lunary.ai"

#: Masking hook: receives every captured input/output (already JSON-safe data) and returns
#: what is sent instead. It runs on the caller's thread, so keep it cheap.
MaskFn = Callable[[Any], Any]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the ingest client and the integrations need to know.

    Sizes are in bytes of JSON text, intervals and timeouts in seconds.
    """

    public_key: str | None = dataclasses.field(default=None, repr=False)
    private_key: str | None = dataclasses.field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    #: Kill switch (``LUNARY_ENABLED=false``): nothing is captured or sent.
    enabled: bool = True
    #: A batch is sent when it holds this many events ...
    max_batch_events: int = 500
    #: ... or this many bytes of JSON (the server refuses bodies over 20 MiB) ...
    max_batch_bytes: int = 4 * 1024 * 1024
    #: ... or when this long has passed since its first event was queued.
    flush_interval: float = 0.5
    #: Queue bound. When full, the newest events are dropped (and counted), together with
    #: the later events of the runs they belong to, so no orphan reaches the server.
    max_queue_events: int = 100_000
    #: One captured value (an input, an output, a params object) is cut to this size.
    max_field_bytes: int = 64 * 1024
    #: One event is cut to this size before it is sent.
    max_event_bytes: int = 1024 * 1024
    request_timeout: float = 10.0
    #: Attempts for a batch answered 5xx; network errors and 429 are retried while the
    #: client lives (the queue bound caps the memory this costs).
    max_retries: int = 8
    max_backoff: float = 30.0
    #: gzip request bodies (the real server accepts ``Content-Encoding: gzip``).
    compress: bool = True
    verify_tls: bool = True
    #: How long the exit hook waits for the queue to drain.
    shutdown_timeout: float = 5.0
    #: Fraction of traces kept, decided at the root; children follow their root.
    sample_rate: float = 1.0
    #: False sends run structure, timings, models and usage but no inputs or outputs.
    capture_content: bool = True
    mask: MaskFn | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def ingest_url(self) -> str:
        return self.api_url.rstrip("/") + "/v1/runs/ingest"

    @property
    def can_send(self) -> bool:
        return self.enabled and bool(self.public_key or self.private_key)

    def __repr__(self) -> str:  # keys never appear, only whether they are set
        fields = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr
        )
        return (
            f"Settings(public_key={'set' if self.public_key else None}, "
            f"private_key={'set' if self.private_key else None}, {fields})"
        )


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_POSITIVE_INTS = (
    "max_batch_events",
    "max_batch_bytes",
    "max_queue_events",
    "max_field_bytes",
    "max_event_bytes",
)
_POSITIVE_FLOATS = ("request_timeout", "max_backoff")
_NON_NEGATIVE_FLOATS = ("flush_interval", "shutdown_timeout")


def _validate(s: Settings) -> None:
    parts = urlsplit(s.api_url) if isinstance(s.api_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"api_url must be an http(s) URL, got {s.api_url!r}")
    for name in _POSITIVE_INTS:
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name in _POSITIVE_FLOATS:
        value = getattr(s, name)
        if not _is_number(value) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    for name in _NON_NEGATIVE_FLOATS:
        value = getattr(s, name)
        if not _is_number(value) or not value >= 0:
            raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    if isinstance(s.max_retries, bool) or not isinstance(s.max_retries, int) or s.max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative integer, got {s.max_retries!r}")
    if not _is_number(s.sample_rate) or not 0.0 <= s.sample_rate <= 1.0:
        raise ValueError(f"sample_rate must be between 0 and 1, got {s.sample_rate!r}")
    for name in ("public_key", "private_key"):
        value = getattr(s, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
    if s.max_event_bytes > 16 * 1024 * 1024 or s.max_batch_bytes > 16 * 1024 * 1024:
        raise ValueError("max_event_bytes and max_batch_bytes must stay under the server's 20 MiB")
    if s.mask is not None and not callable(s.mask):
        raise ValueError("mask must be a callable")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- environment


def _env_bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _env_number(name: str, raw: str, kind: type) -> Any:
    try:
        return kind(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


#: Environment variable -> (setting, parser).
_ENV: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "LUNARY_PUBLIC_KEY": ("public_key", lambda n, v: v.strip() or None),
    "LUNARY_APP_ID": ("public_key", lambda n, v: v.strip() or None),
    "LUNARY_PRIVATE_KEY": ("private_key", lambda n, v: v.strip() or None),
    "LUNARY_API_URL": ("api_url", lambda n, v: v.strip()),
    "LUNARY_ENABLED": ("enabled", _env_bool),
    "LUNARY_SAMPLE_RATE": ("sample_rate", lambda n, v: _env_number(n, v, float)),
    "LUNARY_CAPTURE_CONTENT": ("capture_content", _env_bool),
    "LUNARY_FLUSH_INTERVAL": ("flush_interval", lambda n, v: _env_number(n, v, float)),
    "LUNARY_MAX_QUEUE_EVENTS": ("max_queue_events", lambda n, v: _env_number(n, v, int)),
}


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for var, (name, parse) in _ENV.items():
        raw = environ.get(var)
        if raw is None or name in found:  # LUNARY_PUBLIC_KEY wins over its alias
            continue
        value = parse(var, raw)
        if value is not None:
            found[name] = value
    return found


# --------------------------------------------------------------------------- configure()

_lock = threading.Lock()
_configured: dict[str, Any] = {}


def _check_names(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(_FIELDS) - {"app_id"})
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    cleaned = {k: v for k, v in options.items() if v is not None}
    if "app_id" in cleaned:  # the official SDK's name for the public key
        cleaned.setdefault("public_key", cleaned.pop("app_id"))
        cleaned.pop("app_id", None)
    return cleaned


def configure(**options: Any) -> Settings:
    """Set process-wide settings (between explicit arguments and the environment).

    Returns the settings that now apply. Raises ``ValueError`` for unknown names or bad values.
    Options left as ``None`` are not changed. Clients already created keep their settings.
    """
    cleaned = _check_names(options)
    with _lock:
        merged = {**_configured, **cleaned}
        settings = _build(merged, {})  # validate before storing anything
        _configured.clear()
        _configured.update(merged)
    return settings


def resolve(**explicit: Any) -> Settings:
    """The settings for one component: explicit arguments over ``configure`` over env."""
    cleaned = _check_names(explicit)
    with _lock:
        configured = dict(_configured)
    return _build(configured, cleaned)


def _build(configured: Mapping[str, Any], explicit: Mapping[str, Any]) -> Settings:
    values = {**_from_env(os.environ), **configured, **explicit}
    return Settings(**values)


def reset() -> None:
    """Forget everything ``configure`` set (for tests)."""
    with _lock:
        _configured.clear()
