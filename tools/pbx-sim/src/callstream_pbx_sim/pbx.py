"""One simulated PBX: its state, clock, random streams and the services that change the state.

The services each own one concern and reach the others through this object:
`lifecycle` (channels, Stasis membership, hang-up), `bridging`, `dialer` (originate, create, dial, outcomes),
`media` (playbacks, recordings), `world` (phones, callers' far ends, endpoint registration), `transfers`
(REFERs from phones) and `traffic` (the inbound call generator).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import deque
from typing import Any

from .clock import SimClock
from .config import PbxConfig, SiteConfig
from .errors import AriError
from .events import Events
from .model import Bridge, Channel, Endpoint, LiveRecording, Playback, StoredRecording
from .stasis import Counters, Router
from .ws import Sessions

log = logging.getLogger(__name__)

# Asterisk's AST_MAX_PUBLIC_UNIQUEID.
MAX_ID_LEN = 149


class RequestLog:
    """The ARI requests this PBX received, for tests measuring command latency at the PBX."""

    def __init__(self, size: int) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=size or None)
        self._seq = itertools.count(1)
        self.total = 0

    def add(self, entry: dict[str, Any]) -> None:
        entry["seq"] = next(self._seq)
        self.total += 1
        if self._items.maxlen != 0:
            self._items.append(entry)

    def since(self, seq: int, limit: int) -> list[dict[str, Any]]:
        out = [e for e in self._items if e["seq"] > seq]
        return out[:limit]


class StasisStartLog:
    """When each StasisStart left the simulator: the wall-clock time its frame was written to the app's
    WebSocket transport (not when it was queued), for benchmarks measuring latency from the PBX's side. The
    same clock as RequestLog's `time`, so an originate's arrival minus a StasisStart's `time` is a latency."""

    def __init__(self, size: int) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=size or None)
        self._seq = itertools.count(1)
        self.total = 0

    def written(self, channel_id: str, app: str, args: list[str]) -> None:
        entry = {"seq": next(self._seq), "channel_id": channel_id, "app": app, "args": list(args),
                 "time": time.time()}
        self.total += 1
        if self._items.maxlen != 0:
            self._items.append(entry)

    def since(self, seq: int, limit: int) -> list[dict[str, Any]]:
        out = [e for e in self._items if e["seq"] > seq]
        return out[:limit]


class Pbx:
    def __init__(self, site: SiteConfig, cfg: PbxConfig, loop: asyncio.AbstractEventLoop) -> None:
        # Imported here: the services import Pbx for typing only, this keeps module loading acyclic.
        from .bridging import Bridging
        from .dialing import Dialer
        from .lifecycle import Lifecycle
        from .media import Media
        from .traffic import Traffic
        from .transfers import Transfers
        from .world import World

        assert cfg.entity_id is not None and cfg.app is not None
        self.site = site
        self.cfg = cfg
        self.name = cfg.name
        self.entity_id: str = cfg.entity_id
        self.default_app: str = cfg.app
        self.clock = SimClock(loop, site.time_scale, site.epoch)
        seed = cfg.seed if cfg.seed is not None else site.seed
        # Separate streams, so that e.g. an injected call does not shift the traffic generator's arrivals.
        self.rng_traffic = random.Random(f"{seed}:{cfg.name}:traffic")
        self.rng_calls = random.Random(f"{seed}:{cfg.name}:calls")
        self.rng_ids = random.Random(f"{seed}:{cfg.name}:ids")
        self.counters = Counters()
        self.router = Router(self.clock, self.entity_id, self.counters)
        self.stasis_starts = StasisStartLog(site.request_log_size)
        self.events = Events(self.router, tuple(site.channelvars), self.stasis_starts)
        self.sessions = Sessions(self.router, self.counters, site.ws_write_timeout_ms / 1000.0)
        self.requests = RequestLog(site.request_log_size)
        self.started_wall = time.time()

        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.playbacks: dict[str, Playback] = {}
        self.live_recordings: dict[str, LiveRecording] = {}
        self.stored_recordings: dict[str, StoredRecording] = {}
        self.device_states: dict[str, str] = {}
        self.global_vars: dict[str, str] = {}

        self._uniqueid = itertools.count(1)
        self._chan_idx: dict[str, itertools.count[int]] = {}

        self.lifecycle = Lifecycle(self)
        self.bridging = Bridging(self)
        self.dialer = Dialer(self)
        self.media = Media(self)
        self.world = World(self)
        self.traffic = Traffic(self)
        self.transfers = Transfers(self)
        self.world.build_endpoints()

    # --- identities -----------------------------------------------------------------------------------

    def new_uniqueid(self) -> str:
        """`<epoch>.<n>` like Asterisk's uniqueid (epoch of the simulated creation time)."""
        return f"{int(self.clock.epoch_now())}.{next(self._uniqueid)}"

    def next_index(self, tech: str) -> int:
        counter = self._chan_idx.get(tech)
        if counter is None:
            counter = self._chan_idx[tech] = itertools.count()
        return next(counter)

    def random_hex(self, n: int) -> str:
        return "".join(self.rng_ids.choice("0123456789abcdef") for _ in range(n))

    def call_id(self) -> str:
        h = self.random_hex(32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def id_in_use(self, channel_id: str) -> bool:
        return channel_id in self.channels

    def check_id(self, value: str | None) -> None:
        if value is not None and len(value) > MAX_ID_LEN:
            raise AriError(400, f"Uniqueid length exceeds maximum of {MAX_ID_LEN}")

    # --- lookups with Asterisk's errors ---------------------------------------------------------------

    def channel(self, channel_id: str) -> Channel | None:
        return self.channels.get(channel_id)

    def control(self, channel_id: str) -> Channel:
        """resource_channels.c find_control(): 404 unknown, 409 not in a Stasis application."""
        ch = self.channels.get(channel_id)
        if ch is None:
            raise AriError(404, "Channel not found")
        if ch.stasis_app is None:
            raise AriError(409, "Channel not in Stasis application")
        return ch

    @staticmethod
    def check_state(ch: Channel) -> None:
        """channel_state_invalid(): unanswered outbound channels cannot be manipulated (412)."""
        if ch.state in ("Down", "Rsrved", "Ringing"):
            raise AriError(412, "Channel in invalid state")

    def stasis_bridge(self, bridge_id: str) -> Bridge:
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            raise AriError(404, "Bridge not found")
        return bridge

    def endpoint(self, tech: str, resource: str) -> Endpoint | None:
        for ep in self.endpoints.values():
            if ep.tech.lower() == tech.lower() and ep.resource == resource:
                return ep
        return None

    # --- running ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self.traffic.start()

    async def stop(self) -> None:
        self.traffic.stop()
        await self.sessions.close_all()
        self.clock.close()

    def counters_json(self) -> dict[str, Any]:
        c = self.counters
        return {
            "pbx": self.name,
            "entity_id": self.entity_id,
            "sim_time_s": round(self.clock.now(), 3),
            "events_total": c.events_total,
            "events_by_type": dict(sorted(c.events_by_type.items())),
            "events_lost": c.events_lost,
            "ws_clients": len(self.sessions.clients),
            "ws_connects": c.ws_connects,
            "ws_replaced": c.ws_replaced,
            "ws_refused": c.ws_refused,
            "channels": len(self.channels),
            "bridges": len(self.bridges),
            "playbacks": len(self.playbacks),
            "live_recordings": len(self.live_recordings),
            "stored_recordings": len(self.stored_recordings),
            "requests": self.requests.total,
            "stasis_starts_written": self.stasis_starts.total,
            "calls_injected": c.calls_injected,
            "calls_generated": c.calls_generated,
            "stasis_failed": c.stasis_failed,
        }
