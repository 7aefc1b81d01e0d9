"""`python -m callstream_stats aggregate|web [settings flags]`: one entry point for both halves of the stats service.

The halves stay separate processes because they scale differently: one aggregator per tenant (it reads every
partition of `calls` and `agents` and owns the board sequence numbers), as many web instances as the TVs need.
This module only picks one and hands it the rest of the command line; `python -m callstream_stats.aggregate` and
`python -m callstream_stats.web` keep working on their own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

USAGE = """usage: python -m callstream_stats {aggregate,web} [settings flags, --help]

  aggregate   the stats aggregator: folds `calls` and `agents` into board snapshots in Redis (one per tenant)
  web         the wallboard web server: pages, SSE streams, JSON API, /metrics (scale as needed)
"""


def _aggregate(argv: list[str]) -> int:
    # Imported on demand: the web side does not need Kafka, SQL or the figures loaded, and vice versa.
    from callstream_stats.aggregate.__main__ import main

    return main(argv)


def _web(argv: list[str]) -> int:
    from callstream_stats.web.__main__ import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {"aggregate": _aggregate, "web": _web}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(f"stats: missing command: aggregate or web\n{USAGE}", file=sys.stderr, end="")
        return 2
    command, rest = args[0], args[1:]
    if command in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    run = COMMANDS.get(command)
    if run is None:
        print(f"stats: unknown command {command!r}: expected aggregate or web\n{USAGE}", file=sys.stderr, end="")
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
