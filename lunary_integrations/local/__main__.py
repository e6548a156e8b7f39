"""`python -m lunary_integrations.local`: serve the local collector until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from . import LocalLunary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lunary_integrations.local",
        description="Run a local Lunary-compatible collector (ingest + Runs API).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000, 0 = any)")
    parser.add_argument("--db", default=":memory:", help="sqlite file (default: in memory)")
    parser.add_argument("--public-key", default=None, help="public key (default: random uuid4)")
    parser.add_argument("--private-key", default=None, help="private key (default: random uuid4)")
    args = parser.parse_args(argv)

    lunary = LocalLunary(
        db=args.db,
        host=args.host,
        port=args.port,
        public_key=args.public_key,
        private_key=args.private_key,
    )
    lunary.start()
    print(f"Local Lunary collector listening on {lunary.url}")
    print(f"  LUNARY_API_URL={lunary.url}")
    print(f"  LUNARY_PUBLIC_KEY={lunary.public_key}")
    print(f"  LUNARY_PRIVATE_KEY={lunary.private_key}")
    print(f"  database: {args.db}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nstopping", file=sys.stderr)
    finally:
        lunary.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
