"""Small helpers shared by the collector modules: camel-casing, ids, time, JSON text.

Everything here imitates what the real Lunary server (Node/Koa + Postgres) does, so the
details (camel-casing rules, id hashing, interval text) follow that server, not Python taste.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

# JSON values coming from clients are arbitrary by nature: this alias marks them.
JSON = Any

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)

# --------------------------------------------------------------------------------------------
# camel-casing, as the server's `recursiveToCamel`: every "-x"/"_x" (x an ASCII letter, any
# case) becomes "X"; nothing else changes ("ABC", "py/newargs", "user_1" stay as they are).

_SEP_LETTER = re.compile(r"[-_][a-zA-Z]")
_camel_cache: dict[str, str] = {}
_CONTAINERS = (dict, list)


def _camel_uncached(key: str) -> str:
    return _SEP_LETTER.sub(lambda m: m.group(0)[1].upper(), key)


def camel_key(key: str) -> str:
    """Camel-case one object key the way the server does (`max_tokens` → `maxTokens`)."""
    try:
        return _camel_cache[key]
    except KeyError:
        pass
    out = _camel_uncached(key)
    if len(_camel_cache) > 50_000:  # keys can come from user data: keep the cache bounded
        _camel_cache.clear()
    _camel_cache[key] = out
    return out


def loads_camel(data: bytes | str) -> tuple[JSON, set[int]]:
    """Parse JSON, camel-casing every object key on the way (one pass, no second walk).

    Returns the value and the id() of every object that literally had a `runId` key (the
    server echoes `runId` in its results, but not a `run_id` it camel-cased).
    """
    with_run_id: set[int] = set()
    get = _camel_cache.get

    def hook(pairs: list[tuple[str, JSON]]) -> dict[str, JSON]:
        out = {}
        has_run_id = False
        for k, v in pairs:
            ck = get(k)
            if ck is None:
                ck = camel_key(k)
            if ck == "runId" and k == "runId":
                has_run_id = True
            out[ck] = v
        if has_run_id:
            with_run_id.add(id(out))
        return out

    return json.loads(data, object_pairs_hook=hook), with_run_id


def camelize(value: JSON) -> JSON:
    """Recursively camel-case every object key (values are left alone)."""
    cls = value.__class__
    if cls is dict:
        get = _camel_cache.get
        out = {}
        for k, v in value.items():
            ck = get(k)
            if ck is None:
                ck = camel_key(k)
            vc = v.__class__
            out[ck] = camelize(v) if vc is dict or vc is list else v
        return out
    if cls is list:
        return [camelize(v) if v.__class__ in _CONTAINERS else v for v in value]
    if isinstance(value, (dict, list)):  # subclasses: rare, slow path
        return camelize(dict(value) if isinstance(value, dict) else list(value))
    return value


# --------------------------------------------------------------------------------------------
# run ids

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_UUID_LOOSE_RE = re.compile(
    r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$"
)


class InvalidUUID(ValueError):
    """A value Postgres would refuse as a uuid; str() is Postgres' message."""

    def __init__(self, raw: str) -> None:
        super().__init__(f'invalid input syntax for type uuid: "{raw}"')


def derive_uuid(raw: str) -> str:
    """The server's stable UUID for a run id that is not 36 characters long."""
    h = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    return f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def normalize_run_id(raw: JSON) -> str | None:
    """runId as sent → stored id: a non-string is no id (None), a string that is not 36
    characters is hashed; a 36-character non-UUID (or "") raises InvalidUUID."""
    if not isinstance(raw, str):
        return None
    if raw and len(raw) != 36:
        return derive_uuid(raw)
    if not _UUID_RE.match(raw):
        raise InvalidUUID(raw)
    return raw.lower()


def parse_uuid(raw: str) -> str:
    """A uuid from a URL, as Postgres would accept it; raises InvalidUUID otherwise."""
    if not _UUID_LOOSE_RE.match(raw):
        raise InvalidUUID(raw)
    h = raw.strip("{}").replace("-", "").lower()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


# --------------------------------------------------------------------------------------------
# time


def now_ms() -> int:
    return (datetime.now(timezone.utc) - _EPOCH) // _MS


def parse_ts(value: JSON) -> int | None:
    """ISO-8601 (or epoch ms number) → epoch milliseconds, truncated like a JS Date."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if not isinstance(value, str):
        return None
    s = value.strip()
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        try:  # 'Z' suffix and other forms fromisoformat (3.10) does not take
            dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // _MS


def iso_ms(ms: int | None) -> str | None:
    """epoch ms → '2026-11-23T16:38:49.422Z'."""
    if ms is None:
        return None
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def pg_interval(ms: int | None) -> str | None:
    """Milliseconds → Postgres interval text: '00:00:00.84', '00:00:00', '1 day 02:00:00'."""
    if ms is None:
        return None
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    days, rest = divmod(ms, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if millis:
        text += f".{millis:03d}".rstrip("0")
    text = sign + text
    if days:
        text = f"{sign}{days} day{'s' if days != 1 else ''} {text}"
    return text


# --------------------------------------------------------------------------------------------
# JSON text


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# The C encoder, built once (json.dumps builds one per call): 3x faster on small values.
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE: Any = (
    _c_make_encoder(None, None, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    if _c_make_encoder is not None
    else None
)


def dumps(value: JSON) -> str:
    """Compact JSON, as the server sends it (UTF-8, no spaces)."""
    if _C_ENCODE is not None:
        try:
            return "".join(_C_ENCODE(value, 0))
        except TypeError:  # not JSON-native (never for parsed JSON): take the slow path
            pass
    return _ENCODER.encode(value)


def js_number(x: float | int) -> str:
    """Format a number like JavaScript's Number#toString (5e-7, 0.0000117, 3)."""
    if isinstance(x, int):
        return str(x)
    if x != x or x in (float("inf"), float("-inf")):
        return "null"
    if x == 0:
        return "0"
    sign, digit_tuple, exp = Decimal(repr(x)).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exp += len("".join(map(str, digit_tuple))) - len(digits)
    k = len(digits)
    n = k + exp  # value = 0.digits * 10**n
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mant = digits[0] + ("." + digits[1:] if k > 1 else "")
        out = f"{mant}e{'+' if e > 0 else '-'}{abs(e)}"
    return ("-" if sign else "") + out


def js_dumps(value: JSON) -> str:
    """JSON.stringify: like `dumps`, but numbers are formatted the JavaScript way."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return js_number(value)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                json.dumps(str(k), ensure_ascii=False) + ":" + js_dumps(v) for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(js_dumps(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
