"""`python -m callstream_pbx_sim.conformance --api-docs DIR [--base-url URL]`: exit status 1 on any violation."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .runner import run_conformance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m callstream_pbx_sim.conformance",
                                     description="Judge the PBX simulator against Asterisk's ARI contract.")
    parser.add_argument("--api-docs", required=True, type=Path,
                        help="folder with Asterisk's api-docs (resources.json and the resource files)")
    parser.add_argument("--base-url", default=None,
                        help="a running simulator, e.g. http://127.0.0.1:8088 (default: start one on a free port)")
    parser.add_argument("--user", default="asterisk")
    parser.add_argument("--password", default="asterisk")
    parser.add_argument("--app", default="callstream", help="Stasis application name the flows use")
    parser.add_argument("--verbose", action="store_true", help="print the simulator's log tail at the end")
    parser.add_argument("--dump", type=Path, default=None,
                        help="write every event and exchange to this file (JSON lines) for reading violations")
    args = parser.parse_args(argv)
    result = asyncio.run(run_conformance(args.api_docs, args.base_url, user=args.user, password=args.password,
                                         app=args.app, out=lambda line: print(line, flush=True),
                                         verbose=args.verbose, dump=args.dump))
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
