"""RunTracer additions used by the LangChain handler: duplicate starts, end annotations."""

from __future__ import annotations

from lunary_integrations.config import Settings
from lunary_integrations.tracer import RunTracer

from .recorder import Recorder


def make() -> tuple[RunTracer, Recorder]:
    rec = Recorder()
    tracer = RunTracer(runtime="t", settings=Settings(public_key="k"), client=rec)  # type: ignore[arg-type]
    return tracer, rec


def test_second_start_of_an_open_run_is_ignored() -> None:
    tracer, rec = make()
    assert tracer.start("r1", None, "chain", "first", {"a": 1})
    assert not tracer.start("r1", None, "chain", "second", {"a": 2})
    assert tracer.end("r1", "out")
    assert not tracer.end("r1", "out")  # the twin handler's end finds nothing open
    assert [(e["event"], e.get("name")) for e in rec.events] == [("start", "first"), ("end", None)]
    assert tracer.start("r1", None, "chain", "again")  # a closed id may be reused


def test_annotations_ride_on_the_end_event() -> None:
    tracer, rec = make()
    tracer.start("r1", None, "llm", "m", timestamp=100.0)
    tracer.mark_first_token("r1")
    first = tracer._runs["r1"].end_meta
    tracer.mark_first_token("r1")  # only the first token counts
    assert tracer._runs["r1"].end_meta == first
    for i in range(25):
        tracer.annotate("r1", "events", {"i": i}, append=True)
    tracer.annotate("r1", "retries", 2)
    tracer.end("r1", "out", metadata={"retries": 3})
    meta = rec.events[-1]["metadata"]
    assert isinstance(meta["timeToFirstToken"], int) and meta["timeToFirstToken"] > 0
    assert meta["retries"] == 3  # the caller's end metadata wins
    assert meta["events"].count('"i"') == 20  # bounded list, sent as a JSON string
    assert not tracer.annotate("r1", "late", 1)  # closed


def test_error_without_annotations_unchanged() -> None:
    tracer, rec = make()
    tracer.start("r1", None, "tool", "t")
    tracer.error("r1", ValueError("x"))
    assert rec.events[-1]["error"]["message"] == "x"
    assert "metadata" not in rec.events[-1]
