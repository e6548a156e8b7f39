"""Tracing tax of ``instrument()`` per ``query_engine.query`` (MockLLM, MockEmbedding, 2 docs).

Variants, timed with ``timing.paired`` (rounds of interleaved batches, tax = variant - none in
the same round):

* ``none``: the root dispatcher as LlamaIndex ships it (null handlers);
* ``noop``: a span handler + event handler pair doing nothing (the floor: LlamaIndex's
  own span/event dispatch to two more handlers);
* ``lunary``: ``instrument()``, delivering to a local collector (the worker encodes while the
  batch runs; each batch is drained before the next).

The target (the lunary tax at most 2x the no-op pair's) is on the calling thread's CPU time;
process CPU (the worker included) and wall time are printed too. A replay of one query's
handler calls against each pair alone gives the handlers' own cost, without LlamaIndex's.
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
from timing import Variant, nothing, paired, timed

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
    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        _RECORDED.append(("event", (event,)))


def replay_us(
    calls: list[tuple[str, tuple[Any, ...]]], spans: Any, events: Any, n: int, drain: Any = nothing
) -> float:
    """Per-query cost of the handlers alone, on the calling thread's CPU: the recorded calls,
    without LlamaIndex's work (span ids repeat across replays, which is fine: every span
    exits)."""

    def one() -> None:
        for kind, args in calls:
            if kind == "enter":
                spans.span_enter(*args)
            elif kind == "exit":
                spans.span_exit(*args)
            else:
                events.handle(*args)

    timed(one, n, drain)  # warm-up
    return statistics.median(timed(one, n, drain)[0] for _ in range(7))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the lunary variant")
    args = parser.parse_args()
    # Many short rounds: the tax is ~2% of a query, and a median of many paired rounds is what
    # keeps this machine's noise out of it. 64 queries queue 512 events: each batch holds one
    # burst of the worker (it wakes for 500), as a running app would.
    batches, per_batch = (15, 64) if args.quick else (61, 64)

    Settings.llm = MockLLM(max_tokens=4)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    index = VectorStoreIndex.from_documents(
        [Document(text="Paris is the capital of France."), Document(text="Berlin is in Germany.")]
    )
    engine = index.as_query_engine(similarity_top_k=1)

    def query() -> Any:
        return engine.query("What is the capital of France?")

    root = get_dispatcher()
    noop_pair = (NoopSpanHandler(), NoopEventHandler())

    def add_noop() -> None:
        root.add_span_handler(noop_pair[0])
        root.add_event_handler(noop_pair[1])

    def remove_noop() -> None:
        root.span_handlers.remove(noop_pair[0])
        root.event_handlers.remove(noop_pair[1])

    # A server in another process when run.py gives one (its CPU is not this process's),
    # else the local collector.
    server_url = os.environ.get("BENCH_SERVER_URL")
    with contextlib.nullcontext(None) if server_url else LocalLunary() as lunary:
        if lunary is None:
            config.configure(public_key="bench-public-key", api_url=server_url)
        else:
            config.configure(public_key=lunary.public_key, api_url=lunary.url)
        variants = {
            "none": Variant(query),
            "noop": Variant(query, install=add_noop, remove=remove_noop),
            "lunary": Variant(
                query,
                drain=lambda: lunary_integrations.flush(60),
                install=instrument,
                remove=uninstrument,
            ),
        }
        result = paired(variants, batches, per_batch)
        recorder = (_Recorder(), _EventRecorder())
        root.add_span_handler(recorder[0])
        root.add_event_handler(recorder[1])
        query()
        root.span_handlers.remove(recorder[0])
        root.event_handlers.remove(recorder[1])
        calls = list(_RECORDED)
        replay_noop = replay_us(calls, *noop_pair, per_batch * 5)
        from lunary_integrations.llama_index import instrumentation

        instrument()
        assert instrumentation._installed is not None
        replay_ours = replay_us(
            calls, *instrumentation._installed, per_batch * 5, lambda: lunary_integrations.flush(60)
        )
        uninstrument()
        if args.profile:
            instrument()
            profiler = cProfile.Profile()
            profiler.runcall(per_call_us, query, 2000)
            uninstrument()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        lunary_integrations.shutdown(60)

    none, noop, ours = result["none"], result["noop"], result["lunary"]
    print(f"llama_index.query_no_handlers: {none['cpu']:.1f} us")
    print(f"llama_index.tax_noop_pair: {noop['tax_cpu']:.1f} us")
    print(f"llama_index.tax_noop_pair_ci: {noop['ci_cpu']:.1f} us")
    print(f"llama_index.tax_lunary: {ours['tax_cpu']:.1f} us")
    print(f"llama_index.tax_lunary_ci: {ours['ci_cpu']:.1f} us")
    print(f"llama_index.tax_lunary_vs_noop: {ours['tax_cpu'] / noop['tax_cpu']:.2f} x")
    print(f"llama_index.tax_lunary_process_cpu: {ours['tax_proc']:.1f} us")
    print(f"llama_index.tax_lunary_wall: {ours['tax_wall']:.1f} us")
    # The same, with LlamaIndex's own work taken out (noise-free): the handlers' cost alone.
    print(f"llama_index.handlers_noop_pair: {replay_noop:.1f} us")
    print(f"llama_index.handlers_lunary: {replay_ours:.1f} us")
    print(f"llama_index.handlers_lunary_vs_noop: {replay_ours / replay_noop:.2f} x")


if __name__ == "__main__":
    main()
