"""``python -m lunary_integrations serve [--host] [--port] [--db]``: the local collector."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m lunary_integrations serve [--host HOST] [--port PORT] [--db PATH]")
        return 0 if args else 2
    if args[0] != "serve":
        print(f"unknown command {args[0]!r}; try: serve", file=sys.stderr)
        return 2
    from .local.__main__ import main as serve

    return serve(args[1:])


if __name__ == "__main__":
    sys.exit(main())
