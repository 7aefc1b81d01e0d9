"""What the wallboard tests share: a realistic snapshot, publishing it as the aggregator does, a web server
in the test's event loop, and a small SSE reader."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from callstream_common.redis_store import board_channel, board_key, boards_index_key
from callstream_stats.board import BoardSnapshot, ScopeKind
from callstream_stats.web.app import build_app
from callstream_stats.web.settings import StatsWebSettings


def snapshot(tenant: str, *, kind: ScopeKind = "queue", ident: str = "sales", seq: int = 1, waiting: int = 4,
             title: str = "Sales — inbound", offered_today: int = 1284) -> BoardSnapshot:
    """A board in the middle of a busy morning; `waiting` and `offered_today` are the figures tests move."""
    now = datetime.now(UTC)
    period = {
        "today": dict(offered=offered_today, answered=1187, abandoned=61, short_abandoned=14, answered_in_sl=978,
                      sl_pct=84.6, abandon_pct=4.7, asa_s=14.2, aht_s=312.5, avg_wrapup_s=38.0,
                      occupancy_pct=87.3),
        "60m": dict(offered=212, answered=188, abandoned=19, short_abandoned=3, answered_in_sl=141,
                    sl_pct=72.3, abandon_pct=9.2, asa_s=26.8, aht_s=298.1, avg_wrapup_s=35.5, occupancy_pct=93.1),
        "15m": dict(offered=61, answered=49, abandoned=9, short_abandoned=1, answered_in_sl=30, sl_pct=55.6,
                    abandon_pct=15.5, asa_s=41.3, aht_s=305.0, avg_wrapup_s=36.2, occupancy_pct=96.4),
    }
    return BoardSnapshot.model_validate({
        "tenant": tenant, "scope": f"{kind}/{ident}", "kind": kind, "title": title, "seq": seq,
        "updated_at": now.isoformat(), "last_event_at": (now - timedelta(milliseconds=80)).isoformat(),
        "settings": {"sl_threshold_s": 20, "short_abandon_s": 5, "abandon_policy": "exclude_within_threshold",
                     "time_zone": "Europe/Paris"},
        "now": {"waiting": waiting,
                "oldest_waiting_since": (now - timedelta(seconds=47)).isoformat() if waiting else None,
                "agents": {"available": 6, "reserved": 1, "ringing": 2, "on_call": 31, "wrap_up": 5, "paused": 7},
                "paused_reasons": {"lunch": 3, "training": 2, "break": 2}},
        "periods": period,
    })


async def store(redis: aioredis.Redis, snap: BoardSnapshot, *, announce: bool = True) -> None:
    """What the aggregator does: write the key, list the board, then publish the same JSON."""
    raw = snap.model_dump_json()
    await redis.set(board_key(snap.tenant, snap.scope), raw)
    await redis.hset(boards_index_key(snap.tenant), snap.scope, snap.title)
    if announce:
        await redis.publish(board_channel(snap.tenant), raw)


def web_settings(redis_url: str, tenant: str, **overrides: Any) -> StatsWebSettings:
    values: dict[str, Any] = dict(tenant=tenant, redis_url=redis_url, host="127.0.0.1", port=0, heartbeat_s=1.0,
                                  write_timeout_s=5.0, instance=tenant)  # a Redis client name of its own
    return StatsWebSettings(**{**values, **overrides})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebServer:
    """A stats web instance in the test's loop, on a fixed port so it can be stopped and started again."""

    settings: StatsWebSettings
    port: int = field(default_factory=free_port)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> WebServer:
        app = build_app(self.settings)
        self.runner = web.AppRunner(app, shutdown_timeout=2)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def subscribed(self) -> bool:
        from callstream_stats.web.keys import HUB

        return self.runner is not None and self.runner.app[HUB].subscribed


@dataclass
class Event:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class SseReader:
    """Reads events from an open text/event-stream response (just enough of the SSE grammar for our server)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, *, timeout: float = 10.0, skip_heartbeats: bool = True) -> Event:
        async with asyncio.timeout(timeout):
            while True:
                event = await self._one()
                if event is not None and not (skip_heartbeats and event.event == "heartbeat"):
                    return event

    async def _one(self) -> Event | None:
        name, ident = "message", None
        data: list[str] = []
        while True:
            line = (await self.response.content.readline()).decode()
            if line == "":
                raise ConnectionError("stream ended")
            line = line.rstrip("\n")
            if line == "":
                return Event(name, "\n".join(data), ident) if data else None
            field_name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field_name == "event":
                name = value
            elif field_name == "data":
                data.append(value)
            elif field_name == "id":
                ident = value


class FreezingProxy:
    """A TCP proxy that can stop passing the server's bytes on while keeping every socket open: the stream
    going silent without any error, as behind a dead link or a stuck proxy, which only the page's watchdog
    can notice."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def start(self) -> FreezingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        for task in (self._pump(client_r, server_w, gated=False), self._pump(server_r, client_w, gated=True)):
            t = asyncio.create_task(task)
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, gated: bool) -> None:
        try:
            while data := await reader.read(65536):
                if gated:
                    await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # either side went away: the other is closed below
        finally:
            writer.close()
