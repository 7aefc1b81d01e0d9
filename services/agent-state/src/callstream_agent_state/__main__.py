"""`python -m callstream_agent_state [--setting value ...]`: load settings, set up logging, run the worker.

The faust worker installs the SIGTERM/SIGINT handlers: it stops the agents, commits, and closes the resources.
"""

from __future__ import annotations

import asyncio
import sys

import faust

from callstream_common.kafka.faust_app import prepare_topics
from callstream_common.logs import setup_logging
from callstream_common.settings import load_settings

from callstream_agent_state.app import build
from callstream_agent_state.settings import AgentStateSettings


def main(argv: list[str] | None = None) -> None:
    settings = load_settings(AgentStateSettings, sys.argv[1:] if argv is None else argv)
    setup_logging(settings.service, settings.instance, settings.log_level)
    app = build(settings)
    asyncio.run(prepare_topics(app, settings))  # its own topics exist before its consumer subscribes
    # quiet: no console spinner (the logs are JSON lines); override_logging=False keeps setup_logging's handler.
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), override_logging=False, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
