"""A plain aiohttp ARI client that records everything: every REST exchange and every WebSocket message.

It has no knowledge of the simulator beyond ARI itself and the `/_sim/` control API (kept in `SimControl`,
the one place that knows the control API's field names). Nothing is validated here; the recorder's
contents are judged afterwards by the swagger, response and sequence checkers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from .responses import Exchange

Predicate = Callable[[dict[str, Any]], bool]
Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None


class FlowError(Exception):
    """A flow cannot go on (a response or an event it needs never came); recorded as one violation."""


@dataclass
class Received:
    conn: int
    apps: tuple[str, ...]
    seq: int
    at: float
    text: str
    event: Any


@dataclass
class Recorder:
    """Everything observed during a run, in arrival order."""

    exchanges: list[Exchange] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    streams: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # app -> events, all connections
    subscribe_all_apps: set[str] = field(default_factory=set)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def violation(self, flow: str, text: str) -> None:
        self.problems.append(f"[{flow}] {text}")

    async def add(self, item: Received) -> None:
        self.received.append(item)
        event = item.event
        if isinstance(event, dict):
            app = event.get("application")
            key = app if isinstance(app, str) else (item.apps[0] if item.apps else "?")
            self.streams.setdefault(key, []).append(event)
        async with self.changed:
            self.changed.notify_all()

    def find(self, app: str, predicate: Predicate, start: int = 0) -> dict[str, Any] | None:
        for event in self.streams.get(app, [])[start:]:
            try:
                if predicate(event):
                    return event
            except (KeyError, TypeError, AttributeError):
                continue
        return None

    async def wait_for(self, app: str, predicate: Predicate, *, timeout: float, what: str,
                       flow: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        async with self.changed:
            while True:
                found = self.find(app, predicate)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FlowError(f"timed out after {timeout:.0f}s waiting for {what} on app {app!r}")
                try:
                    await asyncio.wait_for(self.changed.wait(), remaining)
                except asyncio.TimeoutError:
                    continue

    def count(self, app: str, predicate: Predicate) -> int:
        n = 0
        for event in self.streams.get(app, []):
            try:
                n += bool(predicate(event))
            except (KeyError, TypeError, AttributeError):
                continue
        return n


class EventConnection:
    """One `GET /ari/events` WebSocket."""

    _serial = 0

    def __init__(self, client: AriClient, apps: Sequence[str], subscribe_all: bool, from_start: bool = True) -> None:
        EventConnection._serial += 1
        self.serial = EventConnection._serial
        self.client = client
        self.apps = tuple(apps)
        self.subscribe_all = subscribe_all
        # A subscribeAll connection opened mid-run hears about channels that already exist: the "everything
        # from ChannelCreated on" invariant does not apply to it.
        self.from_start = from_start
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.closed = asyncio.Event()
        self.messages: list[Received] = []
        self._reader: asyncio.Task[None] | None = None

    async def open(self, flow: str) -> None:
        params = {"app": ",".join(self.apps), "subscribeAll": "true" if self.subscribe_all else "false"}
        url = f"{self.client.base_url}/ari/events"
        try:
            self.ws = await self.client.session.ws_connect(
                url, params=params, headers=self.client.auth_headers, heartbeat=None, max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
        except aiohttp.WSServerHandshakeError as exc:
            raise FlowError(f"WebSocket handshake for apps {self.apps} failed: HTTP {exc.status} {exc.message}") from exc
        if self.subscribe_all and self.from_start:
            self.client.recorder.subscribe_all_apps.update(self.apps)
        self._reader = asyncio.create_task(self._read(), name=f"ari-ws-{self.serial}")

    async def _read(self) -> None:
        assert self.ws is not None
        recorder = self.client.recorder
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    recorder.violation("websocket", f"connection {self.serial}: non-text frame {msg.type.name}; "
                                                    f"Asterisk sends each event as one text frame")
                    continue
                try:
                    event: Any = json.loads(msg.data)
                except ValueError:
                    event = None
                item = Received(self.serial, self.apps, len(recorder.received), time.monotonic(), msg.data, event)
                self.messages.append(item)
                await recorder.add(item)
        finally:
            self.closed.set()

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except asyncio.TimeoutError:
                self._reader.cancel()
        self.closed.set()


class AriClient:
    def __init__(self, base_url: str, user: str, password: str, recorder: Recorder,
                 session: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self.password = password
        # aiohttp 3.14 deprecates BasicAuth and `auth=`: the header is built once here.
        self.auth_headers = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self.recorder = recorder
        self.session = session

    async def call(self, flow: str, method: str, path: str, *, params: Params = None, body: Any = None,
                   expect: int | Sequence[int] | None = None, why: str = "", auth: str = "basic",
                   record: bool = True) -> Exchange:
        """One ARI request (path relative to /ari, e.g. "/channels"); the exchange is recorded and returned."""
        full = path if path.startswith("/ari/") else f"/ari{path}"
        query: list[tuple[str, str]] = []
        if params:
            items = params.items() if isinstance(params, Mapping) else params
            for key, value in items:
                values = value if isinstance(value, (list, tuple)) else [value]
                for v in values:
                    query.append((key, _text(v)))
        headers: dict[str, str] = {}
        if auth == "basic":
            headers = self.auth_headers
        elif auth == "api_key":
            query.append(("api_key", f"{self.user}:{self.password}"))
        elif auth == "bad":
            headers = {"Authorization": aiohttp.encode_basic_auth(self.user, self.password + "-wrong")}
        try:
            # The path is sent as written (already percent-encoded where a segment holds a '/').
            url = URL(self.base_url + full, encoded=True)
            if query:
                url = url.update_query(query)
            async with self.session.request(method, url, headers=headers, json=body,
                                            timeout=aiohttp.ClientTimeout(total=15)) as resp:
                raw = await resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise FlowError(f"{method} {full} failed: {type(exc).__name__}: {exc}") from exc
        if expect is None:
            expect_set = None
        elif isinstance(expect, int):
            expect_set = frozenset({expect})
        else:
            expect_set = frozenset(expect)
        ex = Exchange(flow=flow, method=method.upper(), path=full, query=query, status=status, headers=headers,
                      body=raw, authenticated=auth in ("basic", "api_key"), expect=expect_set, why=why)
        if record:
            self.recorder.exchanges.append(ex)
        return ex

    async def ok(self, flow: str, method: str, path: str, *, params: Params = None, body: Any = None,
                 expect: int = 200, why: str = "") -> Any:
        """A call the flow depends on: a different status ends the flow."""
        ex = await self.call(flow, method, path, params=params, body=body, expect=expect, why=why)
        if ex.status != expect:
            raise FlowError(f"{ex.describe()} (expected {expect}); cannot continue: "
                            f"{ex.body[:200].decode('utf-8', 'replace')}")
        return ex.json_body

    async def connect(self, flow: str, apps: Sequence[str], subscribe_all: bool = False,
                      from_start: bool = True) -> EventConnection:
        conn = EventConnection(self, apps, subscribe_all, from_start)
        await conn.open(flow)
        return conn


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class SimControl:
    """The simulator's `/_sim/` control API (same credentials as ARI). Field names follow
    tools/pbx-sim docs/pbx-sim.md; this class is the only place that knows them."""

    def __init__(self, client: AriClient) -> None:
        self.client = client

    async def _req(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = f"{self.client.base_url}/_sim{path}"
        try:
            async with self.client.session.request(method, url, json=body, headers=self.client.auth_headers,
                                                   timeout=aiohttp.ClientTimeout(total=60)) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise FlowError(f"control API {method} /_sim{path} failed: {exc}") from exc
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode("utf-8", "replace")
        return status, data

    async def must(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self._req(method, path, body)
        if status >= 300:
            raise FlowError(f"control API {method} /_sim{path} {json.dumps(body)} -> {status} {data}")
        return data

    async def inject_call(self, did: str, caller_number: str, caller_name: str = "",
                          app: str | None = None, args: Sequence[str] | None = None) -> str:
        body: dict[str, Any] = {"did": did, "caller_number": caller_number, "caller_name": caller_name}
        if app is not None:
            body["app"] = app
        if args is not None:
            body["args"] = list(args)
        data = await self.must("POST", "/calls", body)
        channel_id = _find_id(data, ("channel_id", "id", "channelId", "caller_channel_id"))
        if not channel_id:
            raise FlowError(f"POST /_sim/calls answered {data!r} without a channel id")
        return channel_id

    async def phone(self, resource: str, tech: str = "PJSIP", **behaviour: Any) -> Any:
        return await self.must("PUT", f"/endpoints/{tech}/{resource}", behaviour)

    async def far_end(self, channel_id: str, action: str, body: Any = None) -> Any:
        return await self.must("POST", f"/channels/{channel_id}/{action}", body)

    async def drop_websocket(self) -> Any:
        return await self.must("POST", "/websocket/drop", {"mode": "abort"})

    async def refuse_websocket(self, refuse: bool) -> Any:
        return await self.must("PUT", "/websocket/refuse", {"refuse": refuse})

    async def traffic(self, **settings: Any) -> tuple[int, Any]:
        return await self._req("PUT", "/traffic", settings)

    async def info(self) -> Any:
        return await self.must("GET", "")

    async def firehose(self, count: int, app: str | None = None) -> Any:
        body: dict[str, Any] = {"count": count}
        if app:
            body["app"] = app
        return await self.must("POST", "/firehose", body)

    async def counters(self) -> Any:
        return await self.must("GET", "/counters")


def _find_id(data: Any, keys: Sequence[str]) -> str | None:
    if isinstance(data, dict):
        for key in keys:
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
        channel = data.get("channel")
        if isinstance(channel, dict) and isinstance(channel.get("id"), str):
            return str(channel["id"])
    return None
