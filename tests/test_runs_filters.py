"""Pythonic filters → the server's query syntax (exact strings, and the exact URL sent)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from lunary_integrations.runs import RunsClient
from lunary_integrations.runs.filters import (
    encode_value,
    filter_params,
    page_params,
    query_string,
    wants_llm_only,
)

RID = "a6b02212-db5c-446c-9b92-8e6d77cf71cd"


def qs(**filters: Any) -> str:
    return query_string(filter_params(filters))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"type": "llm"}, "type=llm"),
        ({"type": ["chain", "agent"]}, "type=chain,agent"),
        ({"type": "trace"}, "type=trace"),
        ({"search": "paris"}, "search=paris"),
        ({"models": "gpt-4o-mini"}, "models=gpt-4o-mini"),
        ({"models": ["gpt-4o", "gpt-4.1"]}, "models=gpt-4o,gpt-4%2E1"),
        ({"tags": ["demo", "prod"]}, "tags=demo,prod"),
        ({"status": "error"}, "status=error"),
        ({"status": ["success", "error"]}, "status=success,error"),
        ({"user_ids": [1, 5]}, "users=1,5"),
        ({"user_ids": 9}, "users=9"),
        ({"metadata": {"env": "test"}}, "metadata=env.test"),
        ({"metadata": {"thread_id": "t-1", "n": 3}}, "metadata=threadId.t-1&metadata=n.3"),
        ({"metadata": {"ok": True}}, "metadata=ok.true"),
        ({"user_props": {"plan_tier": "pro"}}, "user-props=planTier.pro"),
        ({"feedback": "up"}, "feedback=%7B%22thumb%22%3A%22up%22%7D"),
        ({"feedback": {"thumb": "down"}}, "feedback=%7B%22thumb%22%3A%22down%22%7D"),
        ({"parent_run_id": RID.upper()}, f"parentRunId={RID}"),
        ({"min_cost": 0.001, "max_cost": 2}, "cost=gte.0%2E001&cost=lte.2"),
        ({"min_cost": 1e-7}, "cost=gte.0%2E0000001"),
        ({"min_tokens": 10, "max_tokens": 100}, "tokens=total.gte.10&tokens=total.lte.100"),
        ({"min_prompt_tokens": 5}, "tokens=prompt.gte.5"),
        ({"max_completion_tokens": 7}, "tokens=completion.lte.7"),
        ({"sort_by": "cost"}, "sortField=cost&sortDirection=desc"),
        ({"sort_by": "created_at", "order": "asc"}, "sortField=createdAt&sortDirection=asc"),
        ({"sort_by": "messagesCount"}, "sortField=messagesCount&sortDirection=desc"),
        ({}, ""),
        ({"type": None, "tags": None}, ""),
    ],
)
def test_each_filter(filters: dict[str, Any], expected: str) -> None:
    assert qs(**filters) == expected


def test_docs_only_parameters_map_to_what_the_server_implements() -> None:
    # start_time/end_time → date=gt/lt (dots of the timestamp encoded), durations in seconds,
    # order → sortField/sortDirection.
    start = datetime(2026, 11, 23, 16, 38, 42, tzinfo=timezone.utc)
    end = datetime(2026, 11, 23, 18, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1)))
    assert qs(start_time=start, end_time=end) == (
        "date=gt.2026-11-23T16:38:42Z&date=lt.2026-11-23T17:00:00%2E250Z"
    )
    assert qs(min_duration=1.5, max_duration=timedelta(minutes=2)) == (
        "duration=gte.1%2E5&duration=lte.120"
    )
    assert qs(order="desc") == "sortField=createdAt&sortDirection=desc"
    assert qs(order="asc") == "sortField=createdAt&sortDirection=asc"


def test_times_accept_iso_strings_dates_and_naive_datetimes_as_utc() -> None:
    assert qs(start_time="2026-11-23T16:38:42Z") == "date=gt.2026-11-23T16:38:42Z"
    assert qs(start_time="2026-11-23T17:38:42.5+01:00") == "date=gt.2026-11-23T16:38:42%2E500Z"
    assert qs(start_time=date(2026, 11, 1)) == "date=gt.2026-11-01T00:00:00Z"
    assert qs(end_time=datetime(2026, 11, 1, 12)) == "date=lt.2026-11-01T12:00:00Z"
    with pytest.raises(ValueError):
        qs(start_time="yesterday")


def test_values_with_dots_commas_and_non_ascii_are_encoded_per_part() -> None:
    assert qs(search="v1.2, café") == "search=v1%2E2%2C%20caf%C3%A9"
    assert qs(tags=["a,b", "x.y", "été"]) == "tags=a%2Cb,x%2Ey,%C3%A9t%C3%A9"
    assert qs(metadata={"release.tag": "v1.2"}) == "metadata=release%2Etag.v1%2E2"
    assert qs(search="a&b=c") == "search=a%26b%3Dc"
    assert encode_value("日本.語") == "%E6%97%A5%E6%9C%AC%2E%E8%AA%9E"
    for text in ("v1.2, café", "a&b=c", "日本.語"):  # one part: decoding gives it back
        assert "." not in encode_value(text) and unquote(encode_value(text)) == text


def test_combined_filters_keep_a_stable_order() -> None:
    assert qs(
        tags="demo",
        type="llm",
        parent_run_id=RID,
        search="x",
        sort_by="duration",
        order="asc",
    ) == (f"type=llm&tags=demo&search=x&parentRunId={RID}&sortField=duration&sortDirection=asc")


@pytest.mark.parametrize(
    "filters",
    [
        {"order": "up"},
        {"sort_by": "name"},
        {"feedback": "meh"},
        {"tags": []},
        {"min_cost": "cheap"},
        {"parent_run_id": "not-a-uuid"},
        {"user": "u-1"},
    ],
)
def test_bad_filters_raise_value_error(filters: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        qs(**filters)


def test_page_params() -> None:
    assert page_params(None, None) == []
    assert page_params(20, 0) == [("limit", "20"), ("page", "0")]
    for limit, page in ((0, None), (None, -1), (True, None)):
        with pytest.raises(ValueError):
            page_params(limit, page)


def test_llm_only_detection() -> None:
    assert wants_llm_only({"type": "llm"}) and wants_llm_only({"type": ["llm", "chain"]})
    assert not wants_llm_only({}) and not wants_llm_only({"type": "chain"})


def test_the_url_on_the_wire_keeps_encoded_dots_and_plain_separators() -> None:
    seen: list[httpx.URL] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"page": 1, "limit": 2, "data": []})

    http = httpx.Client(transport=httpx.MockTransport(reply))
    with RunsClient("sk", "http://lunary.test", http_client=http) as client:
        client.list(
            type="llm",
            tags=["team.a", "b"],
            search="café 1.5",
            start_time="2026-11-23T16:38:42.123Z",
            min_duration=0.5,
            metadata={"thread_id": "t.1"},
            order="asc",
            limit=2,
            page=1,
        )
    (url,) = seen
    assert url.raw_path.decode() == (
        "/v1/runs?type=llm&tags=team%2Ea,b&search=caf%C3%A9%201%2E5&metadata=threadId.t%2E1"
        "&date=gt.2026-11-23T16:38:42%2E123Z&duration=gte.0%2E5"
        "&sortField=createdAt&sortDirection=asc&limit=2&page=1"
    )
    assert str(url).startswith("http://lunary.test/v1/runs?type=llm&tags=team%2Ea,b&")
