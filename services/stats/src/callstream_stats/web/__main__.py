"""`python -m callstream_stats.web [--port 8090 --tenant acme ...]`: the wallboard web server.

Entry point only wires: settings, logging, the application, then aiohttp's runner, which handles SIGTERM and
SIGINT (stop listening, end the streams so TVs reconnect elsewhere, close Redis).
"""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from callstream_common.entry import USAGE_ERROR, settings_or_none
from callstream_common.logs import setup_logging

from callstream_stats.web.app import build_app
from callstream_stats.web.settings import StatsWebSettings


def main(argv: list[str] | None = None) -> int:
    settings = settings_or_none(StatsWebSettings, "stats-web", argv)
    if settings is None:
        return USAGE_ERROR
    setup_logging(settings.service, settings.instance, settings.log_level)
    logging.getLogger(__name__).info("wallboards on http://%s:%d/ for tenant %s", settings.host, settings.port,
                                     settings.tenant)
    # Streams end at once on shutdown (on_shutdown closes them), so the grace period only covers short requests.
    web.run_app(build_app(settings), host=settings.host, port=settings.port, shutdown_timeout=5, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
