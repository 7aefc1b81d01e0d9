"""Every event type the simulator emits, built in Asterisk's shape and published on the right sources.

One method per event type; the fields and their presence follow the api-docs models (events.json) and
the captures in NOTES.md §f. `type`, `timestamp`, `asterisk_id` and `application` are added by the router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import Bridge, Channel, Endpoint, LiveRecording, Playback, cause_text
from .stasis import Router

if TYPE_CHECKING:
    from .pbx import StasisStartLog


class Events:
    def __init__(self, router: Router, channelvars: tuple[str, ...],
                 stasis_log: StasisStartLog | None = None) -> None:
        self.router = router
        self.channelvars = channelvars
        self.stasis_log = stasis_log

    def snap(self, ch: Channel) -> dict[str, Any]:
        return ch.snapshot(self.channelvars)

    def _chan(self, etype: str, ch: Channel, **fields: Any) -> None:
        self.router.publish(etype, {**fields, "channel": self.snap(ch)}, channels=(ch.id,))

    # --- channel lifecycle ----------------------------------------------------------------------------

    def channel_created(self, ch: Channel) -> None:
        self._chan("ChannelCreated", ch)

    def channel_state_change(self, ch: Channel) -> None:
        self._chan("ChannelStateChange", ch)

    def channel_dialplan(self, ch: Channel) -> None:
        self._chan("ChannelDialplan", ch, dialplan_app=ch.app_name, dialplan_app_data=ch.app_data)

    def channel_varset(self, ch: Channel | None, variable: str, value: str) -> None:
        if ch is None:
            self.router.publish("ChannelVarset", {"variable": variable, "value": value})
            return
        self._chan("ChannelVarset", ch, variable=variable, value=value)

    def channel_caller_id(self, ch: Channel) -> None:
        self._chan("ChannelCallerId", ch, caller_presentation=0,
                   caller_presentation_txt="Presentation Allowed, Not Screened")

    def channel_connected_line(self, ch: Channel) -> None:
        self._chan("ChannelConnectedLine", ch)

    def channel_hangup_request(self, ch: Channel, cause: int | None, soft: bool) -> None:
        fields: dict[str, Any] = {}
        if cause is not None:
            fields["cause"] = cause
        if soft:
            fields["soft"] = True
        self._chan("ChannelHangupRequest", ch, **fields)

    def channel_destroyed(self, ch: Channel, cause: int) -> None:
        self._chan("ChannelDestroyed", ch, cause=cause, cause_txt=cause_text(cause))

    def dial(self, peer: Channel, status: str, caller: Channel | None = None) -> None:
        fields: dict[str, Any] = {}
        chans = [peer.id]
        if caller is not None:
            fields["caller"] = self.snap(caller)
            chans.append(caller.id)
        fields.update(peer=self.snap(peer), forward="", dialstring=peer.dialstring or peer.resource,
                      dialstatus=status)
        self.router.publish("Dial", fields, channels=chans)

    def channel_dtmf(self, ch: Channel, digit: str, duration_ms: int) -> None:
        self._chan("ChannelDtmfReceived", ch, digit=digit, duration_ms=duration_ms)

    def channel_hold(self, ch: Channel, musicclass: str | None) -> None:
        if musicclass:
            self._chan("ChannelHold", ch, musicclass=musicclass)
        else:
            self._chan("ChannelHold", ch)

    def channel_unhold(self, ch: Channel) -> None:
        self._chan("ChannelUnhold", ch)

    def talking_started(self, ch: Channel) -> None:
        self._chan("ChannelTalkingStarted", ch)

    def talking_finished(self, ch: Channel, duration_ms: int) -> None:
        self._chan("ChannelTalkingFinished", ch, duration=duration_ms)

    def channel_userevent(self, name: str, app: str, userevent: dict[str, Any], ch: Channel | None,
                          bridge: Bridge | None) -> None:
        fields: dict[str, Any] = {"eventname": name, "userevent": userevent}
        if ch is not None:
            fields["channel"] = self.snap(ch)
        if bridge is not None:
            fields["bridge"] = bridge.snapshot()
        self.router.publish("ChannelUserevent", fields, app=app)

    # --- Stasis ---------------------------------------------------------------------------------------

    def stasis_start(self, app: str, ch: Channel, args: list[str], replace: Channel | None = None) -> None:
        fields: dict[str, Any] = {"args": list(args), "channel": self.snap(ch)}
        if replace is not None:
            fields["replace_channel"] = self.snap(replace)
        log = self.stasis_log
        # Stamped when the frame is written to the socket (GET /_sim/stasis_starts); the event is unchanged.
        on_written = None if log is None else (lambda: log.written(ch.id, app, args))
        self.router.publish("StasisStart", fields, app=app, on_written=on_written)

    def stasis_end(self, app: str, ch: Channel) -> None:
        self.router.publish("StasisEnd", {"channel": self.snap(ch)}, app=app)

    def application_move_failed(self, app: str, ch: Channel, destination: str, args: list[str]) -> None:
        self.router.publish("ApplicationMoveFailed",
                            {"channel": self.snap(ch), "destination": destination, "args": list(args)}, app=app)

    # --- bridges --------------------------------------------------------------------------------------

    def bridge_created(self, bridge: Bridge) -> None:
        self.router.publish("BridgeCreated", {"bridge": bridge.snapshot()}, bridges=(bridge.id,))

    def bridge_destroyed(self, bridge: Bridge) -> None:
        self.router.publish("BridgeDestroyed", {"bridge": bridge.snapshot()}, bridges=(bridge.id,))

    def channel_entered_bridge(self, bridge: Bridge, ch: Channel) -> None:
        self.router.publish("ChannelEnteredBridge", {"bridge": bridge.snapshot(), "channel": self.snap(ch)},
                            channels=(ch.id,), bridges=(bridge.id,))

    def channel_left_bridge(self, bridge: Bridge, ch: Channel) -> None:
        self.router.publish("ChannelLeftBridge", {"bridge": bridge.snapshot(), "channel": self.snap(ch)},
                            channels=(ch.id,), bridges=(bridge.id,))

    def bridge_blind_transfer(self, ch: Channel, transferee: Channel | None, replace: Channel | None,
                              exten: str, context: str, bridge: Bridge | None) -> None:
        fields: dict[str, Any] = {"channel": self.snap(ch)}
        if replace is not None:
            fields["replace_channel"] = self.snap(replace)
        if transferee is not None:
            fields["transferee"] = self.snap(transferee)
        fields.update(exten=exten, context=context, result="Success", is_external=True)
        if bridge is not None:
            fields["bridge"] = bridge.snapshot()
        self.router.publish("BridgeBlindTransfer", fields, channels=(ch.id,),
                            bridges=(bridge.id,) if bridge is not None else ())

    def bridge_attended_transfer(self, fields: dict[str, Any], channels: list[str], bridges: list[str]) -> None:
        self.router.publish("BridgeAttendedTransfer", fields, channels=channels, bridges=bridges)

    # --- media ----------------------------------------------------------------------------------------

    def _playback(self, etype: str, pb: Playback) -> None:
        if pb.target_kind == "bridge":
            self.router.publish(etype, {"playback": pb.snapshot()}, bridges=(pb.target_id,))
        else:
            self.router.publish(etype, {"playback": pb.snapshot()}, channels=(pb.target_id,))

    def playback_started(self, pb: Playback) -> None:
        self._playback("PlaybackStarted", pb)

    def playback_continuing(self, pb: Playback) -> None:
        self._playback("PlaybackContinuing", pb)

    def playback_finished(self, pb: Playback) -> None:
        self._playback("PlaybackFinished", pb)

    def _recording(self, etype: str, rec: LiveRecording) -> None:
        if rec.target_kind == "bridge":
            self.router.publish(etype, {"recording": rec.snapshot()}, bridges=(rec.target_id,))
        else:
            self.router.publish(etype, {"recording": rec.snapshot()}, channels=(rec.target_id,))

    def recording_started(self, rec: LiveRecording) -> None:
        self._recording("RecordingStarted", rec)

    def recording_finished(self, rec: LiveRecording) -> None:
        self._recording("RecordingFinished", rec)

    def recording_failed(self, rec: LiveRecording) -> None:
        self._recording("RecordingFailed", rec)

    # --- endpoints and device states ------------------------------------------------------------------

    def endpoint_state_change(self, ep: Endpoint) -> None:
        self.router.publish("EndpointStateChange", {"endpoint": ep.snapshot()}, endpoint=(ep.tech, ep.resource))

    def peer_status_change(self, ep: Endpoint) -> None:
        peer = {"peer_status": "Reachable" if ep.registered else "Unreachable",
                "address": ep.address, "port": "5060"}
        self.router.publish("PeerStatusChange", {"endpoint": ep.snapshot(), "peer": peer},
                            endpoint=(ep.tech, ep.resource))

    def contact_status_change(self, ep: Endpoint) -> None:
        contact = {
            "uri": f"sip:{ep.resource}@{ep.address}:5060",
            "contact_status": "Reachable" if ep.registered else "Removed",
            "aor": ep.resource,
            "roundtrip_usec": "1500" if ep.registered else "0",
        }
        self.router.publish("ContactStatusChange", {"endpoint": ep.snapshot(), "contact_info": contact},
                            endpoint=(ep.tech, ep.resource))

    def device_state_changed(self, name: str, state: str) -> None:
        self.router.publish("DeviceStateChanged", {"device_state": {"name": name, "state": state}}, device=name)
