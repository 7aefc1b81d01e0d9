"""Stasis applications and event routing: who receives which event.

Asterisk's rules (res/stasis/app.c, res_stasis.c), as the simulator applies them:
- an app receives an event if it is subscribed to one of the event's sources: a channel (while the channel is
  in its Stasis app, and from creation for channels it originated with `app=`), a bridge (once one of its
  channels entered it, until the bridge is destroyed), an endpoint or a device state (explicit subscription),
  or anything at all with `subscribeAll`;
- StasisStart, StasisEnd, ApplicationReplaced and ApplicationMoveFailed go to one app directly;
- an app whose WebSocket is gone is inactive: its events are dropped, not buffered;
- subscriptions are reference counted, like Asterisk's forwards.
Each event is serialised once; the per-app `application` field is spliced in as bytes.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .clock import SimClock


class EventSink(Protocol):
    """A WebSocket client as the router sees it."""

    def send(self, payload: bytes) -> None: ...


@dataclass
class Counters:
    events_total: int = 0
    events_by_type: collections.Counter[str] = field(default_factory=collections.Counter)
    events_lost: int = 0
    ws_connects: int = 0
    ws_replaced: int = 0
    ws_refused: int = 0
    calls_injected: int = 0
    calls_generated: int = 0
    stasis_failed: int = 0


class App:
    def __init__(self, name: str) -> None:
        self.name = name
        self.name_json = orjson.dumps(name)
        self.client: EventSink | None = None
        self.subscribe_all = False
        self.channels: dict[str, int] = {}
        self.bridges: dict[str, int] = {}
        self.endpoints: dict[str, int] = {}
        self.devices: dict[str, int] = {}
        self.allowed: list[dict[str, Any]] = []
        self.disallowed: list[dict[str, Any]] = []
        self._allowed_types: frozenset[str] = frozenset()
        self._disallowed_types: frozenset[str] = frozenset()

    @property
    def active(self) -> bool:
        return self.client is not None

    def has_subscriptions(self) -> bool:
        return bool(self.channels or self.bridges or self.endpoints or self.devices)

    def set_filter(self, allowed: list[dict[str, Any]], disallowed: list[dict[str, Any]]) -> None:
        self.allowed, self.disallowed = allowed, disallowed
        self._allowed_types = frozenset(str(f.get("type")) for f in allowed)
        self._disallowed_types = frozenset(str(f.get("type")) for f in disallowed)

    def allows(self, etype: str) -> bool:
        # app.c app_event_filter_matched: filters match on the event type.
        if self._allowed_types and etype not in self._allowed_types:
            return False
        return etype not in self._disallowed_types

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channel_ids": list(self.channels),
            "bridge_ids": list(self.bridges),
            "endpoint_ids": list(self.endpoints),
            "device_names": list(self.devices),
            "events_allowed": list(self.allowed),
            "events_disallowed": list(self.disallowed),
        }


def _ref(table: dict[str, int], key: str, delta: int) -> None:
    n = table.get(key, 0) + delta
    if n > 0:
        table[key] = n
    else:
        table.pop(key, None)


class Router:
    """The app registry of one PBX and its event fan-out."""

    def __init__(self, clock: SimClock, entity_id: str, counters: Counters) -> None:
        self.clock = clock
        self.entity_id = entity_id
        self.counters = counters
        self.apps: dict[str, App] = {}

    # --- registry -------------------------------------------------------------------------------------

    def get(self, name: str) -> App | None:
        return self.apps.get(name)

    def ensure(self, name: str) -> App:
        app = self.apps.get(name)
        if app is None:
            app = self.apps[name] = App(name)
        return app

    def is_active(self, name: str) -> bool:
        app = self.apps.get(name)
        return app is not None and app.active

    def listed(self) -> list[App]:
        """Apps Asterisk still knows: active ones and inactive ones that keep subscriptions."""
        return [a for a in self.apps.values() if a.active or a.has_subscriptions()]

    def deactivate(self, name: str, client: EventSink) -> None:
        app = self.apps.get(name)
        if app is None or app.client is not client:
            return
        app.client = None
        app.subscribe_all = False
        if not app.has_subscriptions():
            del self.apps[name]

    # --- subscriptions --------------------------------------------------------------------------------

    def sub_channel(self, app_name: str | None, channel_id: str, delta: int = 1) -> None:
        if app_name is None:
            return
        app = self.apps.get(app_name)
        if app is not None:
            _ref(app.channels, channel_id, delta)

    def sub_bridge(self, app_name: str, bridge_id: str, delta: int = 1) -> None:
        app = self.apps.get(app_name)
        if app is not None:
            _ref(app.bridges, bridge_id, delta)

    def sub_endpoint(self, app_name: str, key: str, delta: int = 1) -> None:
        app = self.apps.get(app_name)
        if app is not None:
            _ref(app.endpoints, key, delta)

    def sub_device(self, app_name: str, name: str, delta: int = 1) -> None:
        app = self.apps.get(app_name)
        if app is not None:
            _ref(app.devices, name, delta)

    def forget_channel(self, channel_id: str) -> None:
        """The channel is gone: Asterisk drops every forward to its topic."""
        for app in list(self.apps.values()):
            app.channels.pop(channel_id, None)
        self._collect()

    def forget_bridge(self, bridge_id: str) -> None:
        for app in list(self.apps.values()):
            app.bridges.pop(bridge_id, None)
        self._collect()

    def _collect(self) -> None:
        for name in [n for n, a in self.apps.items() if not a.active and not a.has_subscriptions()]:
            del self.apps[name]

    # --- publishing -----------------------------------------------------------------------------------

    def publish(
        self,
        etype: str,
        fields: dict[str, Any],
        *,
        channels: Iterable[str] = (),
        bridges: Iterable[str] = (),
        endpoint: tuple[str, str] | None = None,
        device: str | None = None,
        app: str | None = None,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        """`on_written` runs once the event's frame has been written to a WebSocket (never if it is dropped)."""
        if app is not None:
            target = self.apps.get(app)
            targets = [target] if target is not None else []
        else:
            targets = self._targets(tuple(channels), tuple(bridges), endpoint, device)
        if not targets:
            return
        message = {"type": etype, "timestamp": self.clock.timestamp(), **fields, "asterisk_id": self.entity_id}
        head = orjson.dumps(message)[:-1] + b',"application":'
        for target in targets:
            self._deliver(target, etype, head, on_written)

    def send_direct(self, client: EventSink, app_name: str, etype: str, fields: dict[str, Any]) -> None:
        """To one WebSocket regardless of the registry (ApplicationReplaced goes to the replaced socket)."""
        message = {"type": etype, "timestamp": self.clock.timestamp(), **fields,
                   "asterisk_id": self.entity_id, "application": app_name}
        client.send(orjson.dumps(message))
        self.counters.events_total += 1
        self.counters.events_by_type[etype] += 1

    def _deliver(self, app: App, etype: str, head: bytes, on_written: Callable[[], None] | None = None) -> None:
        client = app.client
        if client is None:
            self.counters.events_lost += 1
            return
        if not app.allows(etype):
            return
        client.send(head + app.name_json + b"}")
        self.counters.events_total += 1
        self.counters.events_by_type[etype] += 1
        if on_written is not None:
            # WebSocket clients call it back after the write; any other sink has taken the event already.
            when_written = getattr(client, "when_written", None)
            if when_written is None:
                on_written()
            else:
                when_written(on_written)

    def _targets(
        self,
        channels: tuple[str, ...],
        bridges: tuple[str, ...],
        endpoint: tuple[str, str] | None,
        device: str | None,
    ) -> list[App]:
        out = []
        for app in self.apps.values():
            if app.subscribe_all:
                out.append(app)
                continue
            if any(c in app.channels for c in channels) or any(b in app.bridges for b in bridges):
                out.append(app)
            elif endpoint is not None and (f"{endpoint[0]}/{endpoint[1]}" in app.endpoints
                                           or endpoint[0] in app.endpoints):
                out.append(app)
            elif device is not None and device in app.devices:
                out.append(app)
        return out
