"""python -m callstream_ari_gateway --pbx-id pbx-01 --ari-url http://pbx-01:8088/ari ...

Entry point only wires: settings, logging, the gateway, signal handlers, run.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from callstream_ari_gateway.gateway import Gateway
from callstream_ari_gateway.settings import GatewaySettings
from callstream_common.heap import freeze_startup_heap
from callstream_common.logs import setup_logging
from callstream_common.settings import SettingsError, load_settings


async def _serve(gateway: Gateway) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, gateway.stop)
    freeze_startup_heap()
    await gateway.run()


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings(GatewaySettings, sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"ari-gateway: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.service, f"{settings.pbx_id}/{settings.instance}", settings.log_level)
    asyncio.run(_serve(Gateway(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
