"""Tests of lunary_integrations.serialize: exact conversions, then hostile property tests."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import inspect
import json
import math
import pathlib
import sys
import uuid
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from lunary_integrations import serialize
from lunary_integrations.serialize import (
    CYCLE_PLACEHOLDER,
    MAX_DEPTH,
    MAX_DEPTH_PLACEHOLDER,
    MAX_ITEMS,
    MIN_MAX_BYTES,
    OMITTED_KEY,
    OMITTED_MARKER,
    TRUNCATION_MARKER,
    dumps,
    fit,
    to_jsonable,
    truncate_text,
)


def json_size(value: Any) -> int:
    return len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8"))


def assert_valid(out: Any, max_bytes: int) -> None:
    """The whole contract of an output: strict JSON, within budget, dumps() round-trips."""
    assert json_size(out) <= max_bytes
    assert json.loads(dumps(out)) == out
    assert_plain(out)


def assert_plain(out: Any) -> None:
    """Only exact JSON types, str keys, no NaN/inf, ints within 64 bits."""
    t = type(out)
    if t is dict:
        for k, v in out.items():
            assert type(k) is str
            assert_plain(v)
    elif t is list:
        for v in out:
            assert_plain(v)
    elif t is float:
        assert math.isfinite(out)
    elif t is int:
        assert -(2**63) <= out < 2**63
    else:
        assert t in (str, bool, type(None)), t


def fingerprint(value: Any, seen: dict[int, int] | None = None) -> Any:
    """A structural snapshot of a (possibly cyclic, hostile) input, to detect mutation."""
    if seen is None:
        seen = {}
    t = type(value)
    if t in (str, int, bool, type(None), bytes):
        return (t.__name__, value)
    if t is float:
        return ("float", repr(value))
    if t in (list, tuple, dict, set, frozenset, collections.deque):
        if id(value) in seen:
            return ("ref", seen[id(value)])
        seen[id(value)] = len(seen)
        if t is dict:
            return (
                "dict",
                [(fingerprint(k, seen), fingerprint(v, seen)) for k, v in value.items()],
            )
        if t in (set, frozenset):
            return (t.__name__, sorted(repr(fingerprint(v, seen)) for v in value))
        return (t.__name__, [fingerprint(v, seen) for v in value])
    return ("obj", t.__name__, id(value))


def containers(value: Any, acc: set[int] | None = None) -> set[int]:
    acc = set() if acc is None else acc
    if type(value) in (list, dict) and id(value) not in acc:
        acc.add(id(value))
        for v in value.values() if type(value) is dict else value:
            containers(v, acc)
    return acc


# ------------------------------------------------------------------------------------------
# scalars


def test_plain_scalars_are_kept() -> None:
    for value in ("", "abc", 0, -5, 2**63 - 1, -(2**63), 1.5, -0.0, True, False, None):
        out = to_jsonable(value)
        assert out == value and type(out) is type(value)


def test_big_ints_become_strings() -> None:
    assert to_jsonable(2**63) == str(2**63)
    # Inside plain containers too (orjson alone would write unsigned ints up to 2**64).
    assert to_jsonable([2**63, 2**63 - 1]) == [str(2**63), 2**63 - 1]
    assert to_jsonable({"id": 2**64 - 1}) == {"id": str(2**64 - 1)}
    assert to_jsonable(-(2**63) - 1) == str(-(2**63) - 1)
    assert to_jsonable(10**5000, 1_000_000) == "<int: 16610 bits>"  # beyond str() digits limit


def test_non_finite_floats_become_strings() -> None:
    assert to_jsonable(float("nan")) == "NaN"
    assert to_jsonable(float("inf")) == "Infinity"
    assert to_jsonable(float("-inf")) == "-Infinity"
    assert to_jsonable([1.0, float("nan")]) == [1.0, "NaN"]


def test_str_with_surrogates_is_made_valid_utf8() -> None:
    assert to_jsonable("a\ud800b") == "a\ufffdb"
    assert to_jsonable("\ud83d\ude00") == "😀"  # a surrogate pair is joined
    assert to_jsonable({"k\udfff": 1}) == {"k\ufffd": 1}


def test_str_subclasses_and_int_subclasses_become_plain() -> None:
    class S(str):
        def __str__(self) -> str:
            raise RuntimeError

    class I(int):  # noqa: E742
        pass

    out = to_jsonable([S("x"), I(3)])
    assert out == ["x", 3] and type(out[0]) is str and type(out[1]) is int


def test_datetime_family_uuid_decimal_path_complex() -> None:
    assert to_jsonable(dt.datetime(2024, 1, 2, 3, 4, 5, 6)) == "2024-01-02T03:04:05.000006"
    tz = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
    assert to_jsonable(tz) == "2024-01-02T00:00:00+00:00"
    assert to_jsonable(dt.date(2024, 1, 2)) == "2024-01-02"
    assert to_jsonable(dt.time(3, 4)) == "03:04:00"
    assert to_jsonable(dt.timedelta(minutes=1, milliseconds=500)) == 60.5
    assert to_jsonable(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert to_jsonable(decimal.Decimal("1.10")) == "1.10"
    assert to_jsonable(decimal.Decimal("NaN")) == "NaN"
    assert to_jsonable(pathlib.PurePosixPath("/a/b")) == "/a/b"
    assert to_jsonable(1 + 2j) == "(1+2j)"


def test_bytes() -> None:
    assert to_jsonable(b"hello") == "hello"
    assert to_jsonable(b"\xff\xfe") == "<bytes: 2 bytes>"
    assert to_jsonable(b"a" * 1025) == "<bytes: 1025 bytes>"
    assert to_jsonable(bytearray(b"hi")) == "hi"
    assert to_jsonable(bytearray(2000)) == "<bytearray: 2000 bytes>"
    assert to_jsonable(memoryview(b"hi")) == "hi"
    released = memoryview(b"x")
    released.release()
    assert to_jsonable(released) == "<unserializable memoryview>"


def test_enums() -> None:
    class Color(enum.Enum):
        RED = "red"
        TUPLE = (1, 2)

    class Num(enum.IntEnum):
        ONE = 1

    assert to_jsonable([Color.RED, Color.TUPLE, Num.ONE]) == ["red", [1, 2], 1]
    assert to_jsonable({Color.RED: 1, Num.ONE: 2}) == {"red": 1, "1": 2}


# ------------------------------------------------------------------------------------------
# containers


def test_containers() -> None:
    assert to_jsonable((1, "a")) == [1, "a"]
    assert to_jsonable({3, 1, 2}) == [1, 2, 3]
    assert to_jsonable(frozenset({"b", "a"})) == ["a", "b"]
    assert to_jsonable(collections.deque([1, 2])) == [1, 2]
    assert to_jsonable(collections.OrderedDict(a=1)) == {"a": 1}
    assert to_jsonable(collections.defaultdict(list, a=[1])) == {"a": [1]}
    assert to_jsonable({"a": 1}.keys()) == ["a"]
    assert to_jsonable({"a": 1}.values()) == [1]
    assert to_jsonable({"a": 1}.items()) == [["a", 1]]
    assert to_jsonable(collections.namedtuple("P", "x y")(1, 2)) == [1, 2]
    assert to_jsonable(range(3)) == [0, 1, 2]
    assert to_jsonable({}) == {} and to_jsonable([]) == []


def test_non_str_keys() -> None:
    out = to_jsonable({1: "a", None: "b", 1.5: "d", (1, 2): "e", float("nan"): "f"})
    assert out == {"1": "a", "null": "b", "1.5": "d", "(1, 2)": "e", "NaN": "f"}
    assert to_jsonable({False: 1}) == {"false": 1}


def test_duplicate_keys_after_conversion_are_kept() -> None:
    out = to_jsonable({1: "int", "1": "str", "1#2": "x"})
    assert out == {"1": "int", "1#3": "str", "1#2": "x"} or out == {
        "1": "int",
        "1#2": "str",
        "1#2#2": "x",
    }
    assert sorted(out.values()) == ["int", "str", "x"]  # type: ignore[union-attr, type-var]


def test_generators_and_iterators_are_not_consumed() -> None:
    gen = (i for i in range(3))
    it = iter([1, 2])

    async def coro() -> None:
        pass

    c = coro()
    assert to_jsonable([gen, it, c]) == ["<generator>", "<list_iterator>", "<coroutine>"]
    c.close()
    assert list(gen) == [0, 1, 2] and list(it) == [1, 2]


def test_cycles() -> None:
    a: list[Any] = [1]
    a.append(a)
    assert to_jsonable(a) == [1, CYCLE_PLACEHOLDER]
    d: dict[str, Any] = {"x": 1}
    d["self"] = d
    d["list"] = [d]
    assert to_jsonable(d) == {"x": 1, "self": CYCLE_PLACEHOLDER, "list": [CYCLE_PLACEHOLDER]}
    shared = [1]
    assert to_jsonable([shared, shared]) == [[1], [1]]  # shared, not a cycle


def test_depth_limit() -> None:
    deep: list[Any] = []
    cur = deep
    for _ in range(500):
        cur.append([])
        cur = cur[0]
    out = to_jsonable(deep)
    level = 0
    node: Any = out
    while isinstance(node, list):
        node = node[0]
        level += 1
    assert level == MAX_DEPTH and node == MAX_DEPTH_PLACEHOLDER


def test_width_limit() -> None:
    out = to_jsonable(list(range(5000)), 10**6)
    assert isinstance(out, list)
    assert out[:MAX_ITEMS] == list(range(MAX_ITEMS))
    assert out[MAX_ITEMS] == OMITTED_MARKER.format(n=4000) == "…[4000 more items omitted]"
    out = to_jsonable({str(i): i for i in range(1500)}, 10**6)
    assert isinstance(out, dict) and len(out) == MAX_ITEMS + 1
    assert out[OMITTED_KEY] == "…[500 more items omitted]"


# ------------------------------------------------------------------------------------------
# size budget


def test_string_truncation_exact() -> None:
    out = to_jsonable("x" * 100, 64)
    assert out == "x" * 38 + TRUNCATION_MARKER.format(n=62)
    assert json_size(out) == 63


def test_big_string_fits_default_budget() -> None:
    out = to_jsonable("y" * 100_000)
    assert isinstance(out, str) and out.endswith(" chars]")
    assert 65536 - 30 <= json_size(out) <= 65536


def test_escapes_and_multibyte_are_counted() -> None:
    for text in ("\x01" * 1000, '"' * 1000, "é" * 1000, "😀" * 1000, "a\\b\n" * 300):
        for limit in (64, 100, 1000, 3000):
            out = to_jsonable([text, {"k": text}], limit)
            assert_valid(out, limit)
            assert json_size(out) > limit - 60  # the budget is used, not wasted


def test_budget_exhausted_items_are_omitted() -> None:
    out = to_jsonable({"a": "x" * 1000, "b": 1, "c": 2}, 200)
    assert isinstance(out, dict)
    assert out["a"].endswith(" chars]")  # type: ignore[union-attr]
    assert out[OMITTED_KEY] == "…[2 more items omitted]"
    assert json_size(out) <= 200
    out = to_jsonable(["x" * 1000, 1, 2], 100)
    assert isinstance(out, list) and out[-1] == "…[2 more items omitted]"
    assert json_size(out) <= 100


def test_tiny_budgets_still_valid_json() -> None:
    for limit in range(0, MIN_MAX_BYTES + 1):
        out = to_jsonable({"key": ["value" * 20, 1.5, None]}, limit)
        json.dumps(out, allow_nan=False)
        if limit >= 4:
            assert json_size(out) <= limit


# ------------------------------------------------------------------------------------------
# objects


class Model(BaseModel):
    name: str
    when: dt.datetime
    tags: list[str] = []


class BrokenDump(BaseModel):
    x: int = 1

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("no")


@dataclasses.dataclass
class Node:
    name: str
    child: Any = None


def test_pydantic_models() -> None:
    m = Model(name="a", when=dt.datetime(2024, 1, 1), tags=["t"])
    assert to_jsonable(m) == {"name": "a", "when": "2024-01-01T00:00:00", "tags": ["t"]}
    assert to_jsonable(BrokenDump()) == {"x": 1}  # falls back to the public attributes


def test_pydantic_v1_style_dict() -> None:
    class V1:
        __fields__: ClassVar[dict[str, Any]] = {"a": None}

        def dict(self) -> dict[str, Any]:
            return {"a": 1}

    assert to_jsonable(V1()) == {"a": 1}


def test_dataclasses_with_cycles() -> None:
    n = Node("root")
    n.child = Node("leaf", n)
    assert to_jsonable(n) == {"name": "root", "child": {"name": "leaf", "child": CYCLE_PLACEHOLDER}}


def test_a_registered_type_is_rendered_by_its_fields_function() -> None:
    class Message(BaseModel):
        text: str
        empty: str | None = None

    Message.__module__ = "fake_framework.messages"
    assert to_jsonable(Message(text="a")) == {"text": "a", "empty": None}  # a pydantic model
    serialize.register_type_handler(
        "fake_framework.", lambda m: {"text": m.text.upper(), "self": m}
    )
    try:  # the type seen above is reclassified; a cycle through the fields is still caught
        assert to_jsonable(Message(text="a")) == {"text": "A", "self": CYCLE_PLACEHOLDER}
        serialize.register_type_handler("fake_framework.", lambda m: 1 / 0)
        # a failing fields function: rendered as any other model
        assert to_jsonable(Message(text="b")) == {"text": "b", "empty": None}
    finally:
        del serialize._FIELD_HOOKS["fake_framework."]


def test_exceptions() -> None:
    assert to_jsonable(ValueError("boom")) == {"type": "ValueError", "message": "boom"}

    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError

    assert to_jsonable(Weird()) == {"type": "test_exceptions.<locals>.Weird", "message": "Weird()"}


def test_objects_functions_and_classes() -> None:
    class Plain:
        def __init__(self) -> None:
            self.a = 1
            self._private = 2

    class Empty:
        pass

    class WithRepr:
        __slots__ = ()

        def __repr__(self) -> str:
            return "WithRepr!"

    def f() -> None:
        pass

    assert to_jsonable(Plain()) == {"a": 1}
    assert to_jsonable(Empty()) == "<test_objects_functions_and_classes.<locals>.Empty>"
    assert to_jsonable(WithRepr()) == "WithRepr!"
    assert to_jsonable(object()) == "<object>"
    assert to_jsonable(f) == "<function test_objects_functions_and_classes.<locals>.f>"
    assert to_jsonable(len) == "<function len>"
    assert to_jsonable(int) == "<class 'int'>"


class Hostile:
    """Everything raises."""

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq")

    def __hash__(self) -> int:
        return 7

    def __iter__(self) -> Any:
        raise RuntimeError("iter")

    def __len__(self) -> int:
        raise RuntimeError("len")

    def model_dump(self) -> Any:
        raise RuntimeError("model_dump")

    @property
    def __dict__(self) -> Any:  # type: ignore[override]
        raise RuntimeError("__dict__")


class Liar:
    """Claims to be a dict."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return dict

    def __repr__(self) -> str:
        return "Liar()"


class BadClass:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("class")


class HostileMapping(collections.abc.Mapping):  # type: ignore[type-arg]
    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("getitem")

    def __iter__(self) -> Any:
        return iter([1, 2])

    def __len__(self) -> int:
        return 2


class HostileList(list):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        raise RuntimeError("iter")

    def __len__(self) -> int:
        raise RuntimeError("len")


class HostileModel(BaseModel):
    x: int = 1

    def model_dump(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("dump")

    def __repr__(self) -> str:
        raise RuntimeError("repr")


class LyingLen(list):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 1


def test_hostile_objects_never_raise() -> None:
    values = [Hostile(), Liar(), BadClass(), HostileMapping(), HostileList([1]), HostileModel()]
    out = to_jsonable(values)
    assert out == [
        "<Hostile>",
        "Liar()",
        "<BadClass>",
        "<unserializable HostileMapping>",
        "<unserializable HostileList>",
        {"x": 1},
    ]
    assert to_jsonable({Hostile(): 1}) == {"<Hostile>": 1}
    assert_valid(to_jsonable(LyingLen(range(3000)), 200), 200)


def test_numpy() -> None:
    np = pytest.importorskip("numpy")
    assert to_jsonable(np.float64(1.5)) == 1.5 and type(to_jsonable(np.float64(1.5))) is float
    assert to_jsonable(np.int64(3)) == 3
    assert to_jsonable(np.bool_(True)) is True
    assert to_jsonable(np.float32("nan")) == "NaN"
    assert to_jsonable(np.arange(4).reshape(2, 2)) == [[0, 1], [2, 3]]
    assert to_jsonable(np.zeros((500, 500))) == "<ndarray shape=(500, 500) dtype=float64>"


# ------------------------------------------------------------------------------------------
# snapshot semantics


def test_snapshot_shares_no_container_with_the_input() -> None:
    inner = {"k": [1, 2]}
    tup = ([3],)
    value = {"a": inner, "b": [inner, {"c": {1, 2}}], "t": tup, "n": Node("x", [5])}
    out = to_jsonable(value)
    before = json.dumps(out)
    assert not containers(out) & containers(value)
    inner["k"].append(3)
    inner["new"] = 1
    tup[0].append(4)
    value["b"].append(9)  # type: ignore[attr-defined]
    value["n"].child.append(6)  # type: ignore[attr-defined]
    assert json.dumps(out) == before


# ------------------------------------------------------------------------------------------
# truncate_text / dumps / fit


def test_truncate_text() -> None:
    text = "abcdefghij" * 10
    assert truncate_text(text, 100) is text
    cut = truncate_text(text, 30)
    assert len(cut) == 30 and cut == text[:9] + "…[truncated 91 chars]"
    assert truncate_text(text, 5) == "abcde"  # no room for the marker
    assert truncate_text(text, 0) == ""


def test_dumps() -> None:
    assert dumps({"a": [1, 2.5, None, "é"]}) == '{"a":[1,2.5,null,"é"]}'.encode()
    # what orjson refuses still gives valid JSON
    assert json.loads(dumps({1: 2**70})) == {"1": 2**70}  # type: ignore[dict-item]
    assert json.loads(dumps(["\ud800"])) == ["\ufffd"]
    deep: Any = []
    for _ in range(300):
        deep = [deep]
    json.loads(dumps(deep))


def test_fit() -> None:
    small = {"a": [1, 2]}
    assert fit(small, 100) is small
    big = {"a": "x" * 10_000, "b": list(range(100))}
    out = fit(big, 500)
    assert_valid(out, 500)
    assert out["a"].endswith(" chars]")  # type: ignore[index, union-attr]
    assert fit([float("nan")], 100) == ["NaN"]


# ------------------------------------------------------------------------------------------
# property tests


def _make_hostile(kind: int) -> Any:
    return [Hostile, Liar, BadClass, HostileMapping, HostileModel][kind % 5]()


surrogates = st.sampled_from(["\ud800", "\udfff", "\ud83d", "\ude00", "\ud83d\ude00"])
nasty_chars = st.sampled_from(
    ['"', "\\", "\n", "\x00", "\x1f", "\x7f", "é", "€", "😀", "\u2028", "\ufeff"]
)
texts = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(surrogates, nasty_chars, st.characters()), max_size=40).map("".join),
    st.builds(lambda c, n: c * n, st.one_of(nasty_chars, st.just("a")), st.integers(0, 120_000)),
)
scalars = st.one_of(
    texts,
    st.binary(max_size=50),
    st.builds(bytes, st.integers(0, 3000)),
    st.floats(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**200),
    st.integers(max_value=-(2**62), min_value=-(2**200)),
    st.booleans(),
    st.none(),
    st.datetimes(),
    st.uuids(),
    st.decimals(),
    st.timedeltas(),
    st.integers(0, 4).map(_make_hostile),
)
keys = st.one_of(
    st.text(max_size=10),
    surrogates,
    st.integers(),
    st.none(),
    st.floats(),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.builds(lambda c, n: c * n, nasty_chars, st.integers(0, 500)),
)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=8),
        st.dictionaries(keys, children, max_size=8),
        st.lists(children, max_size=4).map(tuple),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=5)), max_size=5),
        st.builds(Node, st.text(max_size=5), children),
    )


values = st.recursive(scalars, _extend, max_leaves=12)


@st.composite
def cyclic(draw: st.DrawFn) -> Any:
    """A structure in which some containers contain themselves or an ancestor."""
    root = draw(st.one_of(st.lists(values, max_size=3), st.dictionaries(keys, values, max_size=3)))
    found: list[Any] = []

    def collect(v: Any, depth: int) -> None:
        if depth < 6 and type(v) in (list, dict):
            found.append(v)
            for c in v.values() if type(v) is dict else v:
                collect(c, depth + 1)

    collect(root, 0)
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(found))
        ref = draw(st.sampled_from(found))
        if type(target) is list:
            target.append(ref)
        else:
            target[draw(st.text(max_size=3))] = ref
    return root


@st.composite
def deep(draw: st.DrawFn) -> Any:
    depth = draw(st.integers(0, 600))
    leaf = draw(scalars)
    for i in range(depth):
        leaf = [leaf] if i % 2 else {"k": leaf}
    return leaf


hostile_values = st.one_of(values, cyclic(), deep())
budgets = st.one_of(st.integers(MIN_MAX_BYTES, 2_000), st.integers(MIN_MAX_BYTES, 100_000))
SETTINGS = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(value=hostile_values, max_bytes=budgets)
def test_property_to_jsonable(value: Any, max_bytes: int) -> None:
    before = fingerprint(value)
    out = to_jsonable(value, max_bytes)
    assert_valid(out, max_bytes)
    assert fingerprint(value) == before
    assert not containers(out) & containers(value)


plain_json = st.recursive(
    st.one_of(
        st.text(max_size=12),
        st.integers(-(2**70), 2**70),  # beyond 64 bits too: those become strings
        st.floats(),  # NaN and infinities: orjson would write null
        st.booleans(),
        st.none(),
        st.just("null"),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=40,
)


@settings(SETTINGS, max_examples=600)
@given(
    value=st.one_of(plain_json, deep(), st.lists(st.integers(0, 9), min_size=990, max_size=1010))
)
def test_property_fast_path_equals_the_walk(value: Any) -> None:
    # to_jsonable() hands plain data to orjson when the bytes prove nothing needs changing;
    # what comes out must be exactly what the Python walk gives, budget and limits included.
    for max_bytes in (64, 300, 65_536):
        assert to_jsonable(value, max_bytes) == serialize._top(value, max_bytes, 0)


@settings(SETTINGS, max_examples=400)
@given(value=values, max_bytes=budgets)
def test_property_fit(value: Any, max_bytes: int) -> None:
    data = to_jsonable(value, 10**7)
    before = json.dumps(data)
    out = fit(data, max_bytes)
    assert_valid(out, max_bytes)
    assert json.dumps(data) == before
    if json_size(data) <= max_bytes:
        assert out is data
    assert fit(out, max_bytes) is out  # idempotent


@settings(SETTINGS, max_examples=1000)
@given(text=texts, max_chars=st.integers(0, 200))
def test_property_truncate_text(text: str, max_chars: int) -> None:
    out = truncate_text(text, max_chars)
    assert len(out) <= max(max_chars, 0)
    if len(text) <= max_chars:
        assert out is text
    else:
        assert out.startswith(text[: max(0, max_chars - 30)])


def test_recursion_limit_near_exhaustion_never_raises() -> None:
    value = {"a": [[[[["x"]]]]], "n": Node("x", Node("y")), "e": ValueError("v")}
    depth = len(inspect.stack(0))
    old = sys.getrecursionlimit()
    results = []
    try:
        for margin in range(10, 80):
            sys.setrecursionlimit(depth + margin)
            results.append(to_jsonable(value))
    finally:
        sys.setrecursionlimit(old)
    for out in results:
        json.dumps(out, allow_nan=False)
    assert results[-1] == to_jsonable(value)
