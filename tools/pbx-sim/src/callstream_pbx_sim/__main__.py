"""`python -m callstream_pbx_sim`: load settings, set up logging, serve the PBXs until SIGINT/SIGTERM.

Single PBX from flags (what `make sim` runs):
    python -m callstream_pbx_sim --host 127.0.0.1 --port 8088 --user asterisk --password asterisk \
        --app callstream --agents 20 --inbound-rate 0.2 --api-docs DIR
Several PBXs from a site file (flags then override the site-wide settings only):
    python -m callstream_pbx_sim --site tools/pbx-sim/site.example.yaml --time-scale 10
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from .config import ConfigError, SiteConfig, load_site
from .server import Simulator

log = logging.getLogger("callstream_pbx_sim")

DEFAULT_DID = "5550100"
_PBX_FLAGS = ("port", "agents", "supervisors", "inbound_rate", "did", "entity_id")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="callstream-pbx-sim",
                                description="An ARI-compatible PBX simulator standing in for Asterisk 22/23.")
    p.add_argument("--site", type=Path, help="site YAML describing one or more PBXs")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--user", help="ARI user (default asterisk)")
    p.add_argument("--password", help="ARI password (default asterisk)")
    p.add_argument("--app", help="default Stasis application of inbound calls (default callstream)")
    p.add_argument("--api-docs", type=Path, help="folder of Asterisk's api-docs JSON files, served under "
                                                 "/ari/api-docs/")
    p.add_argument("--seed", type=int, help="random seed (default 1)")
    p.add_argument("--time-scale", type=float, help="simulated seconds per real second (default 1)")
    p.add_argument("--epoch", type=float, help="wall-clock epoch of simulated time 0 (reproducible ids)")
    p.add_argument("--ws-write-timeout-ms", type=int, help="disconnect an event reader stalled this long")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    single = p.add_argument_group("single PBX (without --site)")
    single.add_argument("--port", type=int, help="HTTP port (default 8088; 0 picks a free one)")
    single.add_argument("--agents", type=int, help="agent endpoints PJSIP/pbx1-agent-0001... (default 20)")
    single.add_argument("--supervisors", type=int, help="supervisor endpoints (default 2)")
    single.add_argument("--inbound-rate", type=float, help="Poisson calls per simulated second on the DID")
    single.add_argument("--did", help=f"the DID of generated calls (default {DEFAULT_DID})")
    single.add_argument("--entity-id", help="asterisk_id / system.entity_id (default 02:00:00:00:00:01)")
    return p.parse_args(argv)


def build_site(args: argparse.Namespace) -> SiteConfig:
    overrides: dict[str, Any] = {
        "host": args.host, "user": args.user, "password": args.password, "app": args.app,
        "api_docs": args.api_docs, "seed": args.seed, "time_scale": args.time_scale, "epoch": args.epoch,
        "ws_write_timeout_ms": args.ws_write_timeout_ms,
    }
    given = [f for f in _PBX_FLAGS if getattr(args, f) is not None]
    if args.site is not None:
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            raise ConfigError(f"{flags}: describe the PBXs in the site file when --site is given")
        return load_site(args.site, overrides)
    pbx: dict[str, Any] = {"name": "pbx1"}
    if args.port is not None:
        pbx["port"] = args.port
    if args.entity_id is not None:
        pbx["entity_id"] = args.entity_id
    if args.agents is not None:
        pbx["agents"] = {"count": args.agents}
    if args.supervisors is not None:
        pbx["supervisors"] = {"count": args.supervisors, "first_extension": 2001}
    pbx["dids"] = [{"number": args.did or DEFAULT_DID, "rate_per_s": args.inbound_rate or 0.0}]
    overrides["_pbx"] = pbx
    return load_site(None, overrides)


async def serve(site: SiteConfig) -> int:
    sim = Simulator(site)
    try:
        await sim.start()
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        await sim.stop()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        site = build_site(args)
    except ConfigError as exc:
        print(f"callstream-pbx-sim: invalid configuration: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(site))


if __name__ == "__main__":
    sys.exit(main())
