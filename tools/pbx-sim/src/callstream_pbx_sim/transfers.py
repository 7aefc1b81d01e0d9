"""Transfers a phone performs itself (SIP REFER), with PJSIP's default transfer handling: Asterisk carries
them out and tells the app (NOTES.md §b3.i, §b4.i). Transfers an app drives over ARI need nothing here:
they are plain bridge and channel operations.

Blind (REFER to an extension), transferer A bridged with C in M:
  BridgeBlindTransfer{channel A, transferee C, replace_channel L;1, exten, context, bridge M}
  -> StasisStart(L;1, replace_channel A) -> ChannelLeftBridge(M, A) -> ChannelEnteredBridge(M, L;1)
  -> StasisEnd(A) -> A hangs up -> StasisStart(L;2) for the dialplan `Stasis(<app>,transfer,<exten>)`.
Attended (REFER with Replaces), A in M with C, A2 in M2 with D; the two Stasis bridges are linked by a
Local pair (destination_type "link"), each half taking the place of one of the transferer's legs.
A Local pair lives and dies together: hanging up one half hangs up the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import AriError
from .model import Bridge, Channel

if TYPE_CHECKING:
    from .pbx import Pbx


class Transfers:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.ev = pbx.events

    def _local_pair(self, exten: str, context: str) -> tuple[Channel, Channel]:
        pbx = self.pbx
        base = f"Local/{exten}@{context}-{pbx.next_index('Local'):08x}"
        halves = []
        for suffix in (";1", ";2"):
            halves.append(pbx.lifecycle.new_channel(
                tech="Local", resource=f"{exten}@{context}", kind="local", state="Up", context=context,
                exten=exten, name=base + suffix,
            ))
        one, two = halves
        one.far["local_peer"], two.far["local_peer"] = two.id, one.id
        return one, two

    def _bridged(self, ch: Channel) -> tuple[Bridge, Channel | None]:
        bridge = self.pbx.bridges.get(ch.bridge_id or "")
        if bridge is None or ch.stasis_app is None:
            raise AriError(409, "Channel is not in a Stasis bridge")
        other = next((self.pbx.channels[c] for c in bridge.channels if c != ch.id and c in self.pbx.channels), None)
        return bridge, other

    def _swap(self, old: Channel, new: Channel, bridge: Bridge) -> None:
        """The Local half takes `old`'s place in the bridge and in the app; `old` then hangs up."""
        pbx = self.pbx
        app = old.stasis_app
        assert app is not None
        pbx.lifecycle.enter_stasis(new, app, [], via_dialplan=False, replace=old)
        pbx.bridging.leave(old, varset=False)
        pbx.bridging.add(bridge, [new])
        pbx.lifecycle.leave_stasis(old)
        old.timers["refer_bye"] = pbx.clock.call_later(0.1, pbx.world.far_hangup, old, 16)

    def blind(self, transferer: Channel, exten: str, context: str, app: str | None) -> dict[str, Any]:
        bridge, transferee = self._bridged(transferer)
        one, two = self._local_pair(exten, context)
        self.ev.bridge_blind_transfer(transferer, transferee, one, exten, context, bridge)
        self._swap(transferer, one, bridge)
        target_app = app or transferer.stasis_app or self.pbx.default_app
        self.pbx.clock.call_soon(self._dialplan, two, target_app, ["transfer", exten])
        return {"local_one": one.id, "local_two": two.id}

    def _dialplan(self, ch: Channel, app: str, args: list[str]) -> None:
        if ch.dying:
            return
        ch.app_name, ch.app_data = "Stasis", ",".join([app, *args])
        self.ev.channel_dialplan(ch)
        if not self.pbx.lifecycle.enter_stasis(ch, app, args):
            self.pbx.lifecycle.hangup(ch, 16, "internal")

    def attended(self, first: Channel, second: Channel) -> dict[str, Any]:
        bridge1, transferee = self._bridged(first)
        bridge2, target = self._bridged(second)
        if bridge1 is bridge2:
            raise AriError(409, "Both legs are in the same bridge")
        one, two = self._local_pair("_attended", "transfer")
        snap = self.ev.snap
        fields: dict[str, Any] = {"transferer_first_leg": snap(first), "transferer_second_leg": snap(second)}
        if transferee is not None:
            fields["transferee"] = snap(transferee)
        if target is not None:
            fields["transfer_target"] = snap(target)
        fields.update(
            result="Success", is_external=True, transferer_first_leg_bridge=bridge1.snapshot(),
            transferer_second_leg_bridge=bridge2.snapshot(), destination_type="link",
            destination_link_first_leg=snap(one), destination_link_second_leg=snap(two),
        )
        self.ev.bridge_attended_transfer(fields, [first.id, second.id], [bridge1.id, bridge2.id])
        self._swap(first, one, bridge1)
        self._swap(second, two, bridge2)
        return {"local_one": one.id, "local_two": two.id}

    def on_destroyed(self, ch: Channel) -> None:
        peer_id = ch.far.get("local_peer")
        peer = self.pbx.channels.get(peer_id) if isinstance(peer_id, str) else None
        if peer is not None and not peer.dying:
            self.pbx.lifecycle.hangup(peer, ch.hangup_cause, "far")
