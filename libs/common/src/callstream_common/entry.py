"""What the `python -m` entry points of the asyncio services share: settings read from the command line (a
bad value is named and the process exits 2), and the service run until SIGTERM or SIGINT asks it to stop."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from prometheus_client import start_http_server

from callstream_common.logs import setup_logging
from callstream_common.settings import ServiceSettings, SettingsError, load_settings

S = TypeVar("S", bound=ServiceSettings)

USAGE_ERROR = 2


class Service(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


def settings_or_none(cls: type[S], prog: str, argv: Sequence[str] | None) -> S | None:
    """The settings from `argv` (the process's arguments when None); None once the problem is printed."""
    try:
        return load_settings(cls, sys.argv[1:] if argv is None else list(argv))
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None


async def run_until_signalled(service: Service, *, ready: Callable[[], None] | None = None) -> None:
    """`service.run()`, with SIGTERM and SIGINT calling `service.stop()` (it finishes what is in hand, then
    returns); `ready` runs once the handlers are in place."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, service.stop)
    if ready is not None:
        ready()
    await service.run()


def serve(cls: type[S], prog: str, argv: Sequence[str] | None, make: Callable[[S], Service]) -> int:
    """A whole entry point: settings, logging, the Prometheus endpoint (`metrics_port`, 0: none), then the
    service `make` builds, run until signalled. The process's exit status."""
    settings = settings_or_none(cls, prog, argv)
    if settings is None:
        return USAGE_ERROR
    setup_logging(settings.service, settings.instance, settings.log_level)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    asyncio.run(run_until_signalled(make(settings)))
    return 0
