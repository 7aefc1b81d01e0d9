"""Shared harness of the simulator tests: a simulator started in-process on a free port, a plain aiohttp
ARI client, and an event recorder. (Its own tests check the harness's footing: the server answers, and a
recorder sees what the server emits.)

The simulator runs in the test's event loop (session-scoped), listening on an ephemeral port; every test gets
a fresh simulator, so tests never share channels, apps or counters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callstream_pbx_sim.config import load_site
from callstream_pbx_sim.pbx import Pbx
from callstream_pbx_sim.server import Simulator
from helpers import until

ROOT = Path(__file__).resolve().parents[2]
API_DOCS = Path(os.environ.get("CALLSTREAM_ARI_DOCS", ROOT.parent / "shared" / "ari" / "api-docs"))
USER, PASSWORD = "asterisk", "s3cr3t-pw"
DID = "5550100"


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Events:
    """Everything one event WebSocket received, in order, with waiting helpers."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.items: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.items.append(json.loads(msg.data))
        finally:
            self.closed.set()

    def of(self, channel_id: str | None = None, *, types: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        out = []
        for e in self.items:
            if types is not None and e["type"] not in types:
                continue
            if channel_id is not None and channel_id not in _channel_ids(e):
                continue
            out.append(e)
        return out

    def types(self, channel_id: str | None = None) -> list[str]:
        return [e["type"] for e in self.of(channel_id)]

    async def wait(self, etype: str, channel_id: str | None = None, timeout: float = 10.0,
                   where: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            for e in self.of(channel_id, types=(etype,)):
                if where is None or where(e):
                    return e
            return None

        return await until(probe, timeout=timeout, what=f"{etype} for {channel_id}")

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _channel_ids(event: dict[str, Any]) -> set[str]:
    ids = set()
    for key in ("channel", "peer", "caller", "replace_channel"):
        value = event.get(key)
        if isinstance(value, dict) and "id" in value:
            ids.add(value["id"])
    for key in ("playback", "recording"):
        value = event.get(key)
        if isinstance(value, dict) and str(value.get("target_uri", "")).startswith("channel:"):
            ids.add(value["target_uri"].split(":", 1)[1])
    return ids


class Sim:
    """A running simulator and a client for it."""

    def __init__(self, simulator: Simulator, session: aiohttp.ClientSession) -> None:
        self.simulator = simulator
        self.session = session
        self.pbx: Pbx = simulator.pbxs[0]
        self.base = f"http://127.0.0.1:{simulator.ports[self.pbx.name]}"

    async def req(self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None,
                  headers: dict[str, str] | None = None, expect: int | None = None) -> tuple[int, Any]:
        hdrs = basic() if headers is None else headers
        async with self.session.request(method, self.base + path, params=params, json=json_body,
                                        headers=hdrs) as resp:
            raw = await resp.read()
            status = resp.status
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        if expect is not None:
            assert status == expect, f"{method} {path} {params or ''} -> {status} {body!r}, expected {expect}"
        return status, body

    async def ari(self, method: str, path: str, expect: int | None = None, json_body: Any = None,
                  **params: Any) -> Any:
        _, body = await self.req(method, "/ari" + path, params=params or None, json_body=json_body, expect=expect)
        return body

    async def ctl(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        _, data = await self.req(method, "/_sim" + path, json_body=body, expect=expect)
        return data

    async def connect(self, apps: str = "callstream", subscribe_all: bool = False) -> Events:
        params = {"app": apps}
        if subscribe_all:
            params["subscribeAll"] = "true"
        ws = await self.session.ws_connect(self.base + "/ari/events", params=params, headers=basic())
        events = Events(ws)
        first = apps.split(",")[0]
        await until(lambda: self.pbx.router.is_active(first), timeout=5, what=f"app {first} registered")
        return events

    async def call(self, caller: str = "+15551230001", **body: Any) -> str:
        data = await self.ctl("POST", "/calls", {"did": DID, "caller_number": caller, **body}, expect=201)
        return str(data["channel_id"])


@contextlib.asynccontextmanager
async def running(**overrides: Any) -> AsyncIterator[Sim]:
    """A simulator with one PBX on a free port; keyword arguments override site and PBX settings."""
    pbx = {"port": 0, "agents": {"count": 4}, "supervisors": {"count": 1, "first_extension": 2001},
           "dids": [{"number": DID}], **overrides.pop("pbx", {})}
    site = load_site(None, {"user": USER, "password": PASSWORD, "api_docs": API_DOCS if API_DOCS.is_dir() else None,
                            "_pbx": pbx, **overrides})
    simulator = Simulator(site)
    await simulator.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Sim(simulator, session)
    finally:
        await simulator.stop()


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with running(time_scale=1.0) as s:
        yield s


async def test_harness_serves_and_records(sim: Sim) -> None:
    ping = await sim.ari("GET", "/asterisk/ping", expect=200)
    assert ping["ping"] == "pong" and ping["asterisk_id"] == sim.pbx.entity_id
    events = await sim.connect()
    channel = await sim.call()
    start = await events.wait("StasisStart", channel)
    assert start["application"] == "callstream" and start["args"] == ["inbound", DID]
    await events.close()
