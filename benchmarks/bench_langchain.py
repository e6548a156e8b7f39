"""Tracing tax of the LangChain handler per invocation of ``prompt | chat model | parser``.

Variants, interleaved batch by batch so drift hits them alike:

* ``none``: no callbacks;
* ``noop``: a ``BaseCallbackHandler`` subclass doing nothing (LangChain's own floor: run
  managers, event dispatch);
* ``lunary``: ``LunaryCallbackHandler`` whose client only queues (nothing is sent while
  timing, so the figure is the cost on the caller's thread);
* ``lunary_e2e``: the same, delivering to a local collector on loopback while timing (the
  worker thread's encoding and HTTP compete for the GIL).

Tax = variant - none, in µs of the calling thread's CPU time (``--wall``: wall clock).
Prints one ``name: value unit`` line per figure.

    python benchmarks/bench_langchain.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate

import lunary_integrations
from lunary_integrations import config
from lunary_integrations.langchain import LunaryCallbackHandler
from lunary_integrations.local import LocalLunary

USAGE = {"input_tokens": 11, "output_tokens": 3, "total_tokens": 14}


class UsageFakeChatModel(BaseChatModel):
    model_name: str = "fake-gpt-1"
    temperature: float = 0.2
    max_tokens: int = 64

    @property
    def _llm_type(self) -> str:
        return "usage-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        msg = AIMessage(content="hello there friend", usage_metadata=USAGE)  # type: ignore[arg-type]
        return ChatResult(
            generations=[ChatGeneration(message=msg)],
            llm_output={"token_usage": {"prompt_tokens": 11, "completion_tokens": 3}},
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for tok in ("hello", " there", " friend"):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=tok))
            if run_manager:
                run_manager.on_llm_new_token(tok, chunk=chunk)
            yield chunk


class NoopHandler(BaseCallbackHandler):
    """The floor: LangChain dispatches every event to it, it does nothing."""

    run_inline = True

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        pass


def chain() -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("human", "{q}")])
    return prompt | UsageFakeChatModel() | StrOutputParser()


#: CPU time of the calling thread: what the caller pays, without the time other processes
#: on a busy machine (or our own worker thread) take. ``--wall`` uses perf_counter instead.
CLOCK: Callable[[], float] = time.thread_time


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    clock = CLOCK
    started = clock()
    for _ in range(n):
        fn()
    return (clock() - started) / n * 1e6


def measure(
    variants: dict[str, Callable[[], Any]],
    batches: int,
    per_batch: int,
    between: Callable[[], Any] = lambda: None,
) -> dict[str, float]:
    """Median over batches of the mean µs per call. ``between`` runs untimed after each
    batch (draining the queue there keeps it, and the GC's work, from growing run after run)."""
    for fn in variants.values():  # warm-up: imports, caches, first-event set-up
        per_call_us(fn, per_batch)
        between()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(batches):
        for name, fn in variants.items():
            gc.collect()
            samples[name].append(per_call_us(fn, per_batch))
            between()
    # The best batch estimates the intrinsic cost on a busy machine; the median is printed too.
    return {name: min(values) for name, values in samples.items()} | {
        f"{name}.median": statistics.median(values) for name, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the handler variant")
    parser.add_argument("--wall", action="store_true", help="wall-clock time, not thread CPU")
    args = parser.parse_args()
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    batches, per_batch = (5, 100) if args.quick else (25, 200)

    runnable = chain()
    inputs = {"q": "hi?"}
    noop = NoopHandler()

    with LocalLunary() as lunary:
        # Queue only while timing: a batch is sent when it holds 10M events, after an hour,
        # or on the untimed flush between batches.
        config.configure(
            public_key=lunary.public_key,
            api_url=lunary.url,
            flush_interval=3600,
            max_batch_events=10_000_000,
            max_queue_events=10_000_000,
        )
        ours = LunaryCallbackHandler()
        variants = {
            "none": lambda: runnable.invoke(inputs),
            "noop": lambda: runnable.invoke(inputs, config={"callbacks": [noop]}),
            "lunary": lambda: runnable.invoke(inputs, config={"callbacks": [ours]}),
        }
        result = measure(
            variants, batches, per_batch, between=lambda: lunary_integrations.flush(60)
        )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(per_call_us, variants["lunary"], 2000)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        lunary_integrations.shutdown(60)

    with LocalLunary() as lunary:  # end to end: the worker delivers while we time
        config.reset()
        config.configure(public_key=lunary.public_key, api_url=lunary.url)
        e2e = LunaryCallbackHandler()
        e2e_result = measure(
            {"lunary_e2e": lambda: runnable.invoke(inputs, config={"callbacks": [e2e]})},
            batches,
            per_batch,
        )
        result["lunary_e2e"], result["lunary_e2e.median"] = (
            e2e_result["lunary_e2e"],
            e2e_result["lunary_e2e.median"],
        )
        lunary_integrations.shutdown(60)
        delivered = len(lunary.all_runs())

    for stat, suffix in (("best batch", ""), ("median batch", ".median")):
        base = result["none" + suffix]
        floor = result["noop" + suffix] - base
        tag = suffix.replace(".", "_")
        clock = "wall clock" if args.wall else "thread CPU time"
        print(f"# {stat} of {batches} x {per_batch} invocations, {clock}")
        print(f"langchain.invoke_no_callbacks{tag}: {base:.1f} us")
        for name in ("noop", "lunary", "lunary_e2e"):
            tax = result[name + suffix] - base
            print(f"langchain.tax_{name}{tag}: {tax:.1f} us")
            if name != "noop":
                print(f"langchain.tax_{name}_vs_noop{tag}: {tax / floor:.2f} x")
    print(f"langchain.e2e_runs_delivered: {delivered} runs")


if __name__ == "__main__":
    main()
