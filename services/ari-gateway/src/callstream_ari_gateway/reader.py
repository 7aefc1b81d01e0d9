"""The WebSocket side: read every frame from the PBX and hand it to the outbox, never waiting on Kafka.

Asterisk drops a WebSocket reader that stalls past its write timeout (100 ms by default), so this loop does
nothing slow per frame: a JSON check, the envelope headers, an append. After every (re)connect it publishes
a `gateway.connected` marker naming the gap, and a resync snapshot fetched concurrently from REST.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from yarl import URL

from callstream_ari_gateway.ari_rest import AriRest, AriUnavailable
from callstream_ari_gateway.outbox import Outbox
from callstream_ari_gateway.records import RecordFactory, check_frame
from callstream_common import metrics
from callstream_common.logs import redact_url
from callstream_common.messages.ari import (
    GatewayConnected,
    GatewayDisconnected,
    GatewayEntityChanged,
    GatewaySnapshot,
)

log = logging.getLogger(__name__)
STABLE_CONNECTION_S = 10.0  # a connection that lasted this long resets the backoff


def websocket_url(ari_url: str, app: str, subscribe_all: bool) -> URL:
    base = URL(ari_url)
    scheme = "wss" if base.scheme == "https" else "ws"
    return base.with_scheme(scheme).with_path(base.path.rstrip("/") + "/events").with_query(
        {"app": app, "subscribeAll": "true" if subscribe_all else "false"})


def backoff_delay(attempt: int, minimum: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: a fleet of gateways does not reconnect in step."""
    ceiling: float = min(maximum, minimum * 2.0 ** min(attempt, 20))
    return minimum + rng.random() * (ceiling - minimum)


class EventReader:
    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        rest: AriRest,
        outbox: Outbox,
        records: RecordFactory,
        ws_url: URL,
        gateway_id: str,
        app: str,
        pbx_id: str,
        filtered_types: frozenset[str],
        ari_events_topic: str,
        reconnect_min_s: float,
        reconnect_max_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session = session
        self._rest = rest
        self._outbox = outbox
        self._records = records
        self._ws_url = ws_url
        self._gateway_id = gateway_id
        self._app = app
        self._pbx_id = pbx_id
        self._filtered = filtered_types
        self._topic = ari_events_topic
        self._min = reconnect_min_s
        self._max = reconnect_max_s
        self._clock = clock
        self._rng = random.Random()
        self._stop = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connections = 0
        self.connected = False
        self.asterisk_id: str | None = None
        self.frames = 0

    async def stop(self) -> None:
        self._stop.set()
        if self._ws is not None:
            await self._ws.close()

    async def run(self) -> None:
        attempt = 0
        last_seq_before: int | None = None
        disconnected_at: datetime | None = None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self._session_once(last_seq_before, disconnected_at)
            except (AriUnavailable, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.warning("PBX %s unreachable at %s: %s", self._pbx_id, redact_url(str(self._ws_url)),
                            exc.__class__.__name__)
            if self._ws is not None:
                # A connection that had opened: the gap starts here.
                last_seq_before = self._records.last_seq
                disconnected_at = self._clock()
                self._ws = None
            if self._stop.is_set():
                break
            attempt = 0 if time.monotonic() - started > STABLE_CONNECTION_S else attempt + 1
            await self._sleep(backoff_delay(attempt, self._min, self._max, self._rng))

    async def _session_once(self, last_seq_before: int | None, disconnected_at: datetime | None) -> None:
        asterisk_id, version = await self._rest.entity()
        # The session carries the Authorization header: credentials never go into the URL (or a log line).
        ws = await self._session.ws_connect(self._ws_url, heartbeat=20.0, max_msg_size=0, autoping=True)
        self._ws = ws
        self.connections += 1
        if self.connections > 1:
            metrics.ARI_RECONNECTS.labels("ari-gateway", self._pbx_id).inc()
        if self.asterisk_id is not None and asterisk_id != self.asterisk_id:
            log.warning("PBX %s was replaced: entity id %s -> %s", self._pbx_id, self.asterisk_id, asterisk_id)
            self._outbox.put(self._records.message(GatewayEntityChanged(
                gateway_id=self._gateway_id, previous_asterisk_id=self.asterisk_id, asterisk_id=asterisk_id)))
        self.asterisk_id = asterisk_id
        self._outbox.put(self._records.message(GatewayConnected(
            gateway_id=self._gateway_id, asterisk_id=asterisk_id, asterisk_version=version, application=self._app,
            connection=self.connections, last_seq_before=last_seq_before, disconnected_at=disconnected_at)))
        self.connected = True
        metrics.GATEWAY_CONNECTED.labels(self._pbx_id).set(1)
        log.info("connected to PBX %s (%s) at %s", self._pbx_id, asterisk_id, redact_url(str(self._ws_url)))
        snapshot = asyncio.create_task(self._snapshot(asterisk_id, self.connections))
        reason = "closed"
        try:
            reason = await self._read(ws)
        finally:
            self.connected = False
            metrics.GATEWAY_CONNECTED.labels(self._pbx_id).set(0)
            if not snapshot.done():
                snapshot.cancel()
            await asyncio.gather(snapshot, return_exceptions=True)
            self._outbox.put(self._records.message(GatewayDisconnected(
                gateway_id=self._gateway_id, asterisk_id=asterisk_id, last_seq=self._records.last_seq,
                reason=reason)))
            await ws.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        put = self._outbox.put
        records = self._records
        counters: dict[str, Any] = {}  # per event type; .labels() per frame would cost a lock and a lookup
        async for frame in ws:
            received_at = self._clock()
            if frame.type == aiohttp.WSMsgType.TEXT:
                raw = frame.data.encode()  # exact: the frame was UTF-8, and decoding/encoding round-trips
            elif frame.type == aiohttp.WSMsgType.BINARY:
                raw = frame.data
            else:
                return f"websocket {frame.type.name.lower()}"
            self.frames += 1
            kind = check_frame(raw)
            if kind is None:
                log.warning("malformed frame from PBX %s dead-lettered (%d bytes)", self._pbx_id, len(raw))
                put(records.dead_frame(raw, "malformed ARI frame: not a JSON object with a string type",
                                       self._topic))
                continue
            counter = counters.get(kind)
            if counter is None:
                counter = counters[kind] = metrics.GATEWAY_EVENTS_IN.labels(self._pbx_id, kind)
            counter.inc()
            if kind in self._filtered:
                continue
            put(records.ari_event(raw, received_at, kind))
        return f"websocket closed ({ws.close_code})"

    async def _snapshot(self, asterisk_id: str, connection: int) -> None:
        try:
            if self._filtered:
                if not await self._rest.set_event_filter(self._app, sorted(self._filtered)):
                    log.info("PBX %s has no eventFilter: filtering %s here", self._pbx_id, sorted(self._filtered))
            channels, bridges, endpoints, application = await self._rest.snapshot(self._app.split(",")[0])
        except AriUnavailable as exc:
            log.warning("resync snapshot of PBX %s failed: %s", self._pbx_id, exc)
            return
        self._outbox.put(self._records.message(GatewaySnapshot(
            gateway_id=self._gateway_id, asterisk_id=asterisk_id, connection=connection, taken_at=self._clock(),
            channels=channels, bridges=bridges, endpoints=endpoints, application=application)))

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
