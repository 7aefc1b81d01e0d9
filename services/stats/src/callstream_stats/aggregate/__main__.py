"""`python -m callstream_stats.aggregate [--tenant acme ...]`: the stats aggregator of one tenant.

Entry point only wires: settings, logging, the Prometheus endpoint, signal handlers, run. SIGTERM and SIGINT
stop the consumer, publish the last folded changes and write the last interval rows, then exit.
"""

from __future__ import annotations

import sys

from callstream_common.entry import serve
from callstream_stats.aggregate.service import Aggregator
from callstream_stats.settings import StatsSettings


def main(argv: list[str] | None = None) -> int:
    return serve(StatsSettings, "stats", argv, Aggregator)


if __name__ == "__main__":
    sys.exit(main())
