"""How many events per second the PBX simulator delivers to one ARI WebSocket client.

The simulator runs in its own process (so that client and server do not share one event loop); one aiohttp
client subscribes to the app, `POST /_sim/firehose {count, app}` makes the simulator emit `count` valid events
as fast as it can, and the client counts what arrives, timing from the first to the last event. One event in
10,000 is validated against Asterisk's api-docs models (the conformance suite's validator), so that what is
counted are real ARI events, not filler.

    python bench/bench_sim.py [--count 500000] [--port P] [--base-url http://127.0.0.1:8088] [--min 50000]

The last line is `BENCH sim events_per_s=<n>`; the exit status is 1 when n is below --min (the simulator
must never be the bottleneck of a load test: issue 3 sets 50,000 events/s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

from callstream_pbx_sim.conformance.runner import SimulatorProcess
from callstream_pbx_sim.conformance.swagger import ApiDocs, Validator

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = ROOT.parent / "shared" / "ari" / "api-docs"
SAMPLE_EVERY = 10_000  # parse one event in this many: enough to catch garbage, cheap enough not to slow the client


async def measure(base_url: str, user: str, password: str, app: str, count: int, timeout: float,
                  validator: Validator) -> tuple[int, float, int]:
    auth = {"Authorization": aiohttp.encode_basic_auth(user, password)}
    received = 0
    size = 0
    first = last = 0.0
    bad: list[str] = []
    done = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{base_url}/ari/events", params={"app": app, "subscribeAll": "false"},
                                      headers=auth, max_msg_size=0, heartbeat=None)

        async def read() -> None:
            nonlocal received, first, last, size
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                now = time.perf_counter()
                if received == 0:
                    first = now
                last = now
                size += len(msg.data)
                if received % SAMPLE_EVERY == 0:
                    problems = validator.validate_message(json.loads(msg.data))
                    if problems:
                        bad.append(f"{problems[0]} in {msg.data[:120]}")
                received += 1
                if received >= count:
                    break
            done.set()

        reader = asyncio.create_task(read())
        started = time.perf_counter()
        async with session.post(f"{base_url}/_sim/firehose", json={"count": count, "app": app}, headers=auth,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status >= 300:
                raise SystemExit(f"POST /_sim/firehose -> {resp.status}: {(await resp.text())[:300]}")
            answer = await resp.text()
        try:
            await asyncio.wait_for(done.wait(), max(1.0, timeout - (time.perf_counter() - started)))
        except asyncio.TimeoutError:
            print(f"only {received} of {count} events arrived within {timeout}s", file=sys.stderr)
        reader.cancel()
        await ws.close()
    if bad:
        raise SystemExit(f"{len(bad)} sampled messages are not valid ARI events, e.g. {bad[0]}")
    print(f"firehose answered: {answer[:200]}")
    return received, (last - first), size


async def main_async(args: argparse.Namespace) -> int:
    validator = Validator(ApiDocs(args.api_docs))
    sim: SimulatorProcess | None = None
    base_url = args.base_url
    if base_url is None:
        sim = SimulatorProcess(args.api_docs, user=args.user, password=args.password, app=args.app,
                               entity_id="00:00:5e:00:53:2b", port=args.port)
        await sim.start(args.user, args.password)
        base_url = sim.base_url
    try:
        received, seconds, size = await measure(base_url, args.user, args.password, args.app, args.count,
                                                args.timeout, validator)
    finally:
        if sim is not None:
            sim.stop()
    rate = int((received - 1) / seconds) if received > 1 and seconds > 0 else 0
    print(f"events={received} seconds={seconds:.3f} mean_event_bytes={size // max(received, 1)} "
          f"(first to last event, one WebSocket client)")
    print(f"BENCH sim events_per_s={rate}")
    return 0 if rate >= args.min else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500_000, help="events to emit (default 500000)")
    parser.add_argument("--port", type=int, default=None, help="port for the simulator started here (default: free)")
    parser.add_argument("--base-url", default=None, help="measure an already running simulator instead")
    parser.add_argument("--api-docs", type=Path, default=DEFAULT_DOCS, help="Asterisk's api-docs folder")
    parser.add_argument("--user", default="asterisk")
    parser.add_argument("--password", default="asterisk")
    parser.add_argument("--app", default="callstream-bench")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    parser.add_argument("--min", type=int, default=50_000, help="fail below this many events/s (default 50000)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
