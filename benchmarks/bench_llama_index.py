"""Tracing tax of ``instrument()`` per ``query_engine.query`` (MockLLM, MockEmbedding, 2 docs).

Variants, each a set of handlers on the root dispatcher:

* ``none``: the root dispatcher as LlamaIndex ships it (null handlers);
* ``noop``: a span handler + event handler pair doing nothing (the floor: LlamaIndex's
  own span/event dispatch to two more handlers);
* ``tracking``: the least any tracer of spans does: the no-op pair, whose span handler
  remembers each open span's parent and forgets it at exit (how much of the floor's budget
  mere bookkeeping takes, in situ);
* ``lunary``: ``instrument()``, delivering to a local collector (its span handler in the place
  of the root's ``NullSpanHandler`` placeholder, as ``instrument()`` puts it);
* ``beside``: the same handlers beside the placeholder: their own cost, with the placeholder's
  calls still paid.

The target (the lunary tax at most 2x the no-op pair's) is on the calling thread's CPU time,
with queries interleaved one by one (``timing.interleaved``: the tax is ~2% of a query, and
only pairing single queries resolves it on this machine). Process CPU (the worker included)
and wall time come from rounds of batches (``timing.paired``). A replay of one query's handler
calls against each pair alone gives the handlers' own cost, caches warm, without LlamaIndex's.
Prints one ``name: value unit`` line per figure.

    python benchmarks/bench_llama_index.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import inspect
import os
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.span import BaseSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.llms import MockLLM
from pydantic import Field
from timing import Variant, interleaved, nothing, paired, timed

import lunary_integrations
from lunary_integrations import config
from lunary_integrations.llama_index import instrument, uninstrument
from lunary_integrations.local import LocalLunary


class NoopSpanHandler(BaseSpanHandler[BaseSpan]):
    @classmethod
    def class_name(cls) -> str:
        return "NoopSpanHandler"

    def new_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        return None

    def prepare_to_exit_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        return None

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        return None


class TrackingSpanHandler(NoopSpanHandler):
    """Remembers each open span's parent (what re-parenting hidden spans needs), nothing else."""

    parents: dict[str, str | None] = Field(default_factory=dict, exclude=True)

    def span_enter(self, id_: str, bound_args: Any, instance: Any = None,
                   parent_id: Any = None, tags: Any = None, **kwargs: Any) -> None:  # fmt: skip
        self.parents[id_] = parent_id

    def span_exit(self, id_: str, bound_args: Any, instance: Any = None,
                  result: Any = None, **kwargs: Any) -> None:  # fmt: skip
        self.parents.pop(id_, None)

    def span_drop(self, id_: str, bound_args: Any, instance: Any = None,
                  err: Any = None, **kwargs: Any) -> None:  # fmt: skip
        self.parents.pop(id_, None)


class NoopEventHandler(BaseEventHandler):
    @classmethod
    def class_name(cls) -> str:
        return "NoopEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        return None


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


_RECORDED: list[tuple[str, tuple[Any, ...]]] = []


class _Recorder(NoopSpanHandler):
    """Records one query's handler calls, to replay them against a handler pair alone."""

    def span_enter(self, id_: str, bound_args: Any, instance: Any = None,
                   parent_id: Any = None, tags: Any = None, **kwargs: Any) -> None:  # fmt: skip
        _RECORDED.append(("enter", (id_, bound_args, instance, parent_id, tags)))

    def span_exit(self, id_: str, bound_args: Any, instance: Any = None,
                  result: Any = None, **kwargs: Any) -> None:  # fmt: skip
        _RECORDED.append(("exit", (id_, bound_args, instance, result)))


class _EventRecorder(NoopEventHandler):
    kind: str = "event"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        _RECORDED.append((self.kind, (event,)))


def replay_us(
    calls: list[tuple[str, tuple[Any, ...]]],
    spans: Any,
    events: Any,
    n: int,
    drain: Any = nothing,
    event_kind: str = "event",
) -> float:
    """Per-query cost of the handlers alone, on the calling thread's CPU: the recorded calls,
    without LlamaIndex's work (span ids repeat across replays, which is fine: every span
    exits). ``event_kind``: "event" for a handler on the root, "llm_event" for one on the
    LLM callbacks' dispatcher (``instrument()``'s)."""

    def one() -> None:
        for kind, args in calls:
            if kind == "enter":
                spans.span_enter(*args)
            elif kind == "exit":
                spans.span_exit(*args)
            elif kind == event_kind:
                events.handle(*args)

    timed(one, n, drain)  # warm-up
    return statistics.median(timed(one, n, drain)[0] for _ in range(7))


def query_function() -> Callable[[], Any]:
    """The measured call: one query of a query engine over two documents (mock LLM and
    embedding, so the work is LlamaIndex's own and the handlers')."""
    Settings.llm = MockLLM(max_tokens=4)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    index = VectorStoreIndex.from_documents(
        [Document(text="Paris is the capital of France."), Document(text="Berlin is in Germany.")]
    )
    engine = index.as_query_engine(similarity_top_k=1)
    return lambda: engine.query("What is the capital of France?")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the lunary variant")
    args = parser.parse_args()
    # Batches (process CPU, wall): 64 queries queue 512 events, one burst of the worker (it
    # wakes for 500), as a running app would. Single queries (caller CPU): 8 000 rounds, so
    # the no-op pair's ~50 µs tax is known to ±6 µs (3 000 rounds left ±10: the ratio to it
    # then moved by ±0.3 from run to run).
    batches, per_batch, rounds = (15, 64, 400) if args.quick else (31, 64, 8000)

    query = query_function()

    root = get_dispatcher()

    def toggled(pair: tuple[Any, Any]) -> tuple[Callable[[], None], Callable[[], None]]:
        def add() -> None:
            root.add_span_handler(pair[0])
            root.add_event_handler(pair[1])

        def remove() -> None:
            root.span_handlers.remove(pair[0])
            root.event_handlers.remove(pair[1])

        return add, remove

    noop_pair = (NoopSpanHandler(), NoopEventHandler())
    tracking_pair = (TrackingSpanHandler(), NoopEventHandler())

    # A server in another process when run.py gives one (its CPU is not this process's),
    # else the local collector.
    server_url = os.environ.get("BENCH_SERVER_URL")
    with contextlib.nullcontext(None) if server_url else LocalLunary() as lunary:
        if lunary is None:
            config.configure(public_key="bench-public-key", api_url=server_url)
        else:
            config.configure(public_key=lunary.public_key, api_url=lunary.url)
        from lunary_integrations.llama_index import instrumentation

        drain = lambda: lunary_integrations.flush(60)  # noqa: E731
        batched = paired(
            {
                "none": Variant(query),
                "lunary": Variant(query, drain=drain, install=instrument, remove=uninstrument),
            },
            batches,
            per_batch,
        )

        llm_events = instrumentation._llm_event_dispatcher()

        def placed(pair: Any) -> tuple[Callable[[], None], Callable[[], None]]:
            # instrument()'s places: the span handler in the root placeholder's, the event
            # handler on the LLM callbacks' dispatcher.
            replaced: list[Any] = []
            return (
                lambda: replaced.append(instrumentation._attach(pair)),
                lambda: instrumentation._detach(pair, replaced.pop()),
            )

        def beside(pair: Any) -> tuple[Callable[[], None], Callable[[], None]]:
            def add() -> None:
                root.add_span_handler(pair[0])
                llm_events.add_event_handler(pair[1])

            return add, lambda: instrumentation._detach(pair, None)

        instrument()
        ours = instrumentation._installed
        assert ours is not None
        uninstrument()  # its handlers stay usable: toggled in and out below
        single = interleaved(
            {
                "none": Variant(query),
                "noop": Variant(query, nothing, *toggled(noop_pair)),
                "tracking": Variant(query, nothing, *toggled(tracking_pair)),
                "lunary": Variant(query, drain, *placed(ours)),
                "beside": Variant(query, drain, *beside(ours)),
            },
            rounds,
        )
        recorder = (_Recorder(), _EventRecorder(), _EventRecorder(kind="llm_event"))
        root.add_span_handler(recorder[0])
        root.add_event_handler(recorder[1])
        llm_events.add_event_handler(recorder[2])
        query()
        root.span_handlers.remove(recorder[0])
        root.event_handlers.remove(recorder[1])
        llm_events.event_handlers.remove(recorder[2])
        calls = list(_RECORDED)
        replay_noop = replay_us(calls, *noop_pair, per_batch * 5)
        replay_ours = replay_us(calls, *ours, per_batch * 5, drain, "llm_event")
        if args.profile:
            instrument()
            profiler = cProfile.Profile()
            profiler.runcall(per_call_us, query, 2000)
            uninstrument()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        lunary_integrations.shutdown(60)

    noop, tracking, lunary_ = single["noop"], single["tracking"], single["lunary"]
    beside_ = single["beside"]
    print(f"llama_index.query_no_handlers: {single['none']['cpu']:.1f} us")
    print(f"llama_index.rounds: {rounds} queries")
    print(f"llama_index.tax_noop_pair: {noop['tax_cpu']:.1f} us")
    print(f"llama_index.tax_noop_pair_ci: {noop['ci_cpu']:.1f} us")
    print(f"llama_index.tax_tracking_pair: {tracking['tax_cpu']:.1f} us")
    print(f"llama_index.tax_tracking_pair_ci: {tracking['ci_cpu']:.1f} us")
    print(f"llama_index.tax_tracking_vs_noop: {tracking['tax_cpu'] / noop['tax_cpu']:.2f} x")
    print(f"llama_index.tax_lunary: {lunary_['tax_cpu']:.1f} us")
    print(f"llama_index.tax_lunary_ci: {lunary_['ci_cpu']:.1f} us")
    print(f"llama_index.tax_lunary_vs_noop: {lunary_['tax_cpu'] / noop['tax_cpu']:.2f} x")
    print(f"llama_index.tax_beside_placeholder: {beside_['tax_cpu']:.1f} us")
    print(f"llama_index.tax_beside_placeholder_ci: {beside_['ci_cpu']:.1f} us")
    print(f"llama_index.tax_beside_vs_noop: {beside_['tax_cpu'] / noop['tax_cpu']:.2f} x")
    print(f"llama_index.tax_lunary_process_cpu: {batched['lunary']['tax_proc']:.1f} us")
    print(f"llama_index.tax_lunary_wall: {batched['lunary']['tax_wall']:.1f} us")
    # The same, with LlamaIndex's own work taken out (noise-free): the handlers' cost alone.
    print(f"llama_index.handlers_noop_pair: {replay_noop:.1f} us")
    print(f"llama_index.handlers_lunary: {replay_ours:.1f} us")
    print(f"llama_index.handlers_lunary_vs_noop: {replay_ours / replay_noop:.2f} x")


if __name__ == "__main__":
    main()
