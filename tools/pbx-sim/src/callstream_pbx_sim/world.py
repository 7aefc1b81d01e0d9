"""The simulated world around the PBX: SIP phones (agents, supervisors), the carrier trunk, and the far
ends of calls (callers' patience and talk time, phones hanging up, DTMF, hold).

Far-end rules of an inbound call (a caller on a DID):
- until the caller shares a mixing bridge with another party, the caller's patience runs: when it expires the
  caller hangs up (an abandon);
- once bridged, the talk time runs: when it expires the caller hangs up, or the agent's phone does
  (`hangup_by: agent`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import PhoneBehaviour, PhoneGroup
from .model import Bridge, Channel, Endpoint

if TYPE_CHECKING:
    from .pbx import Pbx


class World:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.ev = pbx.events
        self._device_state: dict[str, str] = {}

    # --- endpoints ------------------------------------------------------------------------------------

    def build_endpoints(self) -> None:
        cfg = self.pbx.cfg
        self._add_group(cfg.agents, "agent", 10)
        self._add_group(cfg.supervisors, "supervisor", 20)
        trunk = Endpoint(tech="PJSIP", resource=cfg.trunk, kind="trunk", context="from-trunk",
                         behaviour=PhoneBehaviour(), address="198.51.100.10")
        self.pbx.endpoints[trunk.key] = trunk
        for ep in self.pbx.endpoints.values():
            self._device_state[ep.key] = self.device_state(ep)

    def _add_group(self, group: PhoneGroup, kind: str, net: int) -> None:
        for i in range(group.count):
            if group.naming == "extension":
                resource = str(group.first_extension + i)
            else:
                resource = f"{self.pbx.name}-{kind}-{i + 1:04d}"
            ep = Endpoint(tech="PJSIP", resource=resource, kind=kind, context=group.context,
                          behaviour=group.behaviour, registered=group.behaviour.registered,
                          address=f"10.{net}.{(i // 250) % 256}.{i % 250 + 2}")
            self.pbx.endpoints[ep.key] = ep

    def trunk(self) -> Endpoint:
        ep = self.pbx.endpoints.get(f"PJSIP/{self.pbx.cfg.trunk}")
        assert ep is not None
        return ep

    def endpoint_of(self, ch: Channel) -> Endpoint | None:
        if ch.tech != "PJSIP":
            return None
        return self.pbx.endpoints.get(f"PJSIP/{ch.resource}")

    def set_behaviour(self, ep: Endpoint, patch: dict[str, Any]) -> None:
        """Apply a partial behaviour; a change of `registered` emits the registration events."""
        merged = ep.behaviour.model_dump()
        merged.update(patch)
        ep.behaviour = PhoneBehaviour.model_validate(merged)
        if ep.behaviour.registered != ep.registered:
            self.set_registered(ep, ep.behaviour.registered)

    def set_registered(self, ep: Endpoint, registered: bool) -> None:
        """A phone registers or its registration drops (expiry, unplugged): what res_pjsip publishes."""
        if ep.registered == registered:
            return
        ep.registered = registered
        self.ev.contact_status_change(ep)
        self.ev.peer_status_change(ep)
        self.ev.endpoint_state_change(ep)
        self._publish_device(ep)

    def device_state(self, ep: Endpoint) -> str:
        if not ep.registered:
            return "UNAVAILABLE"
        ringing = in_use = held = False
        for cid in ep.channel_ids:
            ch = self.pbx.channels.get(cid)
            if ch is None:
                continue
            if ch.state == "Up":
                in_use = True
                held = held or ch.held
            elif ch.state in ("Ringing", "Ring") and ch.kind != "inbound":
                ringing = True
        if ringing and in_use:
            return "RINGINUSE"
        if ringing:
            return "RINGING"
        if held:
            return "ONHOLD"
        if in_use:
            return "INUSE"
        return "NOT_INUSE"

    def device_update(self, ch: Channel) -> None:
        ep = self.endpoint_of(ch)
        if ep is not None and ep.kind != "trunk":
            self._publish_device(ep)

    def _publish_device(self, ep: Endpoint) -> None:
        state = self.device_state(ep)
        if self._device_state.get(ep.key) != state:
            self._device_state[ep.key] = state
            self.ev.device_state_changed(ep.key, state)

    def known_device_state(self, name: str) -> str | None:
        return self._device_state.get(name)

    # --- inbound calls --------------------------------------------------------------------------------

    def inbound_call(
        self,
        *,
        did: str,
        caller_number: str,
        caller_name: str,
        app: str,
        args: list[str],
        patience_s: float | None,
        talk_s: float | None,
        hangup_by: str,
    ) -> tuple[Channel, bool]:
        """A call from the carrier to a DID, entering `exten => _X.,1,Stasis(app,args...)`."""
        pbx = self.pbx
        trunk = self.trunk()
        ch = pbx.lifecycle.new_channel(
            tech="PJSIP", resource=trunk.resource, kind="inbound", state="Ring", context=trunk.context,
            exten=did, priority=1, caller=(caller_name, caller_number),
            protocol_id=f"{pbx.random_hex(32)}@{trunk.address}:5060", endpoint=trunk,
        )
        ch.did = did
        ch.far.update(patience=patience_s, talk=talk_s, hangup_by=hangup_by, waiting=True)
        ch.app_name, ch.app_data = "Stasis", ",".join([app, *args])
        self.ev.channel_dialplan(ch)
        if not pbx.lifecycle.enter_stasis(ch, app, args):
            # Stasis() failed; the dialplan goes on to its end and the call is hung up.
            pbx.lifecycle.hangup(ch, 16, "internal")
            return ch, False
        if patience_s is not None:
            ch.timers["patience"] = pbx.clock.call_later(patience_s, self._abandon, ch)
        return ch, True

    def _abandon(self, ch: Channel) -> None:
        ch.timers.pop("patience", None)
        self.far_hangup(ch, 16)

    def on_bridge_change(self, bridge: Bridge) -> None:
        """Start the talk time of callers that now share a mixing bridge with another party."""
        if bridge.bridge_type != "mixing" or len(bridge.channels) < 2:
            return
        pbx = self.pbx
        for cid in bridge.channels:
            ch = pbx.channels.get(cid)
            if ch is None or ch.kind != "inbound" or not ch.far.get("waiting"):
                continue
            peers = [pbx.channels[o] for o in bridge.channels if o != cid and o in pbx.channels]
            if not any(p.kind != "snoop" for p in peers):
                continue
            ch.far["waiting"] = False
            ch.cancel_timers("patience")
            talk = ch.far.get("talk")
            if talk is not None:
                ch.timers["talk"] = pbx.clock.call_later(talk, self._talk_over, ch)

    def _talk_over(self, ch: Channel) -> None:
        ch.timers.pop("talk", None)
        if ch.far.get("hangup_by") == "agent" and ch.bridge_id is not None:
            bridge = self.pbx.bridges.get(ch.bridge_id)
            if bridge is not None:
                for cid in bridge.channels:
                    other = self.pbx.channels.get(cid)
                    if other is not None and other is not ch and other.tech == "PJSIP":
                        self.far_hangup(other, 16)
                        return
        self.far_hangup(ch, 16)

    def on_channel_destroyed(self, ch: Channel) -> None:
        self.pbx.dialer.on_destroyed(ch)
        self.pbx.transfers.on_destroyed(ch)

    # --- far-end actions (also driven by the control API) ---------------------------------------------

    def far_hangup(self, ch: Channel, cause: int = 16) -> None:
        """The far end sends BYE (or CANCEL / a final failure while still ringing)."""
        if ch.dying:
            return
        if ch.dialing:
            self.pbx.dialer.fail(ch, cause)
            return
        self.pbx.lifecycle.hangup(ch, cause, "far")

    def dtmf(self, ch: Channel, digits: str, duration_ms: int, between_ms: int) -> None:
        """The far end presses keys. ChannelDtmfReceived is sent as each digit ends; the request marks the
        end of the first digit, the next ones follow every duration + gap."""
        step = (duration_ms + between_ms) / 1000.0
        for i, digit in enumerate(digits):
            if i == 0:
                self._digit(ch, digit, duration_ms)
            else:
                self.pbx.clock.call_later(i * step, self._digit, ch, digit, duration_ms)

    def _digit(self, ch: Channel, digit: str, duration_ms: int) -> None:
        if ch.dying or ch.id not in self.pbx.channels:
            return
        self.ev.channel_dtmf(ch, digit, duration_ms)
        self.pbx.media.on_dtmf(ch, digit)

    def hold(self, ch: Channel, musicclass: str | None) -> None:
        ch.held = True
        self.ev.channel_hold(ch, musicclass)
        self.device_update(ch)

    def unhold(self, ch: Channel) -> None:
        ch.held = False
        self.ev.channel_unhold(ch)
        self.device_update(ch)

    def talk(self, ch: Channel, after_s: float, duration_s: float) -> None:
        """Speech on the far end; visible only when the app set TALK_DETECT(set) on the channel."""
        clock = self.pbx.clock
        ch.timers["talk_start"] = clock.call_later(after_s, self._talking, ch, True, duration_s)
        ch.timers["talk_stop"] = clock.call_later(after_s + duration_s, self._talking, ch, False, duration_s)

    def _talking(self, ch: Channel, start: bool, duration_s: float) -> None:
        if ch.dying or not ch.talk_detect:
            return
        if start:
            self.ev.talking_started(ch)
        else:
            self.ev.talking_finished(ch, int(duration_s * 1000))
