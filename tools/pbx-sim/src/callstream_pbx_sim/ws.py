"""The ARI event WebSocket (`GET /ari/events`): sessions, app ownership, and a batching frame writer.

Throughput: events are queued as ready-made WebSocket frames (unmasked text frames, no compression
negotiated) and written to the transport in one `write()` per loop iteration instead of one `send_str()`
await and one `send()` syscall per event. Flow control watches the transport's buffer; like Asterisk's
`websocket_write_timeout`, a reader that stays stalled longer than the configured timeout is disconnected.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .keys import PBX
from .stasis import Counters, Router

if TYPE_CHECKING:
    from .pbx import Pbx

log = logging.getLogger(__name__)

_PACK2 = struct.Struct("!BBH").pack
_PACK8 = struct.Struct("!BBQ").pack
_TEXT = 0x81  # FIN + text opcode

# Transport buffer sizes: above HIGH we stop writing, at or below LOW waiters may go on.
_HIGH = 4 * 1024 * 1024
_LOW = 256 * 1024
_MAX_ITEMS_PER_WRITE = 8192


def frame_header(n: int) -> bytes:
    if n < 126:
        return bytes((_TEXT, n))
    if n < 65536:
        return _PACK2(_TEXT, 126, n)
    return _PACK8(_TEXT, 127, n)


class WsClient:
    """One event WebSocket: the apps it owns and its outgoing frame queue."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        apps: list[str],
        subscribe_all: bool,
        write_timeout_s: float,
    ) -> None:
        self.ws = ws
        self.apps = list(apps)
        self.subscribe_all = subscribe_all
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._write_timeout = write_timeout_s
        self._q: collections.deque[bytes] = collections.deque()
        self._scheduled = False
        self._stalled_since: float | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.closed = False
        self.sent = 0
        # Callbacks of frames queued so far, run once the queue has been written out (timestamps of writes).
        self._on_written: list[Callable[[], None]] = []

    # --- queueing -------------------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        if self.closed:
            return
        self._q.append(frame_header(len(payload)))
        self._q.append(payload)
        self.sent += 1
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def send_frames(self, frames: list[bytes], count: int) -> None:
        """Frames already carrying their headers (the firehose builds them in bulk)."""
        if self.closed:
            return
        self._q.extend(frames)
        self.sent += count
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def when_written(self, callback: Callable[[], None]) -> None:
        """Run `callback` after the frames queued so far have been handed to the transport."""
        if not self.closed:
            self._on_written.append(callback)

    @property
    def backlog(self) -> int:
        return len(self._q) // 2

    def _flush(self) -> None:
        self._scheduled = False
        if self.closed:
            return
        transport = self._transport
        if transport.is_closing():
            self._mark_closed()
            return
        if transport.get_write_buffer_size() > _HIGH:
            now = self._loop.time()
            if self._stalled_since is None:
                self._stalled_since = now
            elif self._write_timeout and now - self._stalled_since > self._write_timeout:
                log.warning("event WebSocket reader stalled for more than %.3fs; disconnecting it",
                            self._write_timeout)
                self.abort()
                return
            self._scheduled = True
            self._loop.call_later(0.002, self._flush)
            return
        self._stalled_since = None
        q = self._q
        if len(q) <= _MAX_ITEMS_PER_WRITE:
            data = b"".join(q)
            q.clear()
        else:
            data = b"".join([q.popleft() for _ in range(_MAX_ITEMS_PER_WRITE)])
        if data:
            transport.write(data)
        if q:
            self._scheduled = True
            self._loop.call_soon(self._flush)
        elif self._on_written:
            # Only once the whole queue is out: a callback may belong to any frame queued before it.
            callbacks, self._on_written = self._on_written, []
            for callback in callbacks:
                callback()
        self._wake()

    def _wake(self) -> None:
        if not self._waiters:
            return
        buffered = self._transport.get_write_buffer_size()
        keep = []
        for limit, fut in self._waiters:
            if fut.done():
                continue
            if self.closed or (len(self._q) // 2 <= limit and buffered <= _LOW):
                fut.set_result(None)
            else:
                keep.append((limit, fut))
        self._waiters = keep
        if keep and not self._scheduled:
            # Nothing queued yet bytes still buffered in the transport: look again shortly.
            self._scheduled = True
            self._loop.call_later(0.001, self._flush)

    async def wait_backlog(self, limit: int) -> None:
        """Return once at most `limit` events are queued and the transport has drained below its low mark."""
        if self.closed:
            return
        if len(self._q) // 2 <= limit and self._transport.get_write_buffer_size() <= _LOW:
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((limit, fut))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)
        await fut

    # --- closing ---------------------------------------------------------------------------------------

    def _mark_closed(self) -> None:
        self.closed = True
        self._q.clear()
        self._on_written = []
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters = []

    def abort(self) -> None:
        """Drop the TCP connection without a close frame, as a network failure or a stalled reader would."""
        self._mark_closed()
        self._transport.abort()

    async def close(self, code: int = 1000) -> None:
        if not self.closed and self._q:
            self._transport.write(b"".join(self._q))
            self._q.clear()
            callbacks, self._on_written = self._on_written, []
            for callback in callbacks:
                callback()
        self._mark_closed()
        try:
            # A client that never answers the close frame must not hold up a shutdown.
            await asyncio.wait_for(self.ws.close(code=code), 2.0)
        except (ConnectionError, RuntimeError, asyncio.TimeoutError):
            self._transport.abort()


class Sessions:
    """Event WebSocket sessions of one PBX and the app ownership rules between them."""

    def __init__(self, router: Router, counters: Counters, write_timeout_s: float) -> None:
        self.router = router
        self.counters = counters
        self.write_timeout_s = write_timeout_s
        self.clients: list[WsClient] = []
        self.refuse = False
        self.refuse_mode = "503"
        self.on_app_active: Callable[[str], None] | None = None

    def attach(self, client: WsClient) -> None:
        self.clients.append(client)
        self.counters.ws_connects += 1
        for name in client.apps:
            app = self.router.ensure(name)
            old = app.client
            if old is not None and old is not client and isinstance(old, WsClient):
                # app.c app_update(): the newer WebSocket wins; the older one is told and loses the app.
                self.router.send_direct(old, name, "ApplicationReplaced", {})
                self.counters.ws_replaced += 1
                if name in old.apps:
                    old.apps.remove(name)
                if not old.apps:
                    asyncio.get_running_loop().create_task(old.close())
            app.client = client
            app.subscribe_all = client.subscribe_all

    def detach(self, client: WsClient) -> None:
        if client in self.clients:
            self.clients.remove(client)
        for name in client.apps:
            self.router.deactivate(name, client)

    def drop(self, app: str | None = None, mode: str = "abort") -> int:
        victims = [c for c in self.clients if app is None or app in c.apps]
        for client in victims:
            if mode == "close":
                asyncio.get_running_loop().create_task(client.close(1001))
            else:
                client.abort()
            self.detach(client)
        return len(victims)

    async def close_all(self) -> None:
        for client in list(self.clients):
            self.detach(client)
            await client.close(1001)


def _app_names(request: web.Request) -> list[str]:
    # As with every ARI list parameter, the last `app=` counts, split on commas.
    values = request.query.getall("app", [])
    names: list[str] = []
    for part in (values[-1].split(",") if values else []):
        part = part.strip()
        if part and part not in names:
            names.append(part)
    return names


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "y", "t", "on")


async def events_websocket(request: web.Request) -> web.StreamResponse:
    """`GET /ari/events?app=a,b&subscribeAll=true`, upgraded to a WebSocket (subprotocol `ari` optional)."""
    pbx: Pbx = request.app[PBX]
    sessions = pbx.sessions
    if sessions.refuse:
        sessions.counters.ws_refused += 1
        if sessions.refuse_mode == "close" and request.transport is not None:
            request.transport.abort()
        return web.Response(status=503, text="Service Unavailable")
    names = _app_names(request)
    if not names:
        # resource_events.c: an HTTP error before the upgrade.
        return web.Response(status=400, text="Missing param 'app'")
    ws = web.WebSocketResponse(protocols=("ari",), compress=False, autoping=True, max_msg_size=1 << 20)
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    client = WsClient(ws, transport, names, _truthy(request.query.get("subscribeAll")),
                      sessions.write_timeout_s)
    sessions.attach(client)
    log.info("%s: event WebSocket connected for %s%s", pbx.name, ",".join(names),
             " (subscribeAll)" if client.subscribe_all else "")
    try:
        # Asterisk ignores what the client sends on this socket (REST over WebSocket is not simulated).
        async for _ in ws:
            pass
    finally:
        sessions.detach(client)
        client.closed = True
        log.info("%s: event WebSocket for %s closed", pbx.name, ",".join(names))
    return ws
