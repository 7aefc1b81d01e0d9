"""Stasis bridges: create, add and remove channels, destroy.

- Bridges created over REST give no BridgeCreated; an app is subscribed to a bridge once one of its channels
  enters, and stays subscribed until the bridge is destroyed (it then gets BridgeDestroyed).
- In a mixing bridge every member gets BRIDGEPEER / BRIDGEPVTCALLID, and in a two-party bridge the
  connected line is exchanged (ChannelConnectedLine for a member whose connected party changed).
- A channel leaving while others stay has its BRIDGEPEER cleared first (NOTES.md §b1.7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import AriError
from .model import Bridge, Channel

if TYPE_CHECKING:
    from .pbx import Pbx

BRIDGE_TYPES = ("mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single", "sdp_label")


class Bridging:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.ev = pbx.events

    def create(self, bridge_id: str | None, type_param: str | None, name: str | None) -> Bridge:
        pbx = self.pbx
        if bridge_id is not None and bridge_id in pbx.bridges:
            raise AriError(409, f"Bridge with id '{bridge_id}' already exists")
        types = [t.strip() for t in (type_param or "mixing").split(",") if t.strip()]
        mixing = "mixing" in types
        holding = "holding" in types
        # stasis_app_bridge_create(): an unknown type, no capability, or holding+mixing is refused.
        if any(t not in BRIDGE_TYPES for t in types) or mixing == holding:
            raise AriError(500, f"Unable to create bridge. Possible duplicate bridge id '{bridge_id or ''}'")
        bid = bridge_id or self._uuid()
        bridge = Bridge(id=bid, name=name or "", bridge_type="holding" if holding else "mixing", types=types,
                        creationtime=pbx.clock.timestamp())
        pbx.bridges[bid] = bridge
        # Asterisk publishes BridgeCreated on the bridge topic, where no app is subscribed yet:
        # only subscribeAll apps receive it.
        self.ev.bridge_created(bridge)
        return bridge

    def _uuid(self) -> str:
        h = self.pbx.random_hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    # --- membership -----------------------------------------------------------------------------------

    def add(self, bridge: Bridge, channels: list[Channel], role: str | None = None) -> None:
        for ch in channels:
            if ch.recording is not None:
                raise AriError(409, f"Channel {ch.id} currently recording")
        for ch in channels:
            ch.role = role or ""
            if ch.bridge_id == bridge.id:
                continue
            if ch.bridge_id is not None:
                self.leave(ch)
            bridge.channels.append(ch.id)
            ch.bridge_id = bridge.id
            ch.in_dial_bridge = False
            app = ch.stasis_app
            if app is not None and app not in bridge.subscribed:
                bridge.subscribed.append(app)
                self.pbx.router.sub_bridge(app, bridge.id, +1)
            self.ev.channel_entered_bridge(bridge, ch)
        self._update_peers(bridge)
        self.pbx.world.on_bridge_change(bridge)

    def leave(self, ch: Channel, varset: bool = True) -> None:
        bridge = self.pbx.bridges.get(ch.bridge_id or "")
        if bridge is None:
            ch.bridge_id = None
            return
        others = [c for c in bridge.channels if c != ch.id]
        if varset and others and bridge.bridge_type == "mixing" and ch.variables.get("BRIDGEPEER"):
            self.pbx.lifecycle.set_var(ch, "BRIDGEPEER", "")
        if ch.id in bridge.channels:
            bridge.channels.remove(ch.id)
        ch.bridge_id = None
        self.ev.channel_left_bridge(bridge, ch)
        self.pbx.world.on_bridge_change(bridge)

    def remove(self, bridge: Bridge, channels: list[Channel]) -> None:
        for ch in channels:
            if ch.bridge_id != bridge.id:
                raise AriError(422, "Channel not in this bridge")
        for ch in channels:
            self.leave(ch)

    def destroy(self, bridge: Bridge) -> None:
        pbx = self.pbx
        pbx.media.on_bridge_gone(bridge)
        for cid in list(bridge.channels):
            ch = pbx.channels.get(cid)
            if ch is not None:
                self.leave(ch, varset=False)
            elif cid in bridge.channels:
                bridge.channels.remove(cid)
        self.ev.bridge_destroyed(bridge)
        pbx.bridges.pop(bridge.id, None)
        pbx.router.forget_bridge(bridge.id)

    def _update_peers(self, bridge: Bridge) -> None:
        if bridge.bridge_type != "mixing":
            return
        pbx = self.pbx
        members = [pbx.channels[c] for c in bridge.channels if c in pbx.channels]
        if len(members) < 2:
            return
        for ch in members:
            others = [o for o in members if o is not ch]
            peer = ",".join(o.name for o in others)
            if ch.variables.get("BRIDGEPEER") != peer:
                pbx.lifecycle.set_var(ch, "BRIDGEPEER", peer)
            if len(others) == 1 and others[0].protocol_id and \
                    ch.variables.get("BRIDGEPVTCALLID") != others[0].protocol_id:
                pbx.lifecycle.set_var(ch, "BRIDGEPVTCALLID", others[0].protocol_id)
        if len(members) == 2:
            a, b = members
            for me, other in ((a, b), (b, a)):
                if me.tech != "PJSIP" or other.tech != "PJSIP":
                    continue
                if (me.connected_name, me.connected_number) != (other.caller_name, other.caller_number):
                    me.connected_name, me.connected_number = other.caller_name, other.caller_number
                    self.ev.channel_connected_line(me)
