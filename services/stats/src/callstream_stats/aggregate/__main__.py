"""`python -m callstream_stats.aggregate [--tenant acme ...]`: the stats aggregator of one tenant.

Entry point only wires: settings, logging, the Prometheus endpoint, signal handlers, run. SIGTERM and SIGINT
stop the consumer, publish the last folded changes and write the last interval rows, then exit.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from prometheus_client import start_http_server

from callstream_common.logs import setup_logging
from callstream_common.settings import SettingsError, load_settings
from callstream_stats.aggregate.service import Aggregator
from callstream_stats.settings import StatsSettings


async def _run(aggregator: Aggregator) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, aggregator.stop)
    await aggregator.run()


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings(StatsSettings, sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"stats: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.service, settings.instance, settings.log_level)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    asyncio.run(_run(Aggregator(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
