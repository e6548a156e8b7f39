"""The timing harness shared by the benchmarks: paired rounds, three clocks.

A variant is timed in batches; every round times each variant once (in a rotated order), and
its *tax* is the median over rounds of (variant - ``none``) in the same round, so drift on a
busy machine cancels out. Three clocks per call:

* ``cpu``: the calling thread's CPU time: what the app's own thread pays (the targets);
* ``proc``: the whole process's CPU time, ``drain`` included (delivering what the batch
  queued), so background threads' work (translation, encoding, HTTP) is charged to the
  variant that caused it;
* ``wall``: a stopwatch, ``drain`` included.

The garbage collector stays on: the collections a variant causes are part of its cost. A
full collection before each batch starts every batch from the same state.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import random
import statistics
import time
from collections.abc import Callable
from typing import Any


def nothing() -> None:
    pass


@dataclasses.dataclass
class Variant:
    call: Callable[[], Any]
    #: Untimed on the ``cpu`` clock: waits until what the batch queued was delivered.
    drain: Callable[[], Any] = nothing
    #: Around each batch, untimed (installing and removing handlers).
    install: Callable[[], Any] = nothing
    remove: Callable[[], Any] = nothing


CLOCKS = ("cpu", "proc", "wall")


def timed(
    fn: Callable[[], Any], n: int, drain: Callable[[], Any] = nothing
) -> tuple[float, float, float]:
    """Per call over ``n`` calls: (caller's thread CPU µs, process CPU µs, wall µs)."""
    cpu, proc, wall = time.thread_time, time.process_time, time.perf_counter
    c0, p0, w0 = cpu(), proc(), wall()
    for _ in range(n):
        fn()
    c1 = cpu()
    drain()
    return (c1 - c0) / n * 1e6, (proc() - p0) / n * 1e6, (wall() - w0) / n * 1e6


def _batch(variant: Variant, n: int) -> tuple[float, float, float]:
    variant.install()
    try:
        gc.collect()
        return timed(variant.call, n, variant.drain)
    finally:
        variant.remove()


def median_ci(values: list[float]) -> float:
    """Half-width of a 95% confidence interval of the median of ``values`` (McGill's notch:
    1.57 x interquartile range / sqrt(n)): a tax smaller than this is not resolved."""
    if len(values) < 4:
        return float("nan")
    q1, _, q3 = statistics.quantiles(values, n=4)
    return 1.57 * (q3 - q1) / math.sqrt(len(values))


def interleaved(
    variants: dict[str, Variant], rounds: int, warmup: int = 200
) -> dict[str, dict[str, float]]:
    """The caller's CPU per single call, variants interleaved call by call (in a new random
    order each round: a call runs faster after a light one, whose code left the caches warm;
    ``install``/``remove`` around each call, untimed): ``tax_cpu`` is the median over rounds
    of (variant - ``none``) in the same round, ``ci_cpu`` its :func:`median_ci`.

    Pairing single calls cancels this machine's drift far better than batches do (a tax of
    ~50 µs on a 2 ms call: ±9 µs from 3 000 rounds, where 61 rounds of 64-call batches gave
    ±65). A median leaves out the rare call that pays for a collection or a wake-up:
    ``paired``'s process clock is where those show."""
    names = list(variants)
    order = random.Random(0)
    clock = time.thread_time_ns
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(-warmup, rounds):
        order.shuffle(names)
        for name in names:
            variant = variants[name]
            variant.install()
            try:
                c0 = clock()
                variant.call()
                c1 = clock()
            finally:
                variant.remove()
            if r >= 0:
                samples[name].append((c1 - c0) / 1e3)
    for variant in variants.values():
        variant.drain()
    out: dict[str, dict[str, float]] = {}
    for name in variants:
        taxes = [x - b for x, b in zip(samples[name], samples["none"])]
        out[name] = {
            "cpu": statistics.median(samples[name]),
            "tax_cpu": statistics.median(taxes),
            "ci_cpu": median_ci(taxes),
        }
    return out


def paired(
    variants: dict[str, Variant], rounds: int, per_batch: int
) -> dict[str, dict[str, float]]:
    """Per variant and clock: median µs per call; ``tax_<clock>``: the median over rounds of
    (variant - ``none``) measured in the same round; ``ci_<clock>``: its :func:`median_ci`."""
    names = list(variants)
    for name in names:  # warm-up
        _batch(variants[name], per_batch)
    samples: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(_batch(variants[name], per_batch))
    out: dict[str, dict[str, float]] = {}
    base = samples["none"]
    for name in names:
        s = samples[name]
        out[name] = {}
        for i, clock in enumerate(CLOCKS):
            out[name][clock] = statistics.median(x[i] for x in s)
            taxes = [x[i] - b[i] for x, b in zip(s, base)]
            out[name][f"tax_{clock}"] = statistics.median(taxes)
            out[name][f"ci_{clock}"] = median_ci(taxes)
    return out
