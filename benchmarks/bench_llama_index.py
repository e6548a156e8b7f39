"""Tracing tax of ``instrument()`` per ``query_engine.query`` (MockLLM, MockEmbedding, 2 docs).

Variants, interleaved batch by batch so drift hits them alike:

* ``none``: the root dispatcher as LlamaIndex ships it (null handlers);
* ``noop``: a span handler + event handler pair doing nothing (the floor: LlamaIndex's
  own span/event dispatch to two more handlers);
* ``lunary``: ``instrument()`` whose client only queues (nothing is sent while timing, so
  the figure is the cost on the caller's thread).

Tax = variant - none. Prints one ``name: value unit`` line per figure. Target: the lunary
tax at most 2x the no-op pair's.

    python benchmarks/bench_llama_index.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import inspect
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
    gc.collect()
    gc.disable()  # a collection landing in one variant's batch is noise larger than the tax
    try:
        started = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - started) / n * 1e6
    finally:
        gc.enable()


class Variant:
    """Installs its handlers only while it is being timed."""

    def __init__(self, install: Callable[[], None], remove: Callable[[], None]) -> None:
        self.install, self.remove = install, remove


def measure(
    query: Callable[[], Any], variants: dict[str, Variant], batches: int, per_batch: int
) -> dict[str, float]:
    """Median per-call time of each variant, plus ``tax_<name>``: the median over rounds of
    (variant - none) measured in the same round (paired, so slow drift cancels out)."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for warm in (True, False):
        for _ in range(1 if warm else batches):
            for name, variant in variants.items():
                variant.install()
                try:
                    took = per_call_us(query, per_batch)
                finally:
                    variant.remove()
                if not warm:
                    samples[name].append(took)
    out = {name: statistics.median(values) for name, values in samples.items()}
    for name, values in samples.items():
        out[f"tax_{name}"] = statistics.median(v - b for v, b in zip(values, samples["none"]))
    return out


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


def replay_us(calls: list[tuple[str, tuple[Any, ...]]], spans: Any, events: Any, n: int) -> float:
    """Per-query cost of the handlers alone: the recorded calls, without LlamaIndex's work
    (span ids repeat across replays, which is fine: every span exits)."""

    def one() -> None:
        for kind, args in calls:
            if kind == "enter":
                spans.span_enter(*args)
            elif kind == "exit":
                spans.span_exit(*args)
            else:
                events.handle(*args)

    per_call_us(one, n)  # warm-up
    return statistics.median(per_call_us(one, n) for _ in range(7))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the lunary variant")
    args = parser.parse_args()
    batches, per_batch = (7, 100) if args.quick else (41, 200)

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

    with LocalLunary() as lunary:
        # Queue only: a batch is sent when it holds 10M events or after an hour.
        config.configure(
            public_key=lunary.public_key,
            api_url=lunary.url,
            flush_interval=3600,
            max_batch_events=10_000_000,
            max_queue_events=10_000_000,
        )
        variants = {
            "none": Variant(lambda: None, lambda: None),
            "noop": Variant(add_noop, remove_noop),
            "lunary": Variant(instrument, uninstrument),
        }
        result = measure(query, variants, batches, per_batch)
        recorder = (_Recorder(), _EventRecorder())
        root.add_span_handler(recorder[0])
        root.add_event_handler(recorder[1])
        query()
        root.span_handlers.remove(recorder[0])
        root.event_handlers.remove(recorder[1])
        calls = list(_RECORDED)
        result["replay_noop"] = replay_us(calls, *noop_pair, per_batch * 5)
        from lunary_integrations.llama_index import instrumentation

        instrument()
        assert instrumentation._installed is not None
        result["replay_lunary"] = replay_us(calls, *instrumentation._installed, per_batch * 5)
        uninstrument()
        if args.profile:
            instrument()
            profiler = cProfile.Profile()
            profiler.runcall(per_call_us, query, 2000)
            uninstrument()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        lunary_integrations.shutdown(60)

    base = result["none"]
    floor = result["tax_noop"]
    ours = result["tax_lunary"]
    print(f"llama_index.query_no_handlers: {base:.1f} us")
    print(f"llama_index.tax_noop_pair: {floor:.1f} us")
    print(f"llama_index.tax_lunary: {ours:.1f} us")
    print(f"llama_index.tax_lunary_vs_noop: {ours / floor:.2f} x")
    # The same, with LlamaIndex's own work taken out (noise-free): the handlers' cost alone.
    print(f"llama_index.handlers_noop_pair: {result['replay_noop']:.1f} us")
    print(f"llama_index.handlers_lunary: {result['replay_lunary']:.1f} us")
    ratio = result["replay_lunary"] / result["replay_noop"]
    print(f"llama_index.handlers_lunary_vs_noop: {ratio:.2f} x")


if __name__ == "__main__":
    main()
