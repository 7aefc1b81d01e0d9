"""`python -m callstream_stats.aggregate [--tenant acme ...]`: the stats aggregator of one tenant.

Entry point only wires: settings, logging, the Prometheus endpoint, signal handlers, run. SIGTERM and SIGINT
stop the consumer, publish the last folded changes and write the last interval rows, then exit.
"""

from __future__ import annotations

import asyncio
import sys

from prometheus_client import start_http_server

from callstream_common.entry import USAGE_ERROR, run_until_signalled, settings_or_none
from callstream_common.logs import setup_logging
from callstream_stats.aggregate.service import Aggregator
from callstream_stats.settings import StatsSettings


def main(argv: list[str] | None = None) -> int:
    settings = settings_or_none(StatsSettings, "stats", argv)
    if settings is None:
        return USAGE_ERROR
    setup_logging(settings.service, settings.instance, settings.log_level)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    asyncio.run(run_until_signalled(Aggregator(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
