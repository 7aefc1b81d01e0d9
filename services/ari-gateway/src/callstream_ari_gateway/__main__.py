"""python -m callstream_ari_gateway --pbx-id pbx-01 --ari-url http://pbx-01:8088/ari ...

Entry point only wires: settings, logging, the gateway, signal handlers, run.
"""

from __future__ import annotations

import asyncio
import sys

from callstream_ari_gateway.gateway import Gateway
from callstream_ari_gateway.settings import GatewaySettings
from callstream_common.entry import USAGE_ERROR, run_until_signalled, settings_or_none
from callstream_common.heap import freeze_startup_heap
from callstream_common.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    settings = settings_or_none(GatewaySettings, "ari-gateway", argv)
    if settings is None:
        return USAGE_ERROR
    setup_logging(settings.service, f"{settings.pbx_id}/{settings.instance}", settings.log_level)
    asyncio.run(run_until_signalled(Gateway(settings), ready=freeze_startup_heap))
    return 0


if __name__ == "__main__":
    sys.exit(main())
