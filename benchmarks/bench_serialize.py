"""Micro-benchmark of ``lunary_integrations.serialize.to_jsonable`` (µs per call).

Run: ``.venv/bin/python benchmarks/bench_serialize.py`` (``-n`` to change the iteration count).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from lunary_integrations.serialize import dumps, to_jsonable


def _bench(name: str, fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    for _ in range(min(number, 1000)):  # warm-up (fills the per-type handler cache)
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    us = best * 1e6
    print(f"{name:<48} {us:10.2f} µs/call")
    return us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=100_000, help="iterations of the small cases")
    args = parser.parse_args()
    n = args.n

    small = {"role": "user", "content": "What is the capital of France?", "model": "gpt-4o"}

    def nested(level: int) -> dict[str, object]:
        if level == 0:
            return {"value": 42, "label": "leaf", "ok": True}
        return {"level": level, "name": f"node-{level}", "child": nested(level - 1)}

    deep = nested(5)
    big = "x" * 100_000

    _bench("dict of 3 short strings", lambda: to_jsonable(small), n)
    try:
        from langchain_core.messages import HumanMessage, SystemMessage

        import lunary_integrations.langchain  # noqa: F401  (registers the message handler)
    except ImportError:  # pragma: no cover
        print("langchain-core not installed: messages case skipped")
    else:
        messages = [
            SystemMessage("You are a helpful assistant."),
            HumanMessage("What is the capital of France?"),
        ]
        _bench("list of 2 LangChain messages", lambda: to_jsonable(messages), n)
    _bench("nested 5-level dict", lambda: to_jsonable(deep), n)
    _bench("100 KB str, max_bytes=64 KiB", lambda: to_jsonable(big, 64 * 1024), max(n // 100, 10))
    out = to_jsonable(small)
    _bench("dumps(dict of 3 short strings)", lambda: dumps(out), n)


if __name__ == "__main__":
    main()
