"""The TVs of bench-wallboard: many SSE clients on a stats web instance, in a process of their own.

Run by bench/bench_wallboard.py, not by hand (though it works by hand too):

    python bench/wallboard_clients.py --url http://127.0.0.1:PORT --boards tenant/all=30,queue/sales=6 --out F

Why a separate process: the benchmark's own process reads topics and polls the simulator while the load runs;
on a 2-core machine its event loop can stall for tens of milliseconds, and a receipt time taken there would
charge that stall to the wallboard. Here the loop does nothing but read streams, so `time.time()` at the end of
an SSE event is the receipt.

Protocol with the parent: once every stream has had its first event (the heartbeat the server sends at once),
it prints `ready <n>` on stdout; it then reads streams until a line `stop` arrives on stdin, and writes the
results (JSON, below) to --out, then `done` on stdout.

Per client: its board, whether its stream ended or failed before `stop`, the last `seq` it received, how many
snapshots it got and, for each snapshot whose figures changed (see `figures_key`), one receipt
`[receipt_ms, seq, last_event_ms, updated_ms, advanced, oldest_event_ms]` (`advanced`: the snapshot's
`last_event_at` is newer than that of the client's previous snapshot, i.e. a newer event was folded in;
`oldest_event_ms`: its `oldest_event_at`, the oldest event folded in since the board's previous snapshot).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson


def to_ms(iso: str | None) -> int | None:
    # The board's times are ISO 8601 with offset at millisecond precision (board.py); round, not truncate, so the
    # same instant gives the same integer as the bench's lookup of the event by its `at`.
    return None if iso is None else round(datetime.fromisoformat(iso).timestamp() * 1000)


def figures_key(snapshot: dict[str, Any]) -> bytes:
    """What a TV shows that only an event can change: `now` and the periods, without occupancy.

    Occupancy counts the state an agent is in up to `now` (docs/metrics.md), so it moves with every refresh
    (`refresh_interval_s`) without any event; counting those refreshes as "changed figures" would charge the
    time since a board's last event to the wallboard. `updated_at` and `seq` change on every snapshot and are
    not figures."""
    periods = {name: {k: v for k, v in period.items() if k != "occupancy_pct"}
               for name, period in snapshot["periods"].items()}
    return orjson.dumps([snapshot["now"], periods], option=orjson.OPT_SORT_KEYS)


@dataclass
class Client:
    index: int
    scope: str
    connected: bool = False
    failed: str | None = None  # why the stream ended before `stop` (a disconnect: counted as missed)
    last_seq: int | None = None
    snapshots: int = 0
    unchanged: int = 0
    receipts: list[list[Any]] = field(default_factory=list)
    _key: bytes | None = None
    _last_event_ms: int | None = None

    def on_snapshot(self, data: bytes, received_ms: float) -> None:
        snap = orjson.loads(data)
        self.snapshots += 1
        seq = int(snap["seq"])
        self.last_seq = seq if self.last_seq is None else max(self.last_seq, seq)
        key = figures_key(snap)
        last_event_ms = to_ms(snap.get("last_event_at"))
        # The first snapshot of a stream is the stored one, sent on connect: not a change the client saw happen.
        if self._key is not None and key != self._key and last_event_ms is not None:
            advanced = self._last_event_ms is None or last_event_ms > self._last_event_ms
            self.receipts.append([received_ms, seq, last_event_ms, to_ms(snap["updated_at"]), advanced,
                                  to_ms(snap.get("oldest_event_at"))])
        elif self._key is not None:
            self.unchanged += 1
        self._key = key
        self._last_event_ms = last_event_ms


async def stream(session: aiohttp.ClientSession, base: str, client: Client, connected: asyncio.Event,
                 counter: list[int], total: int) -> None:
    try:
        async with session.get(f"{base}/stream/{client.scope}") as response:
            if response.status != 200:
                client.failed = f"HTTP {response.status}"
                return
            event, data = "", b""
            async for raw in response.content:  # aiohttp splits on b"\n"
                line = raw.rstrip(b"\r\n")
                if line:
                    if line.startswith(b"event:"):
                        event = line[6:].strip().decode()
                    elif line.startswith(b"data:"):
                        data = line[5:].lstrip()  # the server sends one data line per event (docs/wallboard.md)
                    continue
                # A blank line ends an event: that is the moment the client has the whole figure.
                received_ms = time.time() * 1000
                if not client.connected:
                    client.connected = True
                    counter[0] += 1
                    if counter[0] == total:
                        connected.set()
                if event == "snapshot" and data:
                    client.on_snapshot(data, received_ms)
                event, data = "", b""
            client.failed = "stream ended by the server"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of one TV is reported, never fatal to the others
        client.failed = f"{type(exc).__name__}: {exc}"


def parse_boards(spec: str) -> list[str]:
    scopes: list[str] = []
    for part in spec.split(","):
        scope, _, count = part.partition("=")
        scopes += [scope] * int(count or 1)
    return scopes


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--boards", required=True, help="scope=count,scope=count,...")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    clients = [Client(i, scope) for i, scope in enumerate(parse_boards(args.boards))]
    connected = asyncio.Event()
    counter = [0]
    # No total timeout (the streams are meant to last); a read timeout well above the heartbeat (5 s) catches a
    # dead stream. limit=0: one connection per client, as 150 TVs would have.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [asyncio.create_task(stream(session, args.url, c, connected, counter, len(clients)))
                 for c in clients]
        try:
            await asyncio.wait_for(connected.wait(), timeout=60)
        except TimeoutError:
            pass
        print(f"ready {counter[0]}", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "stop":
                break
        stopped_ms = time.time() * 1000
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result = {"stopped_ms": stopped_ms, "clients": [
        {"index": c.index, "scope": c.scope, "connected": c.connected, "failed": c.failed, "last_seq": c.last_seq,
         "snapshots": c.snapshots, "unchanged": c.unchanged, "receipts": c.receipts} for c in clients]}
    with open(args.out, "wb") as out:
        out.write(orjson.dumps(result))
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
