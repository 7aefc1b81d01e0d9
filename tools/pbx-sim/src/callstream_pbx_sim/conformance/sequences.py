"""The documented event order of each flow, as data, and the checker that holds a recorded stream to it.

A flow names its subjects by role (`C` the caller, `A` the agent leg, `H` the holding bridge, ...). For each
subject a `Track` lists:

- `required`: events that must appear, in this order, among the events that concern the subject (other
  events may come in between: Asterisk interleaves ChannelVarset and friends freely);
- `forbidden`: events that must never concern the subject (no ChannelCreated for a channel the app
  originated, no BridgeCreated for a bridge it created over REST, no ChannelDestroyed for a dialplan channel
  once StasisEnd unsubscribed the app, ...);
- `first` / `last`: the first required event must be the subject's very first event, the last one its very
  last (StasisStart first for an inbound call; nothing after ChannelDestroyed);
- `once`: event types that may concern the subject at most once (a second StasisStart would mean the
  simulator started Stasis both before and after answer).

Expectations are `Ev(type, where={dotted.path: value})`. A value `"$X"` is the id bound to role X at run
time, `Fmt("{X}...")` formats bindings into a string, and `OneOf`, `Contains`, `Matches`, `Absent`
express the rest. Each flow cites where its order comes from (NOTES.md §b, the C sources, or the testsuite).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["channel", "bridge", "playback", "recording", "endpoint", "device"]


# --- value predicates -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OneOf:
    values: tuple[Any, ...]

    def __str__(self) -> str:
        return "|".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Contains:
    item: Any

    def __str__(self) -> str:
        return f"contains {self.item!r}"


@dataclass(frozen=True)
class Matches:
    """A full regex match; with `fmt=True` the pattern is first formatted with the (escaped) bindings."""

    pattern: str
    fmt: bool = False

    def __str__(self) -> str:
        return f"~/{self.pattern}/"


@dataclass(frozen=True)
class Fmt:
    template: str

    def __str__(self) -> str:
        return repr(self.template)


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()
_MISSING = object()


@dataclass(frozen=True)
class Ev:
    """One expected (or forbidden) event: a type and constraints on its fields."""

    type: str
    where: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def describe(self, bindings: Mapping[str, Any] | None = None) -> str:
        if not self.where:
            return self.type
        parts = []
        for path, want in self.where.items():
            shown = _resolve(want, bindings) if bindings is not None else want
            parts.append(f"{path}={shown if isinstance(shown, (OneOf, Contains, Matches, _Absent)) else repr(shown)}")
        return f"{self.type}{{{', '.join(parts)}}}"

    def matches(self, event: Mapping[str, Any], bindings: Mapping[str, Any]) -> bool:
        if event.get("type") != self.type:
            return False
        for path, want in self.where.items():
            if not _value_matches(_get(event, path), _resolve(want, bindings)):
                return False
        return True


@dataclass(frozen=True)
class Track:
    role: str
    kind: Kind
    required: tuple[Ev, ...] = ()
    forbidden: tuple[Ev, ...] = ()
    first: bool = False
    last: bool = False
    once: tuple[str, ...] = ()
    app: str = "$APP"  # whose event stream this track is judged on


@dataclass(frozen=True)
class FlowSpec:
    name: str
    source: str
    tracks: tuple[Track, ...]


def _resolve(want: Any, bindings: Mapping[str, Any] | None) -> Any:
    if bindings is None:
        return want
    if isinstance(want, str) and want.startswith("$") and want[1:] in bindings:
        return bindings[want[1:]]
    if isinstance(want, Fmt):
        return want.template.format(**bindings)
    if isinstance(want, Contains):
        return Contains(_resolve(want.item, bindings))
    if isinstance(want, OneOf):
        return OneOf(tuple(_resolve(v, bindings) for v in want.values))
    if isinstance(want, Matches) and want.fmt:
        escaped = {k: re.escape(str(v)) for k, v in bindings.items()}
        return Matches(want.pattern.format(**escaped))
    if isinstance(want, list):
        return [_resolve(v, bindings) for v in want]
    return want


def _get(event: Mapping[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def _value_matches(got: Any, want: Any) -> bool:
    if want is ABSENT:
        return got is _MISSING
    if got is _MISSING:
        return False
    if isinstance(want, OneOf):
        return any(_value_matches(got, v) for v in want.values)
    if isinstance(want, Contains):
        return isinstance(got, list) and want.item in got
    if isinstance(want, Matches):
        return isinstance(got, str) and re.fullmatch(want.pattern, got) is not None
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    return bool(got == want)


# --- which events concern a subject -----------------------------------------------------------------------
# Which fields of an event name the channels / bridges it is about. `replace_channel` is left out on purpose:
# a StasisStart that replaces A is about the new channel, not about A.
CHANNEL_FIELDS = ("channel", "peer", "transferee", "transfer_target", "transferer_first_leg", "transferer_second_leg")
BRIDGE_FIELDS = ("bridge", "bridge_from", "transferer_first_leg_bridge", "transferer_second_leg_bridge")


def concerns(event: Mapping[str, Any], kind: Kind, subject: str) -> bool:
    if kind == "channel":
        for key in CHANNEL_FIELDS:
            obj = event.get(key)
            if isinstance(obj, Mapping) and obj.get("id") == subject:
                return True
        return False
    if kind == "bridge":
        for key in BRIDGE_FIELDS:
            obj = event.get(key)
            if isinstance(obj, Mapping) and obj.get("id") == subject:
                return True
        return False
    if kind == "playback":
        obj = event.get("playback")
        return isinstance(obj, Mapping) and obj.get("id") == subject
    if kind == "recording":
        obj = event.get("recording")
        return isinstance(obj, Mapping) and obj.get("name") == subject
    if kind == "endpoint":
        obj = event.get("endpoint")
        return isinstance(obj, Mapping) and f"{obj.get('technology')}/{obj.get('resource')}" == subject
    obj = event.get("device_state")
    return isinstance(obj, Mapping) and obj.get("name") == subject


def _summary(events: Sequence[Mapping[str, Any]], limit: int = 14) -> str:
    names = []
    for e in events:
        extra = ""
        if e.get("type") == "Dial":
            extra = f"({e.get('dialstatus')!r})"
        elif e.get("type") == "ChannelStateChange":
            extra = f"({(e.get('channel') or {}).get('state')})"
        elif e.get("type") == "ChannelVarset":
            extra = f"({e.get('variable')})"
        names.append(f"{e.get('type')}{extra}")
    if len(names) > limit:
        names = names[:limit] + [f"... {len(names) - limit} more"]
    return ", ".join(names) if names else "none"


def check_track(flow: str, track: Track, bindings: Mapping[str, Any],
                events: Sequence[Mapping[str, Any]]) -> list[str]:
    subject = bindings.get(track.role)
    if subject is None:
        return [f"[{flow}] role {track.role} was never bound (the flow did not get that far)"]
    mine = [e for e in events if concerns(e, track.kind, str(subject))]
    label = f"[{flow}] {track.role}={subject}"
    out: list[str] = []
    pos = 0
    matched: list[int] = []
    for ev in track.required:
        found = next((i for i in range(pos, len(mine)) if ev.matches(mine[i], bindings)), None)
        if found is None:
            after = f" after {track.required[len(matched) - 1].describe(bindings)}" if matched else ""
            anywhere = next((i for i in range(len(mine)) if ev.matches(mine[i], bindings)), None)
            hint = " (it came, but out of order)" if anywhere is not None else ""
            near = [e for e in mine if e.get("type") == ev.type]
            shown = f"; {ev.type} seen: {[_fields(e, ev) for e in near][:3]}" if near and anywhere is None else ""
            note = f" [{ev.note}]" if ev.note else ""
            out.append(f"{label}: missing {ev.describe(bindings)}{after}{hint}{note}{shown}; "
                       f"its events: {_summary(mine)}")
            break
        matched.append(found)
        pos = found + 1
    if track.first and track.required and matched and matched[0] != 0:
        out.append(f"{label}: first event must be {track.required[0].describe(bindings)}, "
                   f"got {_summary(mine[: matched[0] + 1])}")
    if track.last and track.required and len(matched) == len(track.required) and matched[-1] != len(mine) - 1:
        out.append(f"{label}: {track.required[-1].type} must be its last event, then came "
                   f"{_summary(mine[matched[-1] + 1:])}")
    for ev in track.forbidden:
        hits = [e for e in mine if ev.matches(e, bindings)]
        if hits:
            note = f" [{ev.note}]" if ev.note else ""
            out.append(f"{label}: must not receive {ev.describe(bindings)}{note}; got {len(hits)}")
    for kind in track.once:
        count = sum(1 for e in mine if e.get("type") == kind)
        if count > 1:
            out.append(f"{label}: {kind} {count} times; at most once in this flow")
    return out


def _fields(event: Mapping[str, Any], ev: Ev) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for path in ev.where:
        value = _get(event, path)
        shown[path] = "<absent>" if value is _MISSING else value
    return shown


def check_flow(spec: FlowSpec, bindings: Mapping[str, Any],
               streams: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    out: list[str] = []
    for track in spec.tracks:
        app = str(_resolve(track.app, bindings))
        out.extend(check_track(spec.name, track, bindings, streams.get(app, [])))
    return out


# --- invariants over a whole app stream -------------------------------------------------------------------
def check_stream_invariants(app: str, events: Iterable[Mapping[str, Any]], subscribe_all: bool,
                            fresh: Collection[str]) -> list[str]:
    """Rules that hold for every channel an app hears about, whatever the flow:
    - nothing about a channel after its ChannelDestroyed;
    - StasisEnd only after a StasisStart in this app, and never two StasisStart without a StasisEnd between;
    - a subscribeAll observer hears about each channel from its ChannelCreated on.
    Rules about a channel's beginning only apply to `fresh` channels, created during the run.
    """
    out: list[str] = []
    destroyed: set[str] = set()
    in_stasis: set[str] = set()
    seen: set[str] = set()
    reported: set[tuple[str, str]] = set()

    def once(key: tuple[str, str], text: str) -> None:
        if key not in reported:
            reported.add(key)
            out.append(text)

    for event in events:
        kind = event.get("type")
        for key in ("channel", "peer"):
            chan = event.get(key)
            if not isinstance(chan, Mapping) or not isinstance(chan.get("id"), str):
                continue
            cid = chan["id"]
            if cid in destroyed:
                once((cid, "after-destroyed"), f"[{app}] channel {cid}: {kind} after its ChannelDestroyed")
            if subscribe_all and cid in fresh and cid not in seen and kind != "ChannelCreated":
                once((cid, "created-first"), f"[{app}] (subscribeAll) channel {cid}: first event {kind}, "
                                             f"expected ChannelCreated")
            seen.add(cid)
        chan = event.get("channel")
        cid = chan.get("id") if isinstance(chan, Mapping) else None
        if not isinstance(cid, str):
            continue
        if kind == "ChannelDestroyed":
            destroyed.add(cid)
        elif kind == "StasisStart":
            if cid in in_stasis:
                once((cid, "double-start"), f"[{app}] channel {cid}: StasisStart while already in Stasis")
            in_stasis.add(cid)
        elif kind == "StasisEnd":
            if cid not in in_stasis and cid in fresh:
                once((cid, "end-without-start"), f"[{app}] channel {cid}: StasisEnd without StasisStart")
            in_stasis.discard(cid)
    return out


# --- the flows ----------------------------------------------------------------------------------------------
CHANNEL_ONCE = ("StasisStart", "StasisEnd", "ChannelDestroyed", "ChannelCreated")
NO_CREATED = Ev("ChannelCreated", note="the app is only subscribed once the channel enters Stasis or it "
                                       "originated it (NOTES §b1.1, §g)")
NO_BRIDGE_CREATED = Ev("BridgeCreated", note="no BridgeCreated for a bridge the app created over REST (NOTES §b, §g)")
NO_DESTROYED_DIALPLAN = Ev("ChannelDestroyed", note="StasisEnd unsubscribes the app from a dialplan-entered "
                                                    "channel (NOTES §b1.7.4)")
PJSIP_NAME = r"PJSIP/[^/]+-[0-9a-f]{8}"
SOFT_HANGUP = {"soft": True, "cause": 32}

INBOUND_START = Ev("StasisStart", {
    "channel.state": "Ring",
    "channel.dialplan.app_name": "Stasis",
    "channel.dialplan.exten": "$DID",
    "args": ["inbound", "$DID"],
    "channel.name": Matches(PJSIP_NAME),
    "channel.caller.number": "$CALLER_NUMBER",
}, note="NOTES §b1.1 / §f example 1")
ANSWERED = Ev("ChannelStateChange", {"channel.state": "Up"}, note="NOTES §b1.2")


def entered_holding(bridge: str, member: str) -> Ev:
    return Ev("ChannelEnteredBridge", {
        "bridge.id": bridge, "bridge.technology": "holding_bridge", "bridge.bridge_type": "holding",
        "bridge.bridge_class": "stasis", "bridge.creator": "Stasis", "bridge.channels": Contains(member),
        "channel.id": member,
    }, note="NOTES §b1.4 / §f example 2")


def entered_mixing(bridge: str, member: str) -> Ev:
    return Ev("ChannelEnteredBridge", {
        "bridge.id": bridge, "bridge.bridge_type": "mixing", "bridge.bridge_class": "stasis",
        "bridge.creator": "Stasis", "bridge.channels": Contains(member), "channel.id": member,
    }, note="NOTES §b1.6")


def originated_until_stasis(agent_res: str = "$AGENT_RES", args: Any = None) -> tuple[Ev, ...]:
    """An originated leg up to StasisStart: Dial(""), Ringing, Dial(RINGING), Up, Dial(ANSWER), STASISSTATUS,
    StasisStart only after answer (NOTES §b1.5, §e.4, §g)."""
    start_where: dict[str, Any] = {"channel.state": "Up", "channel.dialplan.app_name": "Stasis"}
    if args is not None:
        start_where["args"] = args
    return (
        Ev("Dial", {"dialstatus": "", "dialstring": agent_res, "forward": "", "caller": ABSENT,
                    "peer.state": "Down", "peer.dialplan.app_name": "AppDial2",
                    "peer.dialplan.app_data": "(Outgoing Line)", "peer.name": Matches(PJSIP_NAME)},
           note="NOTES §b1.5.1, §g: no caller for an ARI originate"),
        Ev("ChannelStateChange", {"channel.state": "Ringing"}, note="NOTES §b1.5.2"),
        Ev("Dial", {"dialstatus": "RINGING"}, note="NOTES §b1.5.2"),
        Ev("ChannelStateChange", {"channel.state": "Up"}, note="NOTES §b1.5.3"),
        Ev("Dial", {"dialstatus": "ANSWER"}, note="NOTES §b1.5.3"),
        Ev("ChannelVarset", {"variable": "STASISSTATUS", "value": ""}, note="NOTES §b1.5.4, §e.4"),
        Ev("StasisStart", start_where, note="StasisStart only after answer (NOTES §b1.5.4)"),
    )


def _b1_caller_hangs_up() -> FlowSpec:
    return FlowSpec("b1-caller-hangs-up", "NOTES §b1 (steps 1-8)", (
        Track("C", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            INBOUND_START,
            ANSWERED,
            entered_holding("$H", "$C"),
            Ev("ChannelLeftBridge", {"bridge.id": "$H", "channel.id": "$C"}, note="NOTES §b1.6"),
            entered_mixing("$M", "$C"),
            Ev("ChannelVarset", {"variable": "BRIDGEPEER", "value": "$A_NAME"}, note="NOTES §b1.6.2"),
            Ev("ChannelConnectedLine", {"channel.connected.name": "Conformance", "channel.connected.number": "2000"},
               note="NOTES §b1.6.3: C now shows the agent leg's caller id (originate callerId 'Conformance <2000>')"),
            Ev("ChannelVarset", {"variable": "RTPAUDIOQOS"}, note="NOTES §b1.7.1"),
            Ev("ChannelHangupRequest", {"cause": 16, "soft": ABSENT}, note="NOTES §b1.7.2: far-end hangup"),
            Ev("ChannelVarset", {"variable": "BRIDGEPEER", "value": ""}, note="NOTES §b1.7.3"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M", "channel.id": "$C"}, note="NOTES §b1.7.3"),
            Ev("StasisEnd", note="NOTES §b1.7.3"),
        ), forbidden=(NO_CREATED, Ev("ChannelDialplan", note="NOTES §b1.1"), NO_DESTROYED_DIALPLAN)),
        Track("A", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            *originated_until_stasis(args=["agent", "$CALL"]),
            entered_mixing("$M", "$A"),
            Ev("ChannelVarset", {"variable": "BRIDGEPEER", "value": "$C_NAME"}, note="NOTES §b1.6.2"),
            Ev("ChannelConnectedLine", {"channel.connected.number": "$CALLER_NUMBER"},
               note="the agent leg shows the caller's number once bridged"),
            Ev("ChannelHangupRequest", SOFT_HANGUP, note="NOTES §b1.8.1, §g: DELETE is a soft hangup"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M", "channel.id": "$A"}, note="NOTES §b1.8.2"),
            Ev("StasisEnd", note="NOTES §b1.8.2"),
            Ev("ChannelVarset", {"variable": "STASISSTATUS", "value": "SUCCESS"}, note="NOTES §b1.8.2"),
            Ev("ChannelVarset", {"variable": "RTPAUDIOQOS"}, note="NOTES §b1.8.2"),
            Ev("ChannelDestroyed", {"cause": 16, "cause_txt": "Normal Clearing",
                                    "channel.dialplan.app_name": "AppDial2"}, note="NOTES §b1.8.3, §f example 3"),
        ), forbidden=(NO_CREATED,)),
        Track("H", "bridge", forbidden=(NO_BRIDGE_CREATED,)),
        Track("M", "bridge", last=True, once=("BridgeDestroyed",), required=(
            Ev("ChannelEnteredBridge", {"channel.id": "$C"}, note="NOTES §b1.6.1: C then A"),
            Ev("ChannelEnteredBridge", {"channel.id": "$A", "bridge.channels": Contains("$C")},
               note="NOTES §b1.6.1"),
            Ev("ChannelLeftBridge", {"channel.id": "$C"}),
            Ev("ChannelLeftBridge", {"channel.id": "$A"}),
            Ev("BridgeDestroyed", {"bridge.channels": []}, note="NOTES §b1.8"),
        ), forbidden=(NO_BRIDGE_CREATED,)),
    ))


def _b1_agent_hangs_up() -> FlowSpec:
    return FlowSpec("b1-agent-hangs-up", "NOTES §b1 (mirror case) and §b1.7.4 (explicit channel subscription)", (
        Track("C", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            INBOUND_START,
            ANSWERED,
            entered_mixing("$M", "$C"),
            Ev("ChannelHangupRequest", SOFT_HANGUP, note="NOTES §g: DELETE is a soft hangup"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M", "channel.id": "$C"}),
            Ev("StasisEnd"),
            Ev("ChannelDestroyed", {"cause": 16, "cause_txt": "Normal Clearing"},
               note="delivered because the app subscribed to channel:C (NOTES §b1.7.4)"),
        ), forbidden=(NO_CREATED,)),
        Track("A", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            *originated_until_stasis(args=["agent", "$CALL"]),
            entered_mixing("$M", "$A"),
            Ev("ChannelHangupRequest", {"cause": 16, "soft": ABSENT}, note="NOTES §b1 mirror: far-end hangup"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M", "channel.id": "$A"}),
            Ev("StasisEnd"),
            Ev("ChannelDestroyed", {"cause": 16, "cause_txt": "Normal Clearing"}),
        ), forbidden=(NO_CREATED,)),
        Track("M", "bridge", last=True, required=(
            Ev("ChannelEnteredBridge", {"channel.id": "$C"}),
            Ev("ChannelEnteredBridge", {"channel.id": "$A"}),
            Ev("ChannelLeftBridge", {"channel.id": "$A"}),
            Ev("ChannelLeftBridge", {"channel.id": "$C"}),
            Ev("BridgeDestroyed", {"bridge.channels": []}),
        ), forbidden=(NO_BRIDGE_CREATED,)),
    ))


def _b2_caller_abandons() -> FlowSpec:
    return FlowSpec("b2-caller-abandons", "NOTES §b2", (
        Track("C", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            INBOUND_START,
            ANSWERED,
            entered_holding("$H", "$C"),
            Ev("ChannelHangupRequest", {"cause": 16, "soft": ABSENT}, note="NOTES §b2.1"),
            Ev("ChannelLeftBridge", {"bridge.id": "$H", "channel.id": "$C"}, note="NOTES §b2.1"),
            Ev("StasisEnd", note="NOTES §b2.1"),
        ), forbidden=(NO_CREATED, NO_DESTROYED_DIALPLAN)),
        Track("A", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            *originated_until_stasis()[:3],
            Ev("ChannelHangupRequest", SOFT_HANGUP, note="NOTES §b2.2"),
            Ev("Dial", {"dialstatus": "NOANSWER"}, note="NOTES §b2.2: cause 16 maps to NOANSWER (main/dial.c)"),
            Ev("ChannelDestroyed", {"cause": 16, "cause_txt": "Normal Clearing"}, note="NOTES §b2.2"),
        ), forbidden=(NO_CREATED, Ev("StasisStart", note="never answered (NOTES §b2.2, §e.4)"),
                      Ev("StasisEnd", note="never answered (NOTES §b2.2)"))),
        Track("H", "bridge", forbidden=(NO_BRIDGE_CREATED,)),
    ))


def _agent_no_answer() -> FlowSpec:
    # main/dial.c handle_timeout_trip() hangs the leg up without publishing a final Dial and with hangup cause
    # 0 (asterisk#963, NOTES §b2.3); a phone that gives up by itself would give NOANSWER / 19 instead.
    return FlowSpec("agent-no-answer", "NOTES §b2.3, §e.4, main/dial.c handle_timeout_trip", (
        Track("A", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            *originated_until_stasis()[:3],
            Ev("ChannelDestroyed", {"cause": OneOf((0, 19)), "cause_txt": OneOf(("Unknown", "User alerting, no answer"))},
               note="originate timeout: cause 0 'Unknown' (asterisk#963) or 19"),
        ), forbidden=(NO_CREATED, Ev("StasisStart", note="an unanswered leg never enters Stasis (NOTES §e.4)"),
                      Ev("Dial", {"dialstatus": OneOf(("ANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL"))}))),
    ))


def _agent_busy() -> FlowSpec:
    return FlowSpec("agent-busy", "NOTES §b2.3, §e.4, §e.11", (
        Track("A", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            originated_until_stasis()[0],
            Ev("Dial", {"dialstatus": "BUSY"}, note="NOTES §b2.3"),
            Ev("ChannelDestroyed", {"cause": 17, "cause_txt": "User busy"}, note="NOTES §b2.3"),
        ), forbidden=(NO_CREATED, Ev("StasisStart", note="NOTES §e.4"),
                      Ev("ChannelStateChange", {"channel.state": "Up"}))),
    ))


def _outbound_calls() -> FlowSpec:
    return FlowSpec("outbound-calls", "NOTES §a (talk detection), §b2.3, §e.11; main/dial.c", (
        Track("A", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            Ev("Dial", {"dialstatus": "", "dialstring": "$DIALSTRING", "caller": ABSENT}),
            Ev("Dial", {"dialstatus": "CONGESTION"}, note="cause 34 maps to CONGESTION"),
            Ev("ChannelDestroyed", {"cause": 34, "cause_txt": "Circuit/channel congestion"},
               note="SIP 503 is AST_CAUSE_CONGESTION"),
        ), forbidden=(NO_CREATED, Ev("StasisStart", note="an unanswered leg never enters Stasis (NOTES §e.4)"))),
        Track("B", "channel", first=True, last=True, once=(*CHANNEL_ONCE, "ChannelTalkingStarted"), required=(
            Ev("Dial", {"dialstatus": "", "dialstring": "$DIALSTRING_B", "caller": ABSENT}),
            Ev("Dial", {"dialstatus": "ANSWER"}),
            Ev("StasisStart", {"channel.state": "Up", "args": ["outbound"]}, note="only after answer (NOTES §e.4)"),
            Ev("ChannelTalkingStarted", note="only once TALK_DETECT(set) is on the channel (NOTES §a)"),
            Ev("ChannelTalkingFinished"),
            Ev("ChannelHangupRequest", SOFT_HANGUP),
            Ev("StasisEnd"),
            Ev("ChannelDestroyed"),
        ), forbidden=(NO_CREATED,)),
    ))


def _b3_blind_transfer() -> FlowSpec:
    return FlowSpec("b3-blind-transfer", "NOTES §b3 (iii): ARI-driven, no Bridge*Transfer events", (
        Track("C", "channel", first=True, once=CHANNEL_ONCE, required=(
            INBOUND_START, ANSWERED, entered_mixing("$M", "$C"),
        ), forbidden=(NO_CREATED, Ev("BridgeBlindTransfer", note="NOTES §b3 (iii)"))),
        Track("A", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            *originated_until_stasis(args=["agent", "$CALL"]),
            entered_mixing("$M", "$A"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M", "channel.id": "$A"}, note="removeChannel"),
            Ev("ChannelHangupRequest", SOFT_HANGUP),
            Ev("StasisEnd"),
            Ev("ChannelDestroyed", {"cause": 26, "cause_txt": "Answered elsewhere"},
               note="DELETE ?reason=answered_elsewhere sets hangup cause 26 (resource_channels.c)"),
        ), forbidden=(NO_CREATED,)),
        Track("T", "channel", first=True, once=CHANNEL_ONCE, required=(
            *originated_until_stasis(agent_res="$TARGET_RES", args=["transfer", "$CALL"]),
            entered_mixing("$M", "$T"),
        ), forbidden=(NO_CREATED,)),
        Track("M", "bridge", required=(
            Ev("ChannelEnteredBridge", {"channel.id": "$C"}),
            Ev("ChannelEnteredBridge", {"channel.id": "$A"}),
            Ev("ChannelLeftBridge", {"channel.id": "$A"}),
            Ev("ChannelEnteredBridge", {"channel.id": "$T", "bridge.channels": Contains("$C")}),
        ), forbidden=(NO_BRIDGE_CREATED, Ev("BridgeBlindTransfer"))),
    ))


LOCAL_ONE = r"Local/[^/@]+@[^/]+-[0-9a-f]{8};1"
LOCAL_TWO = r"Local/[^/@]+@[^/]+-[0-9a-f]{8};2"


def _b3_blind_transfer_phone() -> FlowSpec:
    # The phone REFERs with PJSIP's default transfer handling: Asterisk does the transfer with a Local pair
    # whose ;1 half takes A's place in M and in the app (testsuite blind_transfer/stasis_bridge_to_same_stasis_app).
    return FlowSpec("b3-blind-transfer-phone", "NOTES §b3 (i), testsuite external_interaction/blind_transfer", (
        Track("A", "channel", first=True, last=True, once=(*CHANNEL_ONCE, "BridgeBlindTransfer"), required=(
            *originated_until_stasis(args=["agent", "$CALL"]),
            entered_mixing("$M", "$A"),
            Ev("BridgeBlindTransfer", {"channel.id": "$A", "transferee.id": "$C", "replace_channel.id": "$L1",
                                       "replace_channel.name": Matches(LOCAL_ONE), "exten": "2000",
                                       "context": "from-internal", "result": "Success", "is_external": True,
                                       "bridge.id": "$M"}, note="NOTES §b3 (i)"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M", "channel.id": "$A"}),
            Ev("StasisEnd", note="NOTES §b3 (i): A leaves the app"),
            Ev("ChannelDestroyed", note="then the REFER flow hangs A up; the app originated A, so it hears of it"),
        ), forbidden=(NO_CREATED,)),
        Track("L1", "channel", first=True, once=CHANNEL_ONCE, required=(
            Ev("StasisStart", {"replace_channel.id": "$A", "args": [], "channel.name": Matches(LOCAL_ONE)},
               note="the ;1 half enters the same app in A's place (NOTES §b3 (i))"),
            Ev("ChannelEnteredBridge", {"bridge.id": "$M", "channel.id": "$L1"}),
        ), forbidden=(NO_CREATED,)),
        Track("L2", "channel", first=True, once=CHANNEL_ONCE, required=(
            Ev("StasisStart", {"channel.name": Matches(LOCAL_TWO), "channel.dialplan.app_name": "Stasis",
                               "channel.dialplan.exten": "2000", "channel.dialplan.context": "from-internal"},
               note="the ;2 half runs 2000@from-internal, whose dialplan calls Stasis() (NOTES §b3 (i))"),
        ), forbidden=(NO_CREATED,)),
        Track("M", "bridge", once=("BridgeBlindTransfer",), required=(
            Ev("BridgeBlindTransfer"),
            Ev("ChannelLeftBridge", {"channel.id": "$A"}),
            Ev("ChannelEnteredBridge", {"channel.id": "$L1", "bridge.channels": Contains("$C")},
               note="the swap: A out, Local ;1 in, the transferee still there (stasis_bridge.c)"),
        ), forbidden=(NO_BRIDGE_CREATED,)),
    ))


def _b4_attended_transfer_phone() -> FlowSpec:
    return FlowSpec("b4-attended-transfer-phone",
                    "NOTES §b4 (i), testsuite attended_transfer/stasis_bridge_to_stasis_bridge", (
        Track("A", "channel", first=True, last=True, once=(*CHANNEL_ONCE, "BridgeAttendedTransfer"), required=(
            *originated_until_stasis(args=["agent", "$CALL"]),
            entered_mixing("$M", "$A"),
            Ev("BridgeAttendedTransfer", {
                "transferer_first_leg.id": "$A", "transferer_first_leg_bridge.id": "$M",
                "transferer_second_leg.id": "$A2", "transferer_second_leg_bridge.id": "$M2",
                "transferee.id": "$C", "transfer_target.id": "$D", "destination_type": "link",
                "destination_link_first_leg.id": "$L1", "destination_link_first_leg.name": Matches(LOCAL_ONE),
                "destination_link_second_leg.id": "$L2", "destination_link_second_leg.name": Matches(LOCAL_TWO),
                "result": "Success", "is_external": True}, note="NOTES §b4 (i).1"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M", "channel.id": "$A"}, note="NOTES §b4 (i).2"),
            Ev("StasisEnd", note="NOTES §b4 (i).2"),
            Ev("ChannelDestroyed", note="the phone then hangs the leg up; the app originated A"),
        ), forbidden=(NO_CREATED,)),
        Track("A2", "channel", first=True, once=CHANNEL_ONCE, required=(
            INBOUND_START, ANSWERED,
            entered_mixing("$M2", "$A2"),
            Ev("BridgeAttendedTransfer"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M2", "channel.id": "$A2"}, note="NOTES §b4 (i).3"),
            Ev("StasisEnd", note="NOTES §b4 (i).3"),
        ), forbidden=(NO_CREATED, NO_DESTROYED_DIALPLAN)),
        Track("L1", "channel", first=True, once=CHANNEL_ONCE, required=(
            Ev("StasisStart", {"replace_channel.id": "$A", "channel.name": Matches(LOCAL_ONE)}, note="NOTES §b4 (i).2"),
            Ev("ChannelEnteredBridge", {"bridge.id": "$M", "channel.id": "$L1"}),
        ), forbidden=(NO_CREATED,)),
        Track("L2", "channel", first=True, once=CHANNEL_ONCE, required=(
            Ev("StasisStart", {"replace_channel.id": "$A2", "channel.name": Matches(LOCAL_TWO)}, note="NOTES §b4 (i).3"),
            Ev("ChannelEnteredBridge", {"bridge.id": "$M2", "channel.id": "$L2"}),
        ), forbidden=(NO_CREATED,)),
        Track("M", "bridge", required=(
            Ev("BridgeAttendedTransfer"),
            Ev("ChannelLeftBridge", {"channel.id": "$A"}),
            Ev("ChannelEnteredBridge", {"channel.id": "$L1", "bridge.channels": Contains("$C")}),
        ), forbidden=(NO_BRIDGE_CREATED, Ev("BridgeMerged", note="two Stasis bridges are linked, not merged"))),
        Track("M2", "bridge", required=(
            Ev("BridgeAttendedTransfer"),
            Ev("ChannelLeftBridge", {"channel.id": "$A2"}),
            Ev("ChannelEnteredBridge", {"channel.id": "$L2", "bridge.channels": Contains("$D")}),
        ), forbidden=(NO_BRIDGE_CREATED, Ev("BridgeMerged"))),
    ))


def _b4_attended_transfer() -> FlowSpec:
    return FlowSpec("b4-attended-transfer", "NOTES §b4 (ii): ARI-native consult, plain bridge events only", (
        Track("C", "channel", first=True, once=CHANNEL_ONCE, required=(
            INBOUND_START, ANSWERED,
            entered_mixing("$M", "$C"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M", "channel.id": "$C"}, note="consult: C to hold"),
            entered_holding("$H", "$C"),
            Ev("ChannelLeftBridge", {"bridge.id": "$H", "channel.id": "$C"}),
            Ev("ChannelEnteredBridge", {"bridge.id": "$M", "channel.id": "$C"}, note="complete: C back to M"),
        ), forbidden=(NO_CREATED, Ev("BridgeAttendedTransfer", note="NOTES §b4 (ii)"))),
        Track("A", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            *originated_until_stasis(args=["agent", "$CALL"]),
            entered_mixing("$M", "$A"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M", "channel.id": "$A"}),
            entered_mixing("$M2", "$A"),
            Ev("ChannelHangupRequest", SOFT_HANGUP),
            Ev("ChannelLeftBridge", {"bridge.id": "$M2", "channel.id": "$A"}),
            Ev("StasisEnd"),
            Ev("ChannelDestroyed", {"cause": 16}),
        ), forbidden=(NO_CREATED,)),
        Track("T", "channel", first=True, once=CHANNEL_ONCE, required=(
            *originated_until_stasis(agent_res="$TARGET_RES", args=["consult", "$CALL"]),
            entered_mixing("$M2", "$T"),
            Ev("ChannelLeftBridge", {"bridge.id": "$M2", "channel.id": "$T"}),
            entered_mixing("$M", "$T"),
        ), forbidden=(NO_CREATED,)),
        Track("M2", "bridge", last=True, required=(
            Ev("ChannelEnteredBridge", {"channel.id": "$T"}),
            Ev("ChannelEnteredBridge", {"channel.id": "$A", "bridge.channels": Contains("$T")}),
            Ev("BridgeDestroyed", {"bridge.channels": []}),
        ), forbidden=(NO_BRIDGE_CREATED, Ev("BridgeAttendedTransfer"), Ev("BridgeMerged"))),
    ))


def _b5_snoop() -> FlowSpec:
    return FlowSpec("b5-snoop", "NOTES §b5, testsuite channels/snoop_spy", (
        Track("S", "channel", first=True, last=True, once=CHANNEL_ONCE, required=(
            Ev("StasisStart", {"args": ["snoop", "$SID"], "channel.name": Matches(r"Snoop/{A}-[0-9a-f]{{8}}", fmt=True),
                               "channel.state": "Up"}, note="NOTES §b5.2, §g"),
            entered_mixing("$SB", "$S"),
            Ev("ChannelLeftBridge", {"bridge.id": "$SB", "channel.id": "$S"},
               note="the spied channel hung up, so the snoop channel is hung up too (NOTES §b5.6)"),
            Ev("StasisEnd", note="NOTES §b5.6"),
        ), forbidden=(NO_CREATED, Ev("Dial", note="a snoop channel is not dialed"),
                      Ev("ChannelDestroyed", note="a snoop channel enters Stasis like a dialplan channel: StasisEnd "
                                                  "unsubscribes the app unless it subscribed (NOTES §b5.6, §b1.7.4)"))),
        Track("W", "channel", first=True, once=CHANNEL_ONCE, required=(
            Ev("StasisStart", {"args": ["whisper", "$SID"], "channel.name": Matches(r"Snoop/{A}-[0-9a-f]{{8}}", fmt=True)},
               note="NOTES §b5.5 whisper=out"),
            Ev("ChannelHangupRequest", SOFT_HANGUP),
            Ev("StasisEnd", note="NOTES §b5.6: DELETE /channels/{snoop}"),
        ), forbidden=(NO_CREATED, NO_DESTROYED_DIALPLAN)),
        Track("SUP", "channel", first=True, once=CHANNEL_ONCE, required=(
            *originated_until_stasis(agent_res="$SUP_RES", args=["supervisor", "$SID"]),
            entered_mixing("$SB", "$SUP"),
        ), forbidden=(NO_CREATED,)),
    ))


def _b6_bridge_recording() -> FlowSpec:
    return FlowSpec("b6-bridge-recording", "NOTES §b6, testsuite bridges/bridge_record", (
        Track("REC", "recording", first=True, last=True, once=("RecordingStarted", "RecordingFinished"), required=(
            Ev("RecordingStarted", {"recording.state": "recording", "recording.format": "wav",
                                    "recording.target_uri": Fmt("bridge:{M}")}, note="NOTES §b6"),
            Ev("RecordingFinished", {"recording.state": "done", "recording.target_uri": Fmt("bridge:{M}")},
               note="NOTES §b6: stop keeps the file"),
        ), forbidden=(Ev("RecordingFailed"),)),
        Track("M", "bridge", forbidden=(
            Ev("ChannelEnteredBridge", {"channel.name": Matches(r"Recorder/.*")},
               note="the Recorder channel's events are suppressed (NOTES §b6)"),
            NO_BRIDGE_CREATED)),
        Track("CANCELLED", "recording", required=(
            Ev("RecordingStarted", {"recording.target_uri": Fmt("bridge:{M}")}),
        )),
    ))


def _channel_recording() -> FlowSpec:
    return FlowSpec("channel-recording", "NOTES §b6 (per-channel), §c", (
        Track("REC", "recording", first=True, last=True, once=("RecordingStarted", "RecordingFinished"), required=(
            Ev("RecordingStarted", {"recording.state": "recording", "recording.target_uri": Fmt("channel:{C}")}),
            Ev("RecordingFinished", {"recording.state": "done", "recording.target_uri": Fmt("channel:{C}")}),
        ), forbidden=(Ev("RecordingFailed"),)),
        _channel_recording_bridged(),
        Track("CB", "bridge", last=True, once=("BridgeDestroyed",), required=(
            Ev("ChannelEnteredBridge", {"channel.id": "$C"}),
            Ev("ChannelLeftBridge", {"channel.id": "$C", "bridge.channels": []},
               note="DELETE /bridges/{id} puts its channels out first"),
            Ev("BridgeDestroyed", {"bridge.channels": []}),
        ), forbidden=(NO_BRIDGE_CREATED,)),
    ))


def _channel_recording_bridged() -> Track:
    return Track("BRIDGED", "recording", first=True, last=True, required=(
        Ev("RecordingFailed", {"recording.state": "failed", "recording.cause": "Cannot record channel while in bridge",
                               "recording.target_uri": Fmt("channel:{C}")},
           note="record_file() refuses a bridged channel (res_stasis_recording.c, asterisk#2044)"),
    ), forbidden=(Ev("RecordingStarted"),))


def _playback() -> FlowSpec:
    return FlowSpec("playback", "NOTES §b1.3", (
        Track("P1", "playback", first=True, last=True, once=("PlaybackStarted", "PlaybackFinished"), required=(
            Ev("PlaybackStarted", {"playback.state": "playing", "playback.target_uri": Fmt("channel:{C}"),
                                   "playback.media_uri": "sound:hello-world"}, note="NOTES §b1.3"),
            Ev("PlaybackFinished", {"playback.state": "done", "playback.target_uri": Fmt("channel:{C}")},
               note="NOTES §b1.3"),
        )),
        Track("P3", "playback", first=True, last=True, once=("PlaybackStarted", "PlaybackFinished"), required=(
            Ev("PlaybackStarted", {"playback.state": "playing", "playback.target_uri": Fmt("bridge:{M}")}),
            Ev("PlaybackFinished", {"playback.target_uri": Fmt("bridge:{M}")}),
        )),
        Track("P4", "playback", first=True, last=True, once=("PlaybackFinished",), required=(
            Ev("PlaybackStarted", {"playback.state": "playing"}),
            Ev("PlaybackStarted", {"playback.state": "playing"},
               note="unpause publishes 'playing' again (res_stasis_playback.c playback_unpause)"),
            Ev("PlaybackFinished", {"playback.state": "done"}, note="DELETE /playbacks/{id} stops it"),
        ), forbidden=(Ev("PlaybackContinuing"),)),
    ))


def _playback_multi() -> FlowSpec:
    return FlowSpec("playback-multi", "res_stasis_playback.c, res_ari_channels.c (media parameter)", (
        # res_stasis_playback.c play_on_channel(): per media a "playing" update (PlaybackStarted), then after each
        # media but the last a "continuing" one for the media just played (PlaybackContinuing), then "done".
        Track("P2", "playback", first=True, last=True, once=("PlaybackContinuing", "PlaybackFinished"), required=(
            Ev("PlaybackStarted", {"playback.state": "playing", "playback.media_uri": "sound:tt-monkeys",
                                   "playback.next_media_uri": "digits:12"}),
            Ev("PlaybackContinuing", {"playback.state": "continuing", "playback.media_uri": "sound:tt-monkeys",
                                      "playback.next_media_uri": "digits:12"},
               note="playback_final_update() runs before media_index moves on"),
            Ev("PlaybackStarted", {"playback.state": "playing", "playback.media_uri": "digits:12",
                                   "playback.next_media_uri": ABSENT},
               note="playback_first_update() publishes 'playing' for every media"),
            Ev("PlaybackFinished", {"playback.state": "done", "playback.media_uri": "digits:12"}),
        )),
        Track("P5", "playback", first=True, last=True, once=("PlaybackStarted", "PlaybackFinished"), required=(
            Ev("PlaybackStarted", {"playback.media_uri": "digits:42", "playback.next_media_uri": ABSENT},
               note="a repeated media parameter keeps only the last value"),
            Ev("PlaybackFinished", {"playback.state": "done"}),
        )),
    ))


def _dtmf_hold() -> FlowSpec:
    return FlowSpec("dtmf-hold", "NOTES §a (ChannelDtmfReceived: on DTMF end; ChannelHold: channel-initiated)", (
        # once: POST /channels/{id}/hold is an indication to the far end and gives no ChannelHold (NOTES §c).
        Track("C", "channel", first=True, last=True, once=(*CHANNEL_ONCE, "ChannelHold", "ChannelUnhold"), required=(
            INBOUND_START, ANSWERED,
            Ev("ChannelDtmfReceived", {"digit": "5"}),
            Ev("ChannelDtmfReceived", {"digit": "#"}),
            Ev("ChannelHold", note="the far end put the call on hold"),
            Ev("ChannelUnhold"),
            Ev("ChannelVarset", {"variable": "CS_MARK", "value": "1"},
               note="POST /channels/{id}/variable goes through pbx_builtin_setvar_helper, which publishes it"),
            Ev("ChannelCallerId", {"channel.caller.name": "Renamed Caller"},
               note="CALLERID(name) write: func_callerid -> ast_channel_set_caller_event -> ChannelCallerId"),
            Ev("ChannelUserevent", {"eventname": "cs-conformance"}, note="POST /events/user/{eventName}"),
            Ev("ChannelHangupRequest", SOFT_HANGUP),
            Ev("StasisEnd"),
        ), forbidden=(
            NO_CREATED, NO_DESTROYED_DIALPLAN,
            Ev("ChannelDtmfReceived", {"digit": OneOf(("7", "8", "9"))},
               note="DTMF the app sends to the far end is not 'received'"),
        )),
    ))


def _create_dial() -> FlowSpec:
    return FlowSpec("create-dial", "NOTES §c (create/dial), §e.4", (
        Track("A", "channel", first=True, once=CHANNEL_ONCE, required=(
            Ev("ChannelVarset", {"variable": "STASISSTATUS", "value": ""},
               note="ari_channel_thread runs the Stasis() application, whose app_exec sets it first"),
            Ev("StasisStart", {"channel.state": "Down", "args": ["created", "$CALL"]},
               note="POST /channels/create: StasisStart at once, in state Down (NOTES §e.4)"),
            Ev("Dial", {"dialstatus": "", "caller.id": "$C", "peer.id": "$A"},
               note="Dial events carry caller when it is given (NOTES §c)"),
            Ev("Dial", {"dialstatus": "RINGING", "caller.id": "$C"}),
            Ev("Dial", {"dialstatus": "ANSWER", "caller.id": "$C"}),
        ), forbidden=(NO_CREATED,)),
    ))


def _endpoint_state() -> FlowSpec:
    # res_pjsip persistent_endpoint_update_state(): peer_status Reachable/Unreachable, the endpoint snapshot's
    # state online/offline, and a device state change for PJSIP/<resource>.
    return FlowSpec("endpoint-state", "res_pjsip/pjsip_configuration.c persistent_endpoint_update_state", (
        Track("EP", "endpoint", required=(
            Ev("ContactStatusChange", {"contact_info.contact_status": OneOf(("Removed", "Unreachable"))}),
            Ev("PeerStatusChange", {"peer.peer_status": "Unreachable", "endpoint.state": "offline"}),
            Ev("ContactStatusChange", {"contact_info.contact_status": OneOf(("Reachable", "NonQualified", "Unknown"))}),
            Ev("PeerStatusChange", {"peer.peer_status": "Reachable", "endpoint.state": "online"}),
        )),
        Track("EP", "endpoint", required=(
            Ev("EndpointStateChange", {"endpoint.state": "offline"}),
            Ev("EndpointStateChange", {"endpoint.state": "online"}),
        )),
        Track("DEV", "device", required=(
            Ev("DeviceStateChanged", {"device_state.state": "UNAVAILABLE"}),
            Ev("DeviceStateChanged", {"device_state.state": "NOT_INUSE"}),
        )),
    ))


def _move_continue() -> FlowSpec:
    return FlowSpec("move-continue", "NOTES §b3 (iii): continue, move, ApplicationMoveFailed", (
        # last: once the channel has moved, the first app hears nothing more about it.
        Track("C", "channel", first=True, last=True, once=("ChannelCreated", "ApplicationMoveFailed"), required=(
            INBOUND_START, ANSWERED,
            Ev("ApplicationMoveFailed", {"destination": "$NO_APP", "channel.id": "$C", "args": []},
               note="move to an app that is not registered"),
            Ev("StasisEnd", note="move: StasisEnd in this app"),
        ), forbidden=(NO_CREATED,)),
        Track("C", "channel", app="$APP2", first=True, last=True, required=(
            Ev("StasisStart", {"args": ["moved", "$CALL"]}, note="move: StasisStart in the other app"),
            Ev("StasisEnd", note="continue: StasisEnd, then the dialplan has the channel"),
        )),
    ))


def _observer() -> FlowSpec:
    # subscribeAll=true subscribes the app to every channel and bridge topic (NOTES §e), so it hears about the
    # channels of other apps from creation to destruction, and about bridges from BridgeCreated
    # (res/stasis/app.c sub_bridge_update_handler sends BridgeCreated for a snapshot without predecessor).
    return FlowSpec("observer-subscribeAll", "NOTES §a, §d (subscribeAll), res/stasis/app.c", (
        Track("C", "channel", app="$OBSERVER", first=True, last=True, once=CHANNEL_ONCE, required=(
            Ev("ChannelCreated"),
            Ev("ChannelDialplan", {"dialplan_app": "Stasis"}, note="the caller's dialplan reaches Stasis()"),
            Ev("ChannelDestroyed"),
        ), forbidden=(Ev("StasisStart", note="StasisStart goes to the app the channel enters only"),)),
        Track("A", "channel", app="$OBSERVER", first=True, last=True, once=CHANNEL_ONCE, required=(
            Ev("ChannelCreated"),
            Ev("ChannelDestroyed"),
        ), forbidden=(Ev("StasisStart"),)),
        Track("M", "bridge", app="$OBSERVER", first=True, last=True, required=(
            Ev("BridgeCreated"),
            Ev("BridgeDestroyed"),
        )),
    ))


FLOWS: dict[str, FlowSpec] = {spec.name: spec for spec in (
    _b1_caller_hangs_up(), _b1_agent_hangs_up(), _b2_caller_abandons(), _agent_no_answer(), _agent_busy(),
    _outbound_calls(),
    _b3_blind_transfer(), _b4_attended_transfer(), _b3_blind_transfer_phone(), _b4_attended_transfer_phone(),
    _b5_snoop(), _b6_bridge_recording(), _channel_recording(),
    _playback(), _playback_multi(), _dtmf_hold(), _create_dial(), _endpoint_state(), _move_continue(), _observer(),
)}
