"""Replay the exchanges captured from a real Lunary server against the local collector.

The ingest requests are POSTed in capture order (with the collector's keys in place of the
placeholders); every read is sent with the same path and query at the same point of the
sequence, and its status, content type and body are compared with what the real server sent.

Only values that cannot match are masked, each for a stated reason (see `_mask`). Everything
else (key sets, ids, order, counts, type/name/status/tags, camel-cased input/output with
`enrichments`, params, metadata, tokens, durations, timestamps, error bodies) must be equal.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lunary_integrations.local import LocalLunary

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "lunary-samples"
EXCHANGES = SAMPLES / "exchanges"

pytestmark = pytest.mark.skipif(not EXCHANGES.is_dir(), reason="Lunary samples not available")


def _ids() -> dict[str, str]:
    if not (SAMPLES / "ids.json").is_file():
        return {}
    ids: dict[str, str] = json.loads((SAMPLES / "ids.json").read_text())["ids"]
    return ids


IDS = _ids()

# The first capture ran in this order (README "Order of the capture"): ingest 01-11, reads
# 20-69, then 12, 70, 13, 71, the filtered exports 72-74, and the official SDK (90) with 91-94.
ORDER = [
    *range(1, 12),
    *range(20, 70),
    12,
    70,
    13,
    71,
    72,
    73,
    74,
    90,
    91,
    92,
    93,
    94,
]

# The second capture (README "Second capture (100–199)") used a project of its own, so it is
# replayed against a collector of its own, in its order: 100-110, 120-125, 111, 130-133,
# 140-155, 159, 160-172, 190-191, 180-184, 199.
ORDER_100 = [
    *range(100, 111),
    *range(120, 126),
    111,
    *range(130, 134),
    *range(140, 156),
    159,
    *range(160, 173),
    190,
    191,
    *range(180, 185),
    199,
    126,
]

#: Calls the local collector will never serve, each with the reason. They are not sent.
NOT_SERVED = {
    **dict.fromkeys(
        (100, 101, 102, 120, 121, 122, 123, 130),
        "dashboard-only call (JWT session): the collector's own helpers create projects, "
        "templates, datasets and checklists",
    ),
    159: "deletes a first conversation attempt that the capture did not record",
    126: "recorded from a rebuilt server on another dataset (acc-faq), not part of this "
    "capture's sequence",
}
NOT_SERVED.update(
    dict.fromkeys(
        (131, 132, 133),
        "evaluations run a checklist that only the dashboard creates (130); no issue "
        "builds evaluations into the collector",
    )
)

#: Exchanges that need a feature not built yet: strict expected failures naming the issue
#: that builds it (that issue removes its entries).
_TEMPLATES = "issue 26 (templates and datasets): the collector serves no templates or datasets"
_FEEDBACK = "issue 24 (conversations, feedback and scores): no feedback or score routes yet"
_OUTAGE = "issue 28 (outages): the collector cannot play a database outage yet"
NEEDS_FEATURE: dict[int, str] = {
    **dict.fromkeys((103, 104, 105, 109, 110, 111, 124, 125), _TEMPLATES),
    **dict.fromkeys((*range(143, 152), 153, 154, 155, 171), _FEEDBACK),
    **dict.fromkeys((180, 181, 182, 183, 184), _OUTAGE),
    # every run of the capture: 109's refused run and 180's lost run must not be listed
    199: f"{_TEMPLATES}; {_OUTAGE}",
}


def _number(path: Path) -> int:
    return int(path.name.split("-", 1)[0])


def _exchange_files(order: list[int]) -> list[Path]:
    if not EXCHANGES.is_dir():
        return []
    by_number = {_number(p): p for p in EXCHANGES.glob("*.json")}
    return [by_number[n] for n in order if n in by_number]


FILES = _exchange_files(ORDER)
FILES_100 = _exchange_files(ORDER_100)
SENT_100 = [p for p in FILES_100 if _number(p) not in NOT_SERVED]


def _params(files: list[Path]) -> list[Any]:
    params = []
    for path in files:
        reason = NEEDS_FEATURE.get(_number(path))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


_WALL = "<wall-clock>"
_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _sub_keys(value: Any, lunary: LocalLunary) -> Any:
    text = json.dumps(value)
    text = text.replace("<PUBLIC_KEY>", lunary.public_key)
    text = text.replace("<PRIVATE_KEY>", lunary.private_key)
    text = text.replace("<PROJECT_ID>", lunary.project_id)
    return json.loads(text)


def _replay(files: list[Path]) -> Iterator[dict[str, httpx.Response]]:
    """Run the exchanges once, in capture order; map file stem → the collector's response."""
    responses: dict[str, httpx.Response] = {}
    with LocalLunary() as lunary, httpx.Client(base_url=lunary.url, timeout=30) as client:
        for path in files:
            ex = json.loads(path.read_text())
            req = _sub_keys(ex["request"], lunary)
            headers = dict(req["headers"])
            if "body_decompressed" in req:  # 07: the body was sent gzip-compressed
                content = gzip.compress(json.dumps(req["body_decompressed"]).encode())
            elif req["body"] is not None:
                content = json.dumps(req["body"]).encode()
            else:
                content = None
            responses[path.stem] = client.request(
                req["method"], req["path_and_query"], headers=headers, content=content
            )
        responses["__project_id__"] = httpx.Response(200, text=lunary.project_id)
        yield responses


@pytest.fixture(scope="module")
def replay() -> Iterator[dict[str, httpx.Response]]:
    yield from _replay(FILES)


@pytest.fixture(scope="module")
def replay_100() -> Iterator[dict[str, httpx.Response]]:
    yield from _replay(SENT_100)


def _is_user(value: dict[str, Any]) -> bool:
    return set(value) == {"id", "externalId", "createdAt", "lastSeen", "props"}


def _mask(value: Any) -> Any:
    """Replace the values that cannot match the real server by stable markers."""
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _mask(v) for k, v in value.items()}
    if _is_user(out):
        # user.id: Postgres sequence values (1, 5, 7, 9: gaps from upserts) vs our 1, 2, 3...
        assert isinstance(out["id"], int)
        out["id"] = "<int>"
        # user.createdAt: the server's wall clock when it inserted the user
        assert _ISO.match(out["createdAt"]), out["createdAt"]
        out["createdAt"] = _WALL
    run_id = out.get("id")
    if out.get("type") == "thread" and "createdAt" in out:
        # a thread's createdAt: the server's wall clock when it created the thread run
        assert _ISO.match(out["createdAt"]), out["createdAt"]
        out["createdAt"] = _WALL
    if run_id == IDS.get("h_nousage_llm"):
        # 08 sent no tokensUsage: the real server ran a tokenizer (22/14), we estimate roughly.
        # Either way the counts are non-null and the cost is a positive number.
        tokens = out.get("tokens")
        if isinstance(tokens, dict):
            assert isinstance(tokens["prompt"], int) and tokens["prompt"] > 0
            assert isinstance(tokens["completion"], int) and tokens["completion"] > 0
            assert tokens["total"] == tokens["prompt"] + tokens["completion"]
            out["tokens"] = "<estimated>"
        for key in ("promptTokens", "completionTokens"):
            if key in out:
                assert isinstance(out[key], int) and out[key] > 0
                out[key] = "<estimated>"
        if "cost" in out:
            assert isinstance(out["cost"], float) and out["cost"] > 0
            out["cost"] = "<estimated>"
    if run_id == IDS.get("a_llm1") and isinstance(out.get("cost"), (int, float)):
        # 42/7 tokens with promptCached 10: the real server answered 5e-07, which no
        # per-token price explains (uncached it would be 1.05e-05); we charge cached tokens
        # at half the input price. Only "a positive number" is compared.
        assert out["cost"] > 0
        out["cost"] = "<cached-cost>"
    if isinstance(out.get("cost"), float):
        out["cost"] = round(
            out["cost"], 12
        )  # float noise (e.g. 1.65e-06 vs 1.6500000000000001e-06)
    return out


def _csv_rows(text: str) -> list[dict[str, Any]]:
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    out = []
    for row in body:
        item: dict[str, Any] = {}
        for key, cell in zip(header, row, strict=True):
            if cell == "":
                item[key] = None
                continue
            try:
                item[key] = json.loads(cell)
            except ValueError:
                item[key] = cell
        out.append(item)
    return [{"__header__": header}, *out]


def _body(content_type: str, text: str) -> Any:
    if content_type.startswith("application/jsonl"):
        assert text.endswith("\n") or text == ""
        return [json.loads(line) for line in text.splitlines()]
    if content_type.startswith("text/csv"):
        assert text.endswith("\n")
        return _csv_rows(text)
    if content_type.startswith("application/json"):
        return json.loads(text)
    return text


@pytest.mark.parametrize("path", _params(FILES))
def test_exchange_matches_real_server(path: Path, replay: dict[str, httpx.Response]) -> None:
    _check_exchange(path, replay)


@pytest.mark.parametrize("path", _params(SENT_100))
def test_second_capture_exchange_matches_real_server(
    path: Path, replay_100: dict[str, httpx.Response]
) -> None:
    _check_exchange(path, replay_100)


def _check_exchange(path: Path, replay: dict[str, httpx.Response]) -> None:
    ex = json.loads(path.read_text())
    project_id = replay["__project_id__"].text
    expected = ex["response"]
    got = replay[path.stem]

    assert got.status_code == expected["status"], got.text[:500]
    exp_type = expected["headers"]["content-type"].split(";")[0]
    assert got.headers["content-type"].split(";")[0] == exp_type

    exp_text = expected["body"] if isinstance(expected["body"], str) else None
    exp_body = (
        _body(exp_type, exp_text) if exp_text is not None else expected["body"]
    )  # JSON bodies were stored parsed
    exp_body = json.loads(json.dumps(exp_body).replace("<PROJECT_ID>", project_id))
    got_body = _body(exp_type, got.text)

    if path.stem.startswith(("30-", "199-")):
        # The thread's createdAt is the wall clock at ingest (see _mask), so where it sorts
        # among runs carrying fixed 2026-11-23 event timestamps depends on today's date:
        # compare the thread separately and the rest in order.
        def split(body: dict[str, Any]) -> tuple[list[Any], list[Any]]:
            data = body["data"]
            return [r for r in data if r["type"] == "thread"], [
                r for r in data if r["type"] != "thread"
            ]

        exp_threads, exp_rest = split(exp_body)
        got_threads, got_rest = split(got_body)
        assert _mask(got_threads) == _mask(exp_threads)
        exp_body = {**exp_body, "data": exp_rest}
        got_body = {**got_body, "data": got_rest}

    assert _mask(got_body) == _mask(exp_body)


def test_every_exchange_is_replayed_or_excluded_with_a_reason() -> None:
    assert len(FILES) == 68
    every = {_number(p) for p in EXCHANGES.glob("*.json")}
    assert not every - set(ORDER) - set(ORDER_100)  # no exchange left out of both sequences
    assert set(ORDER_100) <= every
    assert set(NOT_SERVED) <= set(ORDER_100) and set(NEEDS_FEATURE) <= set(ORDER_100)
    assert not set(NOT_SERVED) & set(NEEDS_FEATURE)
    assert len(SENT_100) == len(ORDER_100) - len(NOT_SERVED)
