"""Cheap, safe copies of callback arguments, taken on the caller's thread.

Translation and serialization run later, on the ingest worker: whatever the caller may still
mutate must be copied before the callback returns (a LangGraph node appending to its state's
list, a dict reused for the next call). Copying the containers is enough for that, and is
far cheaper than serializing:

* ``dict``, ``list``, ``tuple`` are copied (a tuple of kept values is kept as it is);
* immutable scalars (``str``, numbers, ``bytes``, ``UUID``, dates...) and the framework's
  value types (messages, documents, prompt values: framework code never mutates them after
  a callback) are kept by reference;
* anything else (a user object, a pydantic state, a set...) is serialized now with
  :func:`~lunary_integrations.serialize.to_jsonable`: it may change later.

A copy that would be large (deep, or more than :data:`MAX_NODES` containers and items) is
abandoned for one ``to_jsonable`` of the whole value, which stops at the byte budget: the
caller never pays more than the serializer would.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from collections.abc import Callable
from typing import Any

from .serialize import to_jsonable

#: Items and containers copied before falling back to the byte-bounded serializer.
MAX_NODES = 2_000
_MAX_DEPTH = 24
_FLAT_ITEMS = 64

#: How a type is copied (``Snapshotter.kinds``); ``KEEP``: a value that is its own snapshot.
KEEP, _DICT, _LIST, _TUPLE, _EAGER = range(5)

_SCALARS: dict[type, int] = {
    t: KEEP
    for t in (
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        uuid.UUID,
        decimal.Decimal,
        _dt.datetime,
        _dt.date,
        _dt.time,
        _dt.timedelta,
    )
}


_IMMUTABLE_BASES = (str, int, float, bytes, decimal.Decimal, _dt.date, _dt.time, _dt.timedelta)


class Later:
    """Content computed on the ingest worker: ``fn(*args)``. Whoever builds one vouches that
    ``args`` are safe to read later (snapshotted, or values the framework never mutates);
    the snapshot keeps it by reference."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn = fn
        self.args = args

    def __call__(self) -> Any:
        return self.fn(*self.args)


class _TooBig(Exception):
    pass


class Snapshotter:
    """``snapshot(value)``: an immutable-enough copy of ``value`` (see the module docstring).

    ``value_types`` are the framework's own value classes, kept by reference. Never raises.
    """

    def __init__(self, value_types: tuple[type, ...] = (), max_bytes: int = 65_536) -> None:
        self._value_types = value_types
        self._max_bytes = max_bytes
        #: type -> how its values are copied. Hot paths may test ``kinds.get(type(v)) == KEEP``
        #: themselves, to call the snapshotter only for values that need a copy.
        self.kinds: dict[type, int] = {
            **_SCALARS,
            Later: KEEP,
            dict: _DICT,
            list: _LIST,
            tuple: _TUPLE,
        }

    def value(self, value: Any) -> Any:
        """The snapshot of ``value`` (also ``snapshot(value)``; called as a method on hot
        paths: calling the instance costs a special-method lookup each time)."""
        kinds = self.kinds
        kind = kinds.get(type(value))
        if kind == KEEP:  # most arguments: a string, a message
            return value
        if kind in (_DICT, _LIST) and len(value) <= _FLAT_ITEMS:
            # Most of the rest: a small dict or list of kept values, or of small containers of
            # kept values (inputs, a chat model's batches of messages, a graph's state).
            copy = self._shallow(value, kind, kinds)
            if copy is not None:
                return copy
        try:
            return self._copy(value, [MAX_NODES], 0)
        except _TooBig:
            pass
        except Exception:  # a hostile container (``__iter__`` raising): the serializer copes
            pass
        return to_jsonable(value, self._max_bytes)

    __call__ = value

    def arguments(self, arguments: dict[str, Any], skip: frozenset[str]) -> dict[str, Any]:
        """A call's arguments as a dict safe to read later: a copy whose values kept by
        reference are shared (the usual case: a string, a query) and the others snapshotted,
        or left out when their name is in ``skip`` (plumbing nobody shows)."""
        kinds = self.kinds
        copy = arguments.copy()
        for name, value in arguments.items():
            if kinds.get(type(value)) != KEEP:
                if name in skip:
                    del copy[name]
                else:
                    copy[name] = self.value(value)
        return copy

    @staticmethod
    def _shallow(value: Any, kind: int, kinds: dict[type, int]) -> Any:
        """``value`` copied two levels deep when that is all it has, else None."""
        copy = value.copy()
        for key, item in copy.items() if kind == _DICT else enumerate(copy):
            inner = kinds.get(type(item))
            if inner == KEEP:
                continue
            if (inner != _DICT and inner != _LIST) or len(item) > _FLAT_ITEMS:
                return None
            for leaf in item.values() if inner == _DICT else item:
                if kinds.get(type(leaf)) != KEEP:
                    return None
            copy[key] = item.copy()  # same keys: safe while iterating
        return copy

    def _kind(self, t: type) -> int:
        kind = self.kinds.get(t)
        if kind is None:
            # Subclasses of immutable scalars (LangChain's ``TextAccessor`` str) keep their value.
            immutable = issubclass(t, _IMMUTABLE_BASES) or issubclass(t, self._value_types)
            kind = KEEP if immutable else _EAGER
            if len(self.kinds) < 4_096:  # classes made on the fly must not grow this forever
                self.kinds[t] = kind
        return kind

    def _copy(self, value: Any, budget: list[int], depth: int) -> Any:
        kind = self.kinds.get(type(value))
        if kind is None:
            kind = self._kind(type(value))
        if kind == KEEP:
            return value
        if kind == _EAGER:
            return to_jsonable(value, self._max_bytes)
        if depth >= _MAX_DEPTH:  # also what ends a cycle
            raise _TooBig
        budget[0] -= len(value) + 1
        if budget[0] < 0:
            raise _TooBig
        kinds = self.kinds
        if kind == _DICT:
            return {
                k: v if kinds.get(type(v)) == KEEP else self._copy(v, budget, depth + 1)
                for k, v in value.items()
            }
        items = [
            v if kinds.get(type(v)) == KEEP else self._copy(v, budget, depth + 1) for v in value
        ]
        if kind == _LIST:
            return items
        if all(a is b for a, b in zip(items, value)):
            return value  # a tuple of kept values is immutable already
        return tuple(items)


__all__ = ["KEEP", "MAX_NODES", "Later", "Snapshotter"]
