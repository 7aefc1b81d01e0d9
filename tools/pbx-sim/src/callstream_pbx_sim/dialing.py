"""Outgoing legs: originate, create + dial, and what the far end does (phones, carrier outcomes).

Event order of an originate with `app=` (NOTES.md §b1.5, §g), the app being subscribed from creation:
  Dial{dialstatus ""} -> ChannelStateChange(Ringing) -> Dial{RINGING} -> ChannelStateChange(Up)
  -> Dial{ANSWER} -> ChannelVarset(STASISSTATUS "") -> StasisStart
and for a leg that does not answer: Dial{BUSY|NOANSWER|CONGESTION|CHANUNAVAIL} -> ChannelDestroyed.
An originate that times out ends with ChannelDestroyed cause 0 "Unknown" (asterisk/asterisk#963).

Answering machines: when the carrier's outcome is `machine` the call is answered and the far end plays a
greeting. The simulator stands for an AMD() step that ran before Stasis(): it sets AMDSTATUS (MACHINE or
HUMAN) and AMDCAUSE on every answered trunk call before StasisStart, and, when the app enabled
TALK_DETECT(set) on the channel, emits ChannelTalkingStarted/Finished for the greeting (or the "hello").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import OutcomeRule
from .errors import AllocationFailed, AriError
from .lifecycle import parse_callerid
from .model import Channel, Endpoint, dial_status_for_cause

if TYPE_CHECKING:
    from .pbx import Pbx

KNOWN_FORMATS = frozenset(
    "ulaw alaw gsm g722 g729 g726 g726aal2 g723 ilbc lpc10 speex speex16 speex32 opus siren7 siren14 "
    "slin slin12 slin16 slin24 slin32 slin44 slin48 slin96 slin192 adpcm codec2 testlaw "
    "h261 h263 h263p h264 h265 mpeg4 vp8 vp9 jpeg png t140 t140red none".split()
)

# How long an INVITE to a silent phone lasts before Timer B (32 s) fires a 408.
TIMER_B_S = 32.0
# Provisional responses of the carrier / a phone before the final answer.
PROGRESS_S = 0.1
FAILURE_S = 0.2

_OUTCOME_CAUSE = {"busy": 17, "congestion": 34, "unavailable": 20, "invalid": 1}


@dataclass
class OriginateRequest:
    endpoint: str | None
    app: str | None = None
    app_args: str | None = None
    extension: str | None = None
    context: str | None = None
    priority: int = 0
    label: str | None = None
    caller_id: str | None = None
    timeout: int = 30
    variables: tuple[tuple[str, str, bool], ...] = ()
    channel_id: str | None = None
    other_channel_id: str | None = None
    originator: str | None = None
    formats: str | None = None


def split_args(value: str | None) -> list[str]:
    if not value:
        return []
    return value.split(",")


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """An Asterisk extension pattern (`_NXXNXXXXXX`, `_1X.`, `_[2-9]!`) or an exact extension as a regex."""
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern) + r"\Z")
    out = []
    i = 1
    while i < len(pattern):
        c = pattern[i]
        if c == "X":
            out.append("[0-9]")
        elif c == "Z":
            out.append("[1-9]")
        elif c == "N":
            out.append("[2-9]")
        elif c == ".":
            out.append(".+")
        elif c == "!":
            out.append(".*")
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1:j].replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class Dialer:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.ev = pbx.events
        self.outcomes: list[OutcomeRule] = list(pbx.cfg.outcomes)
        self.amd = True

    # --- resolving dial strings -----------------------------------------------------------------------

    def resolve(self, tech: str, resource: str) -> tuple[Endpoint, str | None]:
        """The endpoint a dial string reaches and, for the trunk, the dialled number. Asterisk fails the
        channel request (HTTP 500 "Allocation failed") for an unknown technology, an unknown endpoint and
        a phone with no registered contact ("No URI available. Is endpoint registered?")."""
        pbx = self.pbx
        if tech.lower() != "pjsip":
            raise AllocationFailed()
        trunk = pbx.world.trunk()
        # PJSIP/<endpoint>/<SIP URI> and PJSIP/<number>@<endpoint>.
        if "/" in resource:
            ep_name, _, uri = resource.partition("/")
            ep = pbx.endpoint("PJSIP", ep_name)
            if ep is None:
                raise AllocationFailed()
            user = uri.split(":", 1)[-1].split("@", 1)[0]
            return ep, user
        if "@" in resource:
            number, _, ep_name = resource.partition("@")
            ep = pbx.endpoint("PJSIP", ep_name)
            if ep is None:
                raise AllocationFailed()
            return ep, number
        ep = pbx.endpoint("PJSIP", resource)
        if ep is None:
            raise AllocationFailed()
        if ep is trunk:
            return ep, ""
        if not ep.registered:
            raise AllocationFailed()
        return ep, None

    def _check_formats(self, formats: str | None) -> None:
        if not formats:
            return
        for name in formats.split(","):
            if name.strip() not in KNOWN_FORMATS:
                raise AriError(400, f"Provided format ({name.strip()}) was not found")

    # --- POST /channels, POST /channels/{id} ----------------------------------------------------------

    def originate(self, req: OriginateRequest) -> Channel:
        pbx = self.pbx
        pbx.check_id(req.channel_id)
        pbx.check_id(req.other_channel_id)
        if not req.endpoint:
            raise AriError(400, "Endpoint must be specified")
        if req.originator and req.formats:
            raise AriError(400, "Originator and formats can't both be specified")
        tech, _, resource = req.endpoint.partition("/")
        if not tech or not resource:
            raise AriError(400, "Invalid endpoint specified")
        if not req.app and not req.extension:
            raise AriError(400, "Application or extension must be specified")
        if req.originator and pbx.channel(req.originator) is None:
            raise AriError(400, "Provided originator channel was not found")
        self._check_formats(req.formats)
        ep, number = self.resolve(tech, resource)
        if req.channel_id and pbx.id_in_use(req.channel_id):
            raise AriError(409, "Channel with given unique ID already exists")

        name, num = parse_callerid(req.caller_id) if req.caller_id else ("", "")
        ch = self._new_leg(ep, resource, number, req.channel_id, caller=(name, num), connected=(name, num))
        for var, value, report in req.variables:
            pbx.lifecycle.set_var(ch, var, value, report)
        if req.app:
            ch.originate_app = req.app
            ch.stasis_args = split_args(req.app_args)
            pbx.router.sub_channel(req.app, ch.id, +1)
        else:
            ch.far["dialplan"] = (req.context or "default", req.extension or "s", req.priority or 1)
        timeout = 30 if req.timeout == 0 else req.timeout
        pbx.clock.call_soon(self._begin, ch, ep, number, timeout)
        return ch

    def _new_leg(self, ep: Endpoint, resource: str, number: str | None, channel_id: str | None,
                 caller: tuple[str, str], connected: tuple[str, str]) -> Channel:
        pbx = self.pbx
        ch = pbx.lifecycle.new_channel(
            tech="PJSIP", resource=ep.resource, kind="outbound", state="Down", context=ep.context,
            exten="s", priority=1, app_name="AppDial2", app_data="(Outgoing Line)", caller=caller,
            connected=connected, channel_id=channel_id, protocol_id=pbx.call_id(), endpoint=ep,
        )
        ch.dialstring = resource
        if number is not None:
            ch.far["number"] = number
        return ch

    # --- POST /channels/create and POST /channels/{id}/dial -------------------------------------------

    def create(self, *, endpoint: str | None, app: str | None, app_args: str | None, channel_id: str | None,
               other_channel_id: str | None, originator: str | None, formats: str | None,
               variables: tuple[tuple[str, str, bool], ...]) -> Channel:
        pbx = self.pbx
        pbx.check_id(channel_id)
        pbx.check_id(other_channel_id)
        if originator and formats:
            raise AriError(400, "Originator and formats can't both be specified")
        if not endpoint:
            raise AriError(400, "Endpoint must be specified")
        tech, _, resource = endpoint.partition("/")
        if not tech or not resource:
            raise AriError(400, "Invalid endpoint specified")
        if not app:
            raise AriError(400, "Application name is required")
        orig = pbx.channel(originator) if originator else None
        if orig is None:
            self._check_formats(formats)
        ep, number = self.resolve(tech, resource)
        if channel_id and pbx.id_in_use(channel_id):
            raise AriError(409, "Channel with given unique ID already exists")
        ch = self._new_leg(ep, resource, number, channel_id, caller=("", ""), connected=("", ""))
        ch.kind = "created"
        pbx.router.sub_channel(app, ch.id, +1)
        if orig is not None:
            pbx.router.sub_channel(app, orig.id, +1)
        for var, value, report in variables:
            pbx.lifecycle.set_var(ch, var, value, report)
        ch.far["endpoint"] = ep.key
        pbx.clock.call_soon(self._created_stasis, ch, app, split_args(app_args))
        return ch

    def _created_stasis(self, ch: Channel, app: str, args: list[str]) -> None:
        if ch.dying:
            return
        if not self.pbx.lifecycle.enter_stasis(ch, app, args):
            self.pbx.lifecycle.hangup(ch, 16, "internal")

    def dial(self, ch: Channel, caller_id: str | None, timeout: int) -> None:
        pbx = self.pbx
        if ch.state not in ("Down", "Rsrved"):
            raise AriError(409, "Channel is not in the 'Down' state")
        if ch.kind != "created" or ch.dialing:
            raise AriError(409, "Dialing a channel not created by ARI")
        caller = pbx.channel(caller_id) if caller_id else None
        if caller is not None:
            ch.connected_name, ch.connected_number = caller.caller_name, caller.caller_number
            ch.language = caller.language
            ch.dial_caller = caller.id
        ep = pbx.endpoints[ch.far["endpoint"]]
        # Asterisk keeps the dialled channel in an internal holding bridge (asterisk/asterisk#2044).
        ch.in_dial_bridge = True
        pbx.clock.call_soon(self._begin, ch, ep, ch.far.get("number"), timeout)

    # --- progress of a leg ------------------------------------------------------------------------------

    def _begin(self, ch: Channel, ep: Endpoint, number: str | None, timeout: int) -> None:
        if ch.dying:
            return
        pbx = self.pbx
        clock = pbx.clock
        ch.dialing = True
        self.ev.dial(ch, "", self._caller(ch))
        if timeout > 0:
            ch.timers["timeout"] = clock.call_later(float(timeout), self._timeout, ch)
        rng = pbx.rng_calls
        if ep.kind == "trunk":
            rule = self._rule(number or "")
            ch.far["rule"] = rule
            outcome = rule.outcome
            if outcome in _OUTCOME_CAUSE:
                ch.timers["fail"] = clock.call_later(FAILURE_S, self.fail, ch, _OUTCOME_CAUSE[outcome])
                return
            ch.timers["ring"] = clock.call_later(PROGRESS_S, self._ringing, ch)
            if outcome in ("answer", "machine"):
                ch.timers["answer"] = clock.call_later(PROGRESS_S + rule.ring_s.sample(rng), self._answer, ch)
            return
        b = ep.behaviour
        if b.mode == "busy":
            ch.timers["fail"] = clock.call_later(FAILURE_S, self.fail, ch, 17)
            return
        if b.mode == "unreachable":
            ch.timers["fail"] = clock.call_later(TIMER_B_S, self.fail, ch, 18)
            return
        ring = b.ring_after_s.sample(rng)
        ch.timers["ring"] = clock.call_later(ring, self._ringing, ch)
        if b.mode == "answer":
            ch.timers["answer"] = clock.call_later(ring + b.answer_after_s.sample(rng), self._answer, ch)
        elif b.mode == "reject":
            ch.timers["fail"] = clock.call_later(ring + b.reject_after_s.sample(rng), self.fail, ch, 21)

    def _caller(self, ch: Channel) -> Channel | None:
        return self.pbx.channels.get(ch.dial_caller) if ch.dial_caller else None

    def _rule(self, number: str) -> OutcomeRule:
        for rule in self.outcomes:
            rx = re.compile(rule.regex) if rule.regex else pattern_regex(rule.match)
            if rx.match(number) and (rule.probability >= 1.0 or self.pbx.rng_calls.random() < rule.probability):
                return rule
        return OutcomeRule(outcome="answer")

    def _ringing(self, ch: Channel) -> None:
        ch.timers.pop("ring", None)
        if not ch.dialing or ch.dying:
            return
        self.pbx.lifecycle.set_state(ch, "Ringing")
        self.ev.dial(ch, "RINGING", self._caller(ch))

    def _answer(self, ch: Channel) -> None:
        ch.timers.pop("answer", None)
        if not ch.dialing or ch.dying:
            return
        pbx = self.pbx
        ch.dialing = False
        ch.cancel_timers("timeout", "ring", "fail")
        pbx.lifecycle.set_state(ch, "Up")
        self.ev.dial(ch, "ANSWER", self._caller(ch))
        ep = pbx.world.endpoint_of(ch)
        if ep is not None and ep.kind == "trunk":
            self._far_party_answered(ch)
        elif ep is not None and ep.behaviour.hangup_after_s is not None:
            ch.timers["agent_hangup"] = pbx.clock.call_later(
                ep.behaviour.hangup_after_s.sample(pbx.rng_calls), pbx.world.far_hangup, ch, 16)
        if ch.originate_app is not None and ch.stasis_app is None and ch.kind == "outbound":
            if not pbx.lifecycle.enter_stasis(ch, ch.originate_app, ch.stasis_args):
                pbx.lifecycle.hangup(ch, 16, "internal")
        elif "dialplan" in ch.far:
            # An `extension=` originate: the answered leg starts that dialplan, which is not modelled.
            ch.context, ch.exten, ch.priority = ch.far["dialplan"]
            ch.app_name, ch.app_data = "", ""

    def answer_now(self, ch: Channel) -> None:
        """The far end answers at once (control API), whatever its behaviour would have done."""
        ch.cancel_timers("answer", "fail")
        self._answer(ch)

    def _far_party_answered(self, ch: Channel) -> None:
        pbx = self.pbx
        rng = pbx.rng_calls
        rule: OutcomeRule = ch.far.get("rule") or OutcomeRule()
        machine = rule.outcome == "machine"
        if self.amd:
            pbx.lifecycle.set_var(ch, "AMDSTATUS", "MACHINE" if machine else "HUMAN")
            pbx.lifecycle.set_var(ch, "AMDCAUSE", "LONGGREETING-2500-1500" if machine else "HUMAN-1-1")
        if machine:
            greeting = rule.greeting_s.sample(rng)
            # The greeting starts a moment after the answer: time for the app to turn on TALK_DETECT.
            pbx.world.talk(ch, 0.8, greeting)
            hang = 0.8 + greeting + rule.machine_hangup_s.sample(rng)
        else:
            pbx.world.talk(ch, 0.5, 0.8)
            hang = rule.talk_s.sample(rng)
        ch.timers["far_hangup"] = pbx.clock.call_later(hang, pbx.world.far_hangup, ch, 16)

    def fail(self, ch: Channel, cause: int) -> None:
        """A final failure response (486, 603, 503, 408 ...) while the leg is still being dialled."""
        ch.timers.pop("fail", None)
        if not ch.dialing or ch.dying:
            return
        ch.dialing = False
        self.ev.dial(ch, dial_status_for_cause(cause), self._caller(ch))
        self._end_leg(ch, cause)

    def _timeout(self, ch: Channel) -> None:
        ch.timers.pop("timeout", None)
        if not ch.dialing or ch.dying:
            return
        ch.dialing = False
        self.ev.dial(ch, "NOANSWER", self._caller(ch))
        self._end_leg(ch, 0)

    def _end_leg(self, ch: Channel, cause: int) -> None:
        if ch.stasis_app is not None:
            # A created channel dialled from Stasis: it leaves Stasis as it is hung up.
            self.pbx.lifecycle.hangup(ch, cause, "internal")
        else:
            self.pbx.lifecycle.destroy(ch, cause)

    def on_destroyed(self, ch: Channel) -> None:
        ch.dialing = False
