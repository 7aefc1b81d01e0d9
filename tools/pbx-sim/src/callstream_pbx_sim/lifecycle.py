"""Channels from creation to destruction: state, variables, Stasis membership, hang-up and teardown.

Teardown orders (NOTES.md §b1.7, §b1.8, §b2):
- far end hangs up (BYE):  RTPAUDIOQOS* -> ChannelHangupRequest{cause} -> [BRIDGEPEER ""] -> ChannelLeftBridge
  -> StasisEnd -> STASISSTATUS=SUCCESS -> ChannelDestroyed
- the app hangs up (DELETE): ChannelHangupRequest{soft, cause 32} -> [Dial NOANSWER if still ringing]
  -> ChannelLeftBridge -> StasisEnd -> STASISSTATUS=SUCCESS -> RTPAUDIOQOS* -> ChannelDestroyed
Events after StasisEnd reach only apps still subscribed (originated channels, explicit subscriptions,
subscribeAll): an inbound channel's app sees no ChannelDestroyed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .errors import AriError
from .model import Channel, Endpoint

if TYPE_CHECKING:
    from .pbx import Pbx

# AST_SOFTHANGUP_EXPLICIT: what ChannelHangupRequest.cause carries for a soft hang-up.
SOFTHANGUP_EXPLICIT = 32

_FUNC_RE = re.compile(r"^([A-Z_]+)\((.*)\)$")


class Lifecycle:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.ev = pbx.events

    # --- creation -------------------------------------------------------------------------------------

    def new_channel(
        self,
        *,
        tech: str,
        resource: str,
        kind: str,
        state: str,
        context: str,
        exten: str = "s",
        priority: int = 1,
        app_name: str = "",
        app_data: str = "",
        caller: tuple[str, str] = ("", ""),
        connected: tuple[str, str] = ("", ""),
        channel_id: str | None = None,
        protocol_id: str = "",
        name: str | None = None,
        endpoint: Endpoint | None = None,
    ) -> Channel:
        pbx = self.pbx
        cid = channel_id or pbx.new_uniqueid()
        if name is None:
            name = f"{tech}/{resource}-{pbx.next_index(tech):08x}"
        ch = Channel(
            id=cid, name=name, tech=tech, resource=resource, protocol_id=protocol_id,
            creationtime=pbx.clock.timestamp(), kind=kind, state=state,
            caller_name=caller[0], caller_number=caller[1],
            connected_name=connected[0], connected_number=connected[1],
            context=context, exten=exten, priority=priority, app_name=app_name, app_data=app_data,
        )
        ch.base_dialplan = (context, exten, priority, app_name, app_data)
        pbx.channels[cid] = ch
        # Only subscribeAll apps (or explicit endpoint subscribers) can be subscribed this early.
        self.ev.channel_created(ch)
        if endpoint is not None:
            # Every endpoint snapshot update is an EndpointStateChange (app.c sub_endpoint_update_handler),
            # a new channel in channel_ids included.
            endpoint.channel_ids.append(cid)
            self.ev.endpoint_state_change(endpoint)
        return ch

    # --- state and variables --------------------------------------------------------------------------

    def set_state(self, ch: Channel, state: str) -> None:
        if ch.state == state:
            return
        ch.state = state
        if state == "Up" and ch.tech == "PJSIP":
            ch.had_media = True
        self.ev.channel_state_change(ch)
        self.pbx.world.device_update(ch)

    def answer(self, ch: Channel) -> None:
        self.set_state(ch, "Up")

    def set_var(self, ch: Channel, name: str, value: str, report: bool = False) -> None:
        """pbx_builtin_setvar_helper(): dialplan functions act, plain variables publish ChannelVarset."""
        func = _FUNC_RE.match(name)
        if func is not None:
            self._set_function(ch, func.group(1), func.group(2), value)
            return
        ch.variables[name] = value
        if report and name not in ch.reported:
            ch.reported.append(name)
        self.ev.channel_varset(ch, name, value)

    def _set_function(self, ch: Channel, func: str, arg: str, value: str) -> None:
        if func == "CALLERID":
            part = arg.split(",")[0].strip().lower()
            if part == "name":
                ch.caller_name = value
            elif part in ("num", "number"):
                ch.caller_number = value
            elif part == "all":
                name, number = _parse_callerid(value)
                ch.caller_name, ch.caller_number = name, number
            else:
                raise AriError(400, "Failed to execute function")
            self.ev.channel_caller_id(ch)
        elif func == "CONNECTEDLINE":
            part = arg.split(",")[0].strip().lower()
            if part == "name":
                ch.connected_name = value
            elif part in ("num", "number"):
                ch.connected_number = value
            elif part == "all":
                ch.connected_name, ch.connected_number = _parse_callerid(value)
            else:
                raise AriError(400, "Failed to execute function")
            self.ev.channel_connected_line(ch)
        elif func == "TALK_DETECT":
            # TALK_DETECT(set)=... turns on ChannelTalkingStarted/Finished; TALK_DETECT(remove)= turns it off.
            ch.talk_detect = arg.strip().lower() != "remove"
        else:
            # Other dialplan functions are accepted and remembered, as Asterisk evaluates them silently.
            ch.variables[f"{func}({arg})"] = value

    def get_var(self, ch: Channel, name: str) -> str | None:
        func = _FUNC_RE.match(name)
        if func is not None:
            f, arg = func.group(1), func.group(2).split(",")[0].strip().lower()
            if f == "CALLERID":
                return {"name": ch.caller_name, "num": ch.caller_number, "number": ch.caller_number,
                        "all": f'"{ch.caller_name}" <{ch.caller_number}>'}.get(arg, "")
            if f == "CONNECTEDLINE":
                return {"name": ch.connected_name, "num": ch.connected_number,
                        "number": ch.connected_number}.get(arg, "")
            if f == "CHANNEL":
                return {"name": ch.name, "uniqueid": ch.id, "state": ch.state,
                        "language": ch.language}.get(arg, "")
            return ch.variables.get(name, "")
        builtin = {"UNIQUEID": ch.id, "CHANNEL": ch.name, "EXTEN": ch.exten, "CONTEXT": ch.context}
        if name in builtin:
            return builtin[name]
        return ch.variables.get(name)

    # --- Stasis ---------------------------------------------------------------------------------------

    def enter_stasis(self, ch: Channel, app: str, args: list[str], *, via_dialplan: bool = True,
                     replace: Channel | None = None) -> bool:
        """Stasis(app,args): fails (STASISSTATUS=FAILED) when the app has no WebSocket (§d)."""
        pbx = self.pbx
        if not pbx.router.is_active(app):
            pbx.counters.stasis_failed += 1
            if via_dialplan:
                self.set_var(ch, "STASISSTATUS", "FAILED")
            return False
        if via_dialplan:
            self.set_var(ch, "STASISSTATUS", "")
        ch.app_name = "Stasis"
        ch.app_data = ",".join([app, *args])
        ch.stasis_app = app
        ch.stasis_args = list(args)
        pbx.router.sub_channel(app, ch.id, +1)
        self.ev.stasis_start(app, ch, args, replace)
        return True

    def leave_stasis(self, ch: Channel, *, status: str = "SUCCESS") -> None:
        app = ch.stasis_app
        if app is None:
            return
        if ch.bridge_id is not None:
            self.pbx.bridging.leave(ch)
        ch.stasis_app = None
        # res_stasis.c unsubscribes before publishing StasisEnd; StasisEnd itself goes to the app directly.
        self.pbx.router.sub_channel(app, ch.id, -1)
        self.ev.stasis_end(app, ch)
        if ch.kind != "snoop":
            self.set_var(ch, "STASISSTATUS", status)
        if ch.base_dialplan is not None:
            ch.context, ch.exten, ch.priority, ch.app_name, ch.app_data = ch.base_dialplan

    def move(self, ch: Channel, app: str, args: list[str]) -> None:
        pbx = self.pbx
        old = ch.stasis_app
        assert old is not None
        if not pbx.router.is_active(app):
            self.ev.application_move_failed(old, ch, app, args)
            return
        if ch.bridge_id is not None:
            # Leaving the app's control loop departs the bridge, as for any exit from Stasis.
            pbx.bridging.leave(ch)
        ch.stasis_app = None
        pbx.router.sub_channel(old, ch.id, -1)
        self.ev.stasis_end(old, ch)
        self.enter_stasis(ch, app, args, via_dialplan=False)

    def continue_in_dialplan(self, ch: Channel, context: str, exten: str, priority: int) -> None:
        """The channel leaves Stasis and runs dialplan the simulator does not model: it stays up until the
        far end hangs up (its patience/talk timers keep running)."""
        self.leave_stasis(ch)
        # The dialplan it runs is not modelled: no ChannelDialplan, which needs an application name.
        ch.context, ch.exten, ch.priority = context, exten, priority
        ch.app_name, ch.app_data = "", ""

    # --- hang-up --------------------------------------------------------------------------------------

    def request_hangup(self, ch: Channel, cause: int) -> None:
        """DELETE /channels/{id}: a soft hang-up, processed after the 204 like Asterisk's channel thread."""
        if ch.dying:
            return
        ch.hangup_cause = cause
        self.pbx.clock.call_soon(self.hangup, ch, cause, "app")

    def hangup(self, ch: Channel, cause: int, initiator: str) -> None:
        """Tear a channel down. initiator: `app` (soft hang-up), `far` (the far end hung up), `internal`
        (a channel with no signalling of its own, e.g. a snoop channel whose target went away)."""
        if ch.dying or ch.id not in self.pbx.channels:
            return
        pbx = self.pbx
        ch.dying = True
        ch.hangup_cause = cause
        ch.cancel_timers()
        if initiator == "far":
            self._rtp_qos(ch)
            self.ev.channel_hangup_request(ch, cause, soft=False)
        elif initiator == "app":
            self.ev.channel_hangup_request(ch, SOFTHANGUP_EXPLICIT, soft=True)
        if ch.dialing:
            # main/dial.c maps the cancelled leg's cause to a dial status: 16 -> NOANSWER.
            ch.dialing = False
            pbx.events.dial(ch, "NOANSWER", pbx.channels.get(ch.dial_caller or ""))
        pbx.media.on_channel_gone(ch)
        for snoop_id in list(ch.snoop_ids):
            snoop = pbx.channels.get(snoop_id)
            if snoop is not None:
                self.hangup(snoop, 16, "internal")
        if ch.stasis_app is not None:
            self.leave_stasis(ch)
        elif ch.bridge_id is not None:
            pbx.bridging.leave(ch)
        if initiator != "far":
            self._rtp_qos(ch)
        self.destroy(ch, cause)

    def destroy(self, ch: Channel, cause: int) -> None:
        pbx = self.pbx
        ch.dying = True
        ch.dialing = False
        ch.cancel_timers()
        self.ev.channel_destroyed(ch, cause)
        pbx.channels.pop(ch.id, None)
        if ch.spied_id is not None:
            target = pbx.channels.get(ch.spied_id)
            if target is not None and ch.id in target.snoop_ids:
                target.snoop_ids.remove(ch.id)
        ep = pbx.world.endpoint_of(ch)
        if ep is not None and ch.id in ep.channel_ids:
            ep.channel_ids.remove(ch.id)
            self.ev.endpoint_state_change(ep)
        pbx.world.device_update(ch)
        pbx.router.forget_channel(ch.id)
        pbx.world.on_channel_destroyed(ch)

    def _rtp_qos(self, ch: Channel) -> None:
        """The five RTPAUDIOQOS* variables chan_pjsip sets on an RTP channel at hang-up."""
        if not ch.had_media:
            return
        ch.had_media = False
        r = self.pbx.rng_ids
        ssrc, them = r.getrandbits(31), r.getrandbits(31)
        rx, tx = r.randint(500, 90000), r.randint(500, 90000)
        jit = r.random() * 0.004
        rtt = r.random() * 0.06
        values = {
            "RTPAUDIOQOS": (f"ssrc={ssrc};themssrc={them};lp=0;rxjitter={jit:.6f};rxcount={rx};"
                            f"txjitter={jit:.6f};txcount={tx};rlp=0;rtt={rtt:.6f};rxmes=4.400000;"
                            f"txmes=4.400000"),
            "RTPAUDIOQOSJITTER": (f"minrxjitter=0.000000;maxrxjitter={jit * 2:.6f};avgrxjitter={jit:.6f};"
                                  f"stdevrxjitter=0.000000;reported_minjitter=0.000000;"
                                  f"reported_maxjitter={jit * 2:.6f};reported_avgjitter={jit:.6f};"
                                  f"reported_stdevjitter=0.000000;"),
            "RTPAUDIOQOSLOSS": ("minrxlost=0.000000;maxrxlost=0.000000;avgrxlost=0.000000;stdevrxlost=0.000000;"
                                "reported_minlost=0.000000;reported_maxlost=0.000000;"
                                "reported_avglost=0.000000;reported_stdevlost=0.000000;"),
            "RTPAUDIOQOSRTT": (f"minrtt={rtt:.6f};maxrtt={rtt:.6f};avgrtt={rtt:.6f};stdevrtt=0.000000;"),
            "RTPAUDIOQOSMES": ("minrxmes=4.400000;maxrxmes=4.400000;avgrxmes=4.400000;stdevrxmes=0.000000;"
                               "reported_minmes=4.400000;reported_maxmes=4.400000;reported_avgmes=4.400000;"
                               "reported_stdevmes=0.000000;"),
        }
        for name, value in values.items():
            self.set_var(ch, name, value)

    # --- snoop ----------------------------------------------------------------------------------------

    def snoop(self, target: Channel, app: str, args: list[str], snoop_id: str | None) -> Channel:
        """res_stasis_snoop.c: a `Snoop/<target id>-xxxxxxxx` channel, Up, running Stasis(app,args)."""
        pbx = self.pbx
        if snoop_id is not None and pbx.id_in_use(snoop_id):
            raise AriError(500, "Snoop channel could not be created")
        ch = self.new_channel(
            tech="Snoop", resource=target.id, kind="snoop", state="Up", context="default",
            channel_id=snoop_id, name=f"Snoop/{target.id}-{pbx.next_index('Snoop'):08x}",
        )
        ch.spied_id = target.id
        target.snoop_ids.append(ch.id)
        pbx.clock.call_soon(self._snoop_stasis, ch, app, args)
        return ch

    def _snoop_stasis(self, ch: Channel, app: str, args: list[str]) -> None:
        if ch.dying:
            return
        if not self.enter_stasis(ch, app, args, via_dialplan=False):
            self.hangup(ch, 16, "internal")


def _parse_callerid(value: str) -> tuple[str, str]:
    """`"Name" <number>` or `Name <number>` or a bare number (ast_callerid_parse, simplified)."""
    value = value.strip()
    m = re.match(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$', value)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    if re.fullmatch(r"[0-9+*#()\- .]+", value):
        return "", value.replace(" ", "").replace("-", "").replace("(", "").replace(")", "").replace(".", "")
    return value, ""


parse_callerid = _parse_callerid
