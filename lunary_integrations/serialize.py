"""Any Python value -> JSON-safe data: fast, bounded in size, never raises.

This runs on the hot path (inside every LangChain / LlamaIndex callback), so the common case
(small dicts and lists of ``str``/``int``/``float``/``bool``/``None``, LangChain messages) is
handled by a dispatch on ``type(value)`` with a few inlined fast paths; everything rare goes
through a per-type classification that is computed once per type and cached.

The result is a *snapshot*: every list/dict in it is new, so the caller may mutate its own
objects afterwards. Strings are shared (they are immutable).

Conventions (all outputs are plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``):

* **Size**: ``len(json.dumps(out, allow_nan=False, ensure_ascii=False).encode("utf-8"))`` is
  at most ``max_bytes`` whenever ``max_bytes >= MIN_MAX_BYTES`` (64). Below that the result is
  still valid JSON, best effort (it may be ``None``). The walk is greedy and in order: a
  string is cut to what remains of the budget and ends with :data:`TRUNCATION_MARKER`
  (``"…[truncated 123 chars]"``); once the budget is spent, the remaining items of a list are
  replaced by one item ``"…[12 more items omitted]"`` and those of a dict by one entry
  ``"…": "…[12 more items omitted]"`` (see :data:`OMITTED_MARKER`, :data:`OMITTED_KEY`).
* **Width**: at most :data:`MAX_ITEMS` (1000) items per container, then the omission marker.
* **Depth**: containers deeper than :data:`MAX_DEPTH` (32) become ``"<max depth>"``.
* **Cycles**: a container already on the current path becomes ``"<cycle>"``.
* ``str``: lone surrogates (not encodable as UTF-8) are replaced by U+FFFD, surrogate pairs
  are joined. ``str`` subclasses become plain ``str``.
* ``int``: kept when ``-2**63 <= i < 2**63``, else its decimal string (``"<int: N bits>"``
  when it has too many digits for ``str()``). ``bool`` stays ``bool``.
* ``float``: kept; NaN / +inf / -inf become the strings ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"``.
* ``dict`` / ``Mapping``: keys become ``str``: ``str`` as is, ``True``/``False``/``None`` as
  ``"true"``/``"false"``/``"null"`` and numbers as their JSON text (like ``json.dumps``),
  anything else via :func:`repr` (``"<ClassName>"`` when ``repr`` is the default one or
  fails). A converted or cut key that collides with an existing key gets a ``"#2"``,
  ``"#3"``... suffix.
* ``list``, ``tuple``, ``deque``, other ``Sequence``, dict views -> ``list``; ``set`` /
  ``frozenset`` -> ``list``, sorted when the items are sortable.
* generators, iterators, coroutines, async generators are never consumed:
  ``"<generator>"``, ``"<list_iterator>"``, ``"<coroutine>"``... (``"<TypeName>"``).
* pydantic v2 models -> ``model_dump()`` then converted (on failure, their public
  attributes); pydantic v1 style models -> ``.dict()``; dataclasses -> their fields
  (no deep copy); enums -> their ``value``.
* types an integration registered (:func:`register_type_handler`, by module prefix) -> the
  fields its function returns, walked like a dict (``lunary_integrations.langchain`` registers
  LangChain messages: their fields minus the empty ones); on failure, as any other model.
* ``bytes`` / ``bytearray`` / ``memoryview``: the text when it is at most
  :data:`BYTES_AS_TEXT_MAX` (1024) bytes of valid UTF-8, else ``"<bytes: 1234 bytes>"``
  (``"<bytearray: ...>"``, ``"<memoryview: ...>"``).
* ``datetime`` / ``date`` / ``time`` -> ``isoformat()``; ``timedelta`` -> total seconds
  (``float``); ``UUID``, ``Decimal``, ``Path``, ``complex`` -> ``str()`` (``"1.10"``,
  ``"(1+2j)"``).
* numpy scalars / arrays (only when numpy is already imported by the user) -> ``.item()`` /
  ``.tolist()``; arrays of more than 100 000 elements -> ``"<ndarray shape=(..) dtype=..>"``.
* exceptions -> ``{"type": "ValueError", "message": str(exc)}``.
* functions -> ``"<function qualname>"``; classes -> ``repr(cls)``.
* other objects -> their public attributes (``vars()``, names not starting with ``_``) when
  they have any, else ``repr()`` cut to 256 characters, or ``"<ClassName>"`` when ``repr`` is
  the default (address-bearing) one or raises.
* If converting one value raises (hostile ``__iter__``, ``items``, ``isoformat``...), that
  value becomes ``"<unserializable ClassName>"`` and the walk goes on (a failing
  ``model_dump``/``.dict()`` falls back to the public attributes first, a failing ``repr`` to
  ``"<ClassName>"``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import sys
import types
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MappingView,
    Sequence,
)
from collections.abc import Set as AbstractSet
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any, Final, TypeAlias
from uuid import UUID

try:  # pragma: no cover - orjson is a dependency, the fallback is for odd installs
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "BYTES_AS_TEXT_MAX",
    "CYCLE_PLACEHOLDER",
    "JSON",
    "MAX_DEPTH",
    "MAX_DEPTH_PLACEHOLDER",
    "MAX_ITEMS",
    "MIN_MAX_BYTES",
    "OMITTED_KEY",
    "OMITTED_MARKER",
    "TRUNCATION_MARKER",
    "dumps",
    "fit",
    "register_type_handler",
    "to_jsonable",
    "truncate_text",
]

JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None

#: End of a cut string; ``{n}`` is the number of characters removed.
TRUNCATION_MARKER: Final = "…[truncated {n} chars]"
#: Last item of a list (or value of :data:`OMITTED_KEY` in a dict) whose tail was dropped.
OMITTED_MARKER: Final = "…[{n} more items omitted]"
#: Key of the omission entry of a dict.
OMITTED_KEY: Final = "…"
CYCLE_PLACEHOLDER: Final = "<cycle>"
MAX_DEPTH_PLACEHOLDER: Final = "<max depth>"
#: Smallest ``max_bytes`` for which the size guarantee is promised.
MIN_MAX_BYTES: Final = 64
MAX_DEPTH: Final = 32
MAX_ITEMS: Final = 1000
BYTES_AS_TEXT_MAX: Final = 1024
REPR_MAX_CHARS: Final = 256
NUMPY_MAX_SIZE: Final = 100_000

_enc: Callable[[str], str] = json.encoder.encode_basestring
_I63: Final = 2**63
_MARK_FMT = TRUNCATION_MARKER.format
_OMIT_FMT = OMITTED_MARKER.format
# JSON bytes of '"…": ' (the omission key plus separator) and of the quotes + fixed part of
# OMITTED_MARKER (without the digits).
_OMIT_KEY_BYTES: Final = len(_enc(OMITTED_KEY).encode()) + 2
_OMIT_FIXED_BYTES: Final = len(_enc(_OMIT_FMT(n="")).encode())
_MARK_FIXED_BYTES: Final = len(_MARK_FMT(n="").encode())


class _Omit:
    """Sentinel: the value does not fit in the space left."""

    __slots__ = ()


_OMIT: Final = _Omit()
_Result: TypeAlias = tuple[Any, int]
_Handler: TypeAlias = Callable[[Any, int, int, "set[int]"], _Result]


# --------------------------------------------------------------------------------------------
# strings


def truncate_text(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, the last ones being the marker.

    Returns ``text`` itself when it is short enough. When ``max_chars`` is too small to hold
    the marker, returns the first ``max_chars`` characters without it.
    """
    n = len(text)
    if n <= max_chars:
        return text
    if max_chars <= 0:
        return ""
    # The marker for n removed chars is at least as long as the final one (fewer removed).
    keep = max_chars - len(_MARK_FMT(n=n))
    if keep < 0:
        return text[:max_chars]
    # The final count may have fewer digits: give the room back to the text.
    while keep + 1 + len(_MARK_FMT(n=n - keep - 1)) <= max_chars:
        keep += 1
    return text[:keep] + _MARK_FMT(n=n - keep)


def _fix_surrogates(s: str) -> str:
    # Joins surrogate pairs, replaces lone surrogates with U+FFFD.
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


_SPECIAL: Final = bytes(range(32)) + b'"\\'  # bytes that JSON escapes
_ESC2: Final = b'"\\\b\f\n\r\t'  # ... as two characters (the others as \u00XX: six)
_SHORT: Final = 256  # below this, json's own C escaper is the cheapest way to measure


def _utf8_json_bytes(b: bytes) -> int:
    """JSON bytes (quotes excluded) of the string whose UTF-8 encoding is ``b``."""
    n = len(b)
    special = n - len(b.translate(None, _SPECIAL))
    if not special:
        return n
    two = n - len(b.translate(None, _ESC2))
    return n + two + 5 * (special - two)


def _content_bytes(s: str) -> int:
    """JSON bytes of ``s`` without the quotes (``s`` has no surrogates)."""
    if len(s) < _SHORT and s.isascii():
        return len(_enc(s)) - 2
    return _utf8_json_bytes(s.encode("utf-8"))


def _cut(s: str, limit: int) -> _Result:
    """``s`` (no surrogates) cut so that its JSON text, marker included, is <= limit bytes."""
    n = len(s)
    # Upper bound of the marker's bytes: the final count of removed chars is <= n.
    avail = limit - 2 - _MARK_FIXED_BYTES - len(str(n))
    if avail < 0:
        return _OMIT, 0
    k = min(avail, n)  # every char is at least one byte
    head = s[:k]
    b = _content_bytes(head)
    while b > avail:
        k = min(k - 1, k * avail // b)
        head = s[:k]
        b = _content_bytes(head)
    marker = _MARK_FMT(n=n - k)
    return head + marker, 2 + b + len(marker.encode())


def _str(s: str, limit: int) -> _Result:
    """An exact ``str``: itself with its JSON size, or cut to ``limit``."""
    if s.isascii():
        if len(s) + 2 > limit:
            return _cut(s, limit)
        size = len(_enc(s)) if len(s) < _SHORT else _utf8_json_bytes(s.encode()) + 2
    else:
        try:
            encoded = s.encode("utf-8")
        except UnicodeEncodeError:
            s = _fix_surrogates(s)
            encoded = s.encode("utf-8")
        if len(encoded) + 2 > limit:
            return _cut(s, limit)
        size = _utf8_json_bytes(encoded) + 2
    if size <= limit:
        return s, size
    return _cut(s, limit)


def _h_str(v: str, limit: int, depth: int, stack: set[int]) -> _Result:
    return _str(v, limit)


# --------------------------------------------------------------------------------------------
# scalars


def _h_none(v: None, limit: int, depth: int, stack: set[int]) -> _Result:
    return (None, 4) if limit >= 4 else (_OMIT, 0)


def _h_bool(v: bool, limit: int, depth: int, stack: set[int]) -> _Result:
    size = 4 if v else 5
    return (v, size) if limit >= size else (_OMIT, 0)


def _big_int_text(v: int) -> str:
    try:
        return int.__repr__(v)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        return f"<int: {v.bit_length()} bits>"


def _h_int(v: int, limit: int, depth: int, stack: set[int]) -> _Result:
    if -_I63 <= v < _I63:
        size = len(int.__repr__(v))
        return (v, size) if limit >= size else (_OMIT, 0)
    return _str(_big_int_text(v), limit)


def _h_float(v: float, limit: int, depth: int, stack: set[int]) -> _Result:
    if v - v == 0.0:  # finite
        size = len(float.__repr__(v))
        return (v, size) if limit >= size else (_OMIT, 0)
    if v != v:
        return _str("NaN", limit)
    return _str("Infinity" if v > 0 else "-Infinity", limit)


# --------------------------------------------------------------------------------------------
# containers


def _type_name(t: type) -> str:
    try:
        name = t.__qualname__
        if type(name) is str:
            return name
    except Exception:
        pass
    try:
        name = type.__getattribute__(t, "__name__")
        if type(name) is str:
            return name
    except Exception:
        pass
    return "object"


def _key_text(k: object) -> str:
    """A non-``str`` (or ``str`` subclass) dict key as text, like ``json.dumps`` for scalars."""
    try:
        if isinstance(k, str):
            return str.__str__(k)
        if k is None:
            return "null"
        if k is True:
            return "true"
        if k is False:
            return "false"
        t = type(k)
        if t is int:
            return _big_int_text(k)  # type: ignore[arg-type]
        if t is float:
            f: float = k  # type: ignore[assignment]
            if f - f == 0.0:
                return float.__repr__(f)
            return "NaN" if f != f else ("Infinity" if f > 0 else "-Infinity")
        if isinstance(k, Enum):
            return _key_text(k.value)
    except Exception:
        pass
    return _safe_repr(k)


_LIST_RESERVE: Final = 2 + _OMIT_FIXED_BYTES + 4  # ", " + omission item (n < 10_000)
_DICT_RESERVE: Final = _LIST_RESERVE + _OMIT_KEY_BYTES


def _walk_dict(
    items: Iterable[tuple[Any, Any]],
    n: int,
    limit: int,
    depth: int,
    stack: set[int],
    ident: int,
) -> _Result:
    """Convert ``items`` (``n`` of them) into a new dict of at most ``limit`` JSON bytes.

    ``ident`` (the id of the object the items come from) is put on the current path, lazily:
    only values that are not inlined (short ``str``, 64-bit ``int``) can lead back to it.
    """
    if limit < 2:
        return _OMIT, 0
    out: dict[str, Any] = {}
    # ``used`` sums (item + 2): the 2 pays for the brackets (first item) or the ", " (others).
    used = 0
    reserve = _DICT_RESERVE if n < 10_000 else _DICT_RESERVE + len(str(n))
    last = -1 if n > MAX_ITEMS else n - 1
    depth += 1
    check = False  # set once a key was converted or cut: collisions become possible
    pushed = False
    i = 0
    try:
        for k, v in items:
            if i == MAX_ITEMS:
                break
            room = limit - used - 2 - (0 if i == last else reserve) - 2  # 2: ": "
            # ---- key
            if type(k) is str and k.isascii() and len(k) < _SHORT:
                key = k
                ks = len(_enc(k))
                if ks + 1 > room:
                    key, ks = _cut(k, room - 1)
                    if key is _OMIT:
                        break
                    check = True
            else:
                key, ks = _str(k if type(k) is str else _key_text(k), room - 1)
                if key is _OMIT:
                    break
                check = True
            if check and key in out:
                key, ks = _dedupe(out, key, room - 1)
                if key is _OMIT:
                    break
            room -= ks
            # ---- value
            t = type(v)
            if t is str and v.isascii() and len(v) < _SHORT:
                vs = len(_enc(v))
                if vs > room:
                    v, vs = _cut(v, room)
            elif t is int and -_I63 <= v < _I63:
                vs = len(int.__repr__(v))
                if vs > room:
                    break
            else:
                if not pushed:
                    stack.add(ident)
                    pushed = True
                h = _HANDLERS.get(t)
                v, vs = (
                    h(v, room, depth, stack) if h is not None else _h_other(v, room, depth, stack)
                )
            if v is _OMIT:
                break
            out[key] = v
            used += ks + vs + 4
            i += 1
        else:
            return out, used or 2
    finally:
        if pushed:
            stack.discard(ident)
    if i < n:
        marker = _OMIT_FMT(n=n - i)
        size = _OMIT_KEY_BYTES + len(marker.encode()) + 4
        if used + size <= limit and OMITTED_KEY not in out:
            out[OMITTED_KEY] = marker
            used += size
    return out, used or 2


def _dedupe(out: dict[str, Any], key: str, limit: int) -> _Result:
    j = 2
    while True:
        cand = f"{key}#{j}"
        if cand not in out:
            return _str(cand, limit)
        j += 1


def _walk_list(
    items: Iterable[Any],
    n: int,
    limit: int,
    depth: int,
    stack: set[int],
    ident: int,
) -> _Result:
    """Convert ``items`` (``n`` of them) into a new list of at most ``limit`` JSON bytes."""
    if limit < 2:
        return _OMIT, 0
    out: list[Any] = []
    append = out.append
    used = 0  # sums (item + 2), as in _walk_dict
    reserve = _LIST_RESERVE if n < 10_000 else _LIST_RESERVE + len(str(n))
    last = -1 if n > MAX_ITEMS else n - 1
    depth += 1
    pushed = False
    i = 0
    try:
        for v in items:
            if i == MAX_ITEMS:
                break
            room = limit - used - 2 - (0 if i == last else reserve)
            t = type(v)
            if t is str and v.isascii() and len(v) < _SHORT:
                vs = len(_enc(v))
                if vs > room:
                    v, vs = _cut(v, room)
            elif t is int and -_I63 <= v < _I63:
                vs = len(int.__repr__(v))
                if vs > room:
                    break
            else:
                if not pushed:
                    stack.add(ident)
                    pushed = True
                h = _HANDLERS.get(t)
                v, vs = (
                    h(v, room, depth, stack) if h is not None else _h_other(v, room, depth, stack)
                )
            if v is _OMIT:
                break
            append(v)
            used += vs + 2
            i += 1
        else:
            return out, used or 2
    finally:
        if pushed:
            stack.discard(ident)
    if i < n:
        marker = _OMIT_FMT(n=n - i)
        size = len(marker.encode()) + 4
        if used + size <= limit:
            append(marker)
            used += size
    return out, used or 2


def _unserializable(v: object, limit: int) -> _Result:
    return _str(f"<unserializable {_type_name(type(v))}>", limit)


def _h_dict(v: dict[Any, Any], limit: int, depth: int, stack: set[int]) -> _Result:
    if depth >= MAX_DEPTH:
        return _str(MAX_DEPTH_PLACEHOLDER, limit)
    ident = id(v)
    if ident in stack:
        return _str(CYCLE_PLACEHOLDER, limit)
    try:
        return _walk_dict(dict.items(v), len(v), limit, depth, stack, ident)
    except Exception:  # e.g. resized by another thread during the walk
        return _unserializable(v, limit)


def _h_list(v: list[Any] | tuple[Any, ...], limit: int, depth: int, stack: set[int]) -> _Result:
    if depth >= MAX_DEPTH:
        return _str(MAX_DEPTH_PLACEHOLDER, limit)
    ident = id(v)
    if ident in stack:
        return _str(CYCLE_PLACEHOLDER, limit)
    try:
        return _walk_list(v, len(v), limit, depth, stack, ident)
    except Exception:
        return _unserializable(v, limit)


def _blocked(owner: object, limit: int, depth: int, stack: set[int]) -> _Result | None:
    """The placeholder when ``owner`` may not be walked (too deep, or a cycle), else None."""
    if depth >= MAX_DEPTH:
        return _str(MAX_DEPTH_PLACEHOLDER, limit)
    if id(owner) in stack:
        return _str(CYCLE_PLACEHOLDER, limit)
    return None


def _derived(
    owner: object,
    make: Callable[[], Any],
    limit: int,
    depth: int,
    stack: set[int],
) -> _Result:
    """Walk ``make()`` (new data built from ``owner``) with ``owner`` on the current path."""
    blocked = _blocked(owner, limit, depth, stack)
    if blocked is not None:
        return blocked
    ident = id(owner)
    data = make()
    if type(data) is dict:
        return _walk_dict(dict.items(data), len(data), limit, depth, stack, ident)
    if type(data) is list:
        return _walk_list(data, len(data), limit, depth, stack, ident)
    stack.add(ident)
    try:
        return _conv(data, limit, depth + 1, stack)
    finally:
        stack.discard(ident)


_SORTABLE: Final = (frozenset({str}), frozenset({int, float, bool}))


def _h_set(v: AbstractSet[Any], limit: int, depth: int, stack: set[int]) -> _Result:
    """Sets: sorted when small and made of strings only or numbers only (no user code runs)."""
    blocked = _blocked(v, limit, depth, stack)
    if blocked is not None:
        return blocked
    n = len(v)
    items: Iterable[Any] = v
    if n <= MAX_ITEMS:
        listed = list(v)
        kinds = {type(x) for x in listed}
        if kinds <= _SORTABLE[0] or kinds <= _SORTABLE[1]:
            with contextlib.suppress(Exception):
                listed.sort()
        items = listed
    return _walk_list(items, n, limit, depth, stack, id(v))


def _h_iterable(v: Any, limit: int, depth: int, stack: set[int]) -> _Result:
    """Re-iterable containers (deque, Sequence, dict views, ...): iterated, not copied."""
    blocked = _blocked(v, limit, depth, stack)
    if blocked is not None:
        return blocked
    return _walk_list(iter(v), len(v), limit, depth, stack, id(v))


def _h_mapping(v: Mapping[Any, Any], limit: int, depth: int, stack: set[int]) -> _Result:
    blocked = _blocked(v, limit, depth, stack)
    if blocked is not None:
        return blocked
    return _walk_dict(iter(v.items()), len(v), limit, depth, stack, id(v))


# --------------------------------------------------------------------------------------------
# rare types: classified once per type, then cached


def _safe_repr(v: object) -> str:
    t = type(v)
    try:
        if t.__repr__ is object.__repr__:
            return f"<{_type_name(t)}>"
        r = repr(v)
        if type(r) is str:
            return truncate_text(r, REPR_MAX_CHARS)
        if isinstance(r, str):
            return truncate_text(str.__str__(r), REPR_MAX_CHARS)
    except Exception:
        pass
    return f"<{_type_name(t)}>"


def _h_repr(v: object, limit: int, depth: int, stack: set[int]) -> _Result:
    return _str(_safe_repr(v), limit)


def _h_typename(v: object, limit: int, depth: int, stack: set[int]) -> _Result:
    return _str(f"<{_type_name(type(v))}>", limit)


def _h_function(v: object, limit: int, depth: int, stack: set[int]) -> _Result:
    try:
        name = getattr(v, "__qualname__", None) or getattr(v, "__name__", None)
        if isinstance(name, str):
            return _str(f"<function {str.__str__(name)}>", limit)
    except Exception:
        pass
    return _str("<function>", limit)


def _public_attrs(v: object) -> dict[Any, Any] | None:
    try:
        d = object.__getattribute__(v, "__dict__")
    except Exception:
        return None
    if not isinstance(d, dict):
        return None
    attrs = {k: val for k, val in dict.items(d) if not (isinstance(k, str) and k.startswith("_"))}
    return attrs or None


def _h_object(v: object, limit: int, depth: int, stack: set[int]) -> _Result:
    attrs = _public_attrs(v)
    if attrs is not None:
        return _derived(v, lambda: attrs, limit, depth, stack)
    return _h_repr(v, limit, depth, stack)


def _h_enum(v: Enum, limit: int, depth: int, stack: set[int]) -> _Result:
    return _derived(v, lambda: v.value, limit, depth, stack)


def _h_str_sub(v: str, limit: int, depth: int, stack: set[int]) -> _Result:
    return _str(str.__str__(v), limit)


def _h_int_sub(v: int, limit: int, depth: int, stack: set[int]) -> _Result:
    return _h_int(int.__int__(v), limit, depth, stack)


def _h_float_sub(v: float, limit: int, depth: int, stack: set[int]) -> _Result:
    return _h_float(float.__float__(v), limit, depth, stack)


def _h_pydantic(v: Any, limit: int, depth: int, stack: set[int]) -> _Result:
    try:
        return _derived(v, v.model_dump, limit, depth, stack)
    except Exception:
        return _h_object(v, limit, depth, stack)


#: Registered by integrations: module prefix -> handler, see register_type_handler.
_FIELD_HOOKS: dict[str, _Handler] = {}


def _fields_handler(fields_of: Callable[[Any], dict[Any, Any]]) -> _Handler:
    def handler(v: Any, limit: int, depth: int, stack: set[int]) -> _Result:
        try:
            if depth >= MAX_DEPTH:
                return _str(MAX_DEPTH_PLACEHOLDER, limit)
            ident = id(v)
            if ident in stack:
                return _str(CYCLE_PLACEHOLDER, limit)
            fields = fields_of(v)
            return _walk_dict(dict.items(fields), len(fields), limit, depth, stack, ident)
        except Exception:
            return _guarded(_h_pydantic)(v, limit, depth, stack)

    return handler


def register_type_handler(module_prefix: str, fields_of: Callable[[Any], dict[Any, Any]]) -> None:
    """Render the instances of every class defined under ``module_prefix`` as the dict
    ``fields_of(instance)`` returns (walked with the same bounds as any dict; if it raises,
    the instance is rendered as any other model). An integration calls this at import for
    the types it knows, so this module knows no framework. Types seen earlier are
    reclassified."""
    handler = _fields_handler(fields_of)
    _SELF_GUARDED.add(handler)  # it catches its own exceptions
    _FIELD_HOOKS[module_prefix] = handler  # registering again (a reload) replaces
    for t in list(_HANDLERS)[_BUILTIN_COUNT:]:  # forget the cached classifications
        _HANDLERS.pop(t, None)


def _h_pydantic_v1(v: Any, limit: int, depth: int, stack: set[int]) -> _Result:
    try:
        return _derived(v, v.dict, limit, depth, stack)
    except Exception:
        return _h_object(v, limit, depth, stack)


def _h_dataclass(v: Any, limit: int, depth: int, stack: set[int]) -> _Result:
    def fields() -> dict[str, Any]:
        return {f: getattr(v, f) for f in type(v).__dataclass_fields__}

    try:
        return _derived(v, fields, limit, depth, stack)
    except Exception:
        return _h_object(v, limit, depth, stack)


def _h_iso(v: _dt.date | _dt.time, limit: int, depth: int, stack: set[int]) -> _Result:
    text = v.isoformat()
    return _str(text if type(text) is str else _safe_repr(v), limit)


def _h_timedelta(v: _dt.timedelta, limit: int, depth: int, stack: set[int]) -> _Result:
    return _h_float(float(v.total_seconds()), limit, depth, stack)


def _h_to_str(v: object, limit: int, depth: int, stack: set[int]) -> _Result:
    text = str(v)
    return _str(str.__str__(text) if isinstance(text, str) else _safe_repr(v), limit)


def _h_bytes(v: bytes | bytearray | memoryview, limit: int, depth: int, stack: set[int]) -> _Result:
    n = v.nbytes if isinstance(v, memoryview) else len(v)
    if n <= BYTES_AS_TEXT_MAX:
        try:
            return _str(bytes(v).decode("utf-8"), limit)
        except Exception:
            pass
    return _str(f"<{_type_name(type(v))}: {n} bytes>", limit)


def _h_exception(v: BaseException, limit: int, depth: int, stack: set[int]) -> _Result:
    try:
        message = str(v)
        if not isinstance(message, str):
            raise TypeError
        message = str.__str__(message)
    except Exception:
        message = _safe_repr(v)
    data = {"type": _type_name(type(v)), "message": message}
    return _derived(v, lambda: data, limit, depth, stack)


def _h_numpy(v: Any, limit: int, depth: int, stack: set[int]) -> _Result:
    size = v.size
    if isinstance(size, int) and size > NUMPY_MAX_SIZE:
        return _str(f"<ndarray shape={tuple(v.shape)} dtype={v.dtype}>", limit)
    # .tolist() on an array -> nested lists; on a numpy scalar -> a Python scalar.
    return _derived(v, v.tolist, limit, depth, stack)


def _classify(t: type) -> _Handler:
    """Pick the handler of a type that is not an exact builtin (called once per type)."""
    try:
        if issubclass(t, Enum):
            return _h_enum
        module = t.__module__
        if not isinstance(module, str):
            module = ""
        if (module == "numpy" or module.startswith("numpy.")) and hasattr(t, "tolist"):
            return _h_numpy
        if issubclass(t, str):
            return _h_str_sub
        if issubclass(t, int):
            return _h_int_sub
        if issubclass(t, float):
            return _h_float_sub
        if issubclass(t, dict):
            return _h_dict  # dict.items(): what the dict holds, whatever it overrides
        if issubclass(t, (list, tuple)):
            return _h_list
        if issubclass(t, deque):
            return _h_iterable
        if issubclass(t, (set, frozenset)):
            return _h_set
        for prefix, handler in _FIELD_HOOKS.items():
            if module.startswith(prefix):
                return handler
        if isinstance(getattr(t, "__pydantic_fields__", None), dict) and callable(
            getattr(t, "model_dump", None)
        ):
            return _h_pydantic
        if dataclasses.is_dataclass(t):
            return _h_dataclass
        if issubclass(t, (_dt.date, _dt.time)):  # datetime is a date
            return _h_iso
        if issubclass(t, _dt.timedelta):
            return _h_timedelta
        if issubclass(t, (UUID, Decimal, PurePath, complex)):
            return _h_to_str
        if issubclass(t, (bytes, bytearray, memoryview)):
            return _h_bytes
        if issubclass(t, BaseException):
            return _h_exception
        if issubclass(
            t,
            (
                types.GeneratorType,
                types.AsyncGeneratorType,
                types.CoroutineType,
                Iterator,
                AsyncIterator,
                Awaitable,
            ),
        ):
            return _h_typename
        if issubclass(t, Mapping):
            return _h_mapping
        if issubclass(t, (Sequence, AbstractSet, MappingView)):
            return _h_set if issubclass(t, AbstractSet) else _h_iterable
        if issubclass(t, type):
            return _h_repr
        if issubclass(
            t,
            (
                types.FunctionType,
                types.BuiltinFunctionType,
                types.MethodType,
                types.BuiltinMethodType,
            ),
        ):
            return _h_function
        if isinstance(getattr(t, "__fields__", None), dict) and callable(getattr(t, "dict", None)):
            return _h_pydantic_v1
    except Exception:
        pass
    return _h_object


_HANDLERS: dict[type, _Handler] = {
    str: _h_str,
    int: _h_int,
    float: _h_float,
    bool: _h_bool,
    type(None): _h_none,
    dict: _h_dict,
    list: _h_list,
    tuple: _h_list,
}
_BUILTIN_COUNT: Final = len(_HANDLERS) + 2  # + set, frozenset (below)
#: Handlers that catch their own exceptions (no wrapper call needed).
_SELF_GUARDED: Final[set[_Handler]] = {_h_dict, _h_list}  # + the registered field handlers
_CACHE_MAX: Final = 4096


def _h_other(v: object, limit: int, depth: int, stack: set[int]) -> _Result:
    """Any type not in the dispatch table yet: classify it, cache, convert (guarded)."""
    t = type(v)
    h = _classify(t)
    if h not in _SELF_GUARDED:
        h = _guarded(h)
    if len(_HANDLERS) < _BUILTIN_COUNT + _CACHE_MAX:
        _HANDLERS[t] = h
    return h(v, limit, depth, stack)


def _guarded(h: _Handler) -> _Handler:
    def handler(v: Any, limit: int, depth: int, stack: set[int]) -> _Result:
        try:
            return h(v, limit, depth, stack)
        except Exception:
            try:
                return _unserializable(v, limit)
            except Exception:  # pragma: no cover - only a broken type object gets here
                return _OMIT, 0

    handler.__name__ = h.__name__
    return handler


_HANDLERS[set] = _HANDLERS[frozenset] = _guarded(_h_set)


def _conv(v: object, limit: int, depth: int, stack: set[int]) -> _Result:
    h = _HANDLERS.get(type(v))
    if h is not None:
        return h(v, limit, depth, stack)
    return _h_other(v, limit, depth, stack)


# --------------------------------------------------------------------------------------------
# public API


def _fallback(v: object, max_bytes: int) -> JSON:
    """What a failed top-level conversion gives: a placeholder, or ``None`` if it cannot fit."""
    try:
        out, _ = _unserializable(v, max_bytes)
        if out is not _OMIT:
            return out  # type: ignore[no-any-return]
    except Exception:  # pragma: no cover
        pass
    return None  # 4 bytes: the best effort for a tiny max_bytes


def _top(v: object, max_bytes: int, depth: int) -> JSON:
    try:
        out, _ = _conv(v, max_bytes, depth, set())
    except Exception:  # RecursionError near the interpreter's limit, or a bug: never raise
        return _fallback(v, max_bytes)
    return None if out is _OMIT else out


def to_jsonable(value: object, max_bytes: int = 65536) -> JSON:
    """Snapshot ``value`` as JSON-safe data whose JSON text is at most ``max_bytes`` bytes.

    Guarantee (for ``max_bytes >= MIN_MAX_BYTES``)::

        len(json.dumps(result, allow_nan=False, ensure_ascii=False).encode("utf-8")) <= max_bytes

    The result shares no list/dict with ``value``. Never raises; see the module docstring for
    how each type is rendered.
    """
    t = type(value)
    if (t is dict or t is list) and _orjson is not None:
        plain = _plain_copy(value, max_bytes)
        if plain is not None:
            return plain
    try:  # _top() inlined: this is the hot path
        h = _HANDLERS.get(t)
        out, _ = (
            h(value, max_bytes, 0, set()) if h is not None else _h_other(value, max_bytes, 0, set())
        )
    except Exception:  # RecursionError near the interpreter's limit, or a bug: never raise
        return _fallback(value, max_bytes)
    return None if out is _OMIT else out


def _plain_copy(value: object, max_bytes: int) -> JSON:
    """The common case in C: ``value`` is plain data that the rules above would leave as it
    is. orjson encodes it, and the bytes prove it: at most :data:`MAX_DEPTH` containers and
    fewer than :data:`MAX_ITEMS` commas (no container too deep or too wide), no ``null``
    (how orjson writes NaN and infinities), and within ``max_bytes`` with the room the walk
    keeps at each level for an omission marker (so the walk would not cut either). orjson
    refuses what needs converting (non-``str`` keys, big ints, surrogates, bytes, sets,
    models...), and with ``OPT_STRICT_INTEGER`` any int beyond ±2**53 (orjson would write
    unsigned ints up to 2**64, past the signed 64 bits kept as numbers). None when the walk
    must decide (a ``null``, a ``"null"`` in a string, a refusal, a tight budget): the result
    is the same either way, only its cost differs."""
    try:
        data = _orjson.dumps(value, option=_orjson.OPT_STRICT_INTEGER)
    except Exception:
        return None
    containers = data.count(b"[") + data.count(b"{")
    if (
        containers > MAX_DEPTH
        or len(data) + (containers + 1) * _DICT_RESERVE > max_bytes
        or b"null" in data
        or data.count(b",") >= MAX_ITEMS
    ):
        return None
    result: JSON = _orjson.loads(data)
    return result


def fit(value: JSON, max_bytes: int) -> JSON:
    """Shrink already JSON-safe ``value`` so its JSON text is at most ``max_bytes`` bytes.

    Returns ``value`` itself when it already fits; otherwise a shrunk copy made with the same
    rules and markers as :func:`to_jsonable` (depth allowed up to ``2 * MAX_DEPTH``).
    """
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        if len(text) <= max_bytes and (text.isascii() or len(text.encode("utf-8")) <= max_bytes):
            return value
    except Exception:  # NaN, surrogates, non-JSON values, too deep: let the walk fix them
        pass
    return _top(value, max_bytes, -MAX_DEPTH)


def dumps(value: JSON) -> bytes:
    """Compact UTF-8 JSON bytes of JSON-safe ``value`` (orjson when available, else json).

    Falls back to :mod:`json` for what orjson refuses (ints beyond 64 bits, non-``str`` keys,
    nesting deeper than 254), and to ``dumps(to_jsonable(value, sys.maxsize))`` for what
    neither accepts. Never raises.
    """
    if _orjson is not None:
        try:
            return _orjson.dumps(value)
        except Exception:
            pass
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
            "utf-8"
        )
    except Exception:
        pass
    safe = _top(value, sys.maxsize, 0)
    try:
        if _orjson is not None:
            return _orjson.dumps(safe)
        return json.dumps(safe, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except Exception:  # pragma: no cover
        return b"null"
