"""`python -m callstream_router [--setting value ...]`: load settings, set up logging, run the worker.

The faust worker installs the SIGTERM/SIGINT handlers: it stops the agents, commits, and closes the resources.
"""

from __future__ import annotations

import asyncio
import sys

import faust

from callstream_common.kafka.faust_app import prepare_topics
from callstream_common.logs import setup_logging
from callstream_common.settings import load_settings

from callstream_router.app import build
from callstream_router.settings import RouterSettings


def main(argv: list[str] | None = None) -> None:
    settings = load_settings(RouterSettings, sys.argv[1:] if argv is None else argv)
    setup_logging(settings.service, settings.instance, settings.log_level)
    app = build(settings)
    asyncio.run(prepare_topics(app, settings))  # its own topics exist before its consumer subscribes
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), override_logging=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
