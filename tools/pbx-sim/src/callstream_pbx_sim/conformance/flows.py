"""Each call-center flow driven with the plain ARI client, as an application would drive Asterisk.

A flow does what an ARI application does (REST calls, waiting for events) and asks the simulator's control
API to play the far end (a caller calling, hanging up, pressing keys; a phone answering, ringing out, being
busy, unregistering). It binds the ids of its subjects to the roles of its `FlowSpec` in sequences.py; the
order of the events is judged afterwards, on everything the WebSocket delivered. Flow-level facts that are
not about order (an HTTP status Asterisk would give, a field of a response) are checked on the spot.

Flows that only touch their own channels and bridges run concurrently; the ones that act on the WebSocket
itself (ApplicationReplaced, a dropped connection) run alone at the end.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .client import AriClient, EventConnection, FlowError, Predicate, Recorder, SimControl

WAIT = 10.0  # seconds to wait for an event a flow needs
SETTLE = 4.0  # seconds to wait for an event whose absence the sequence check will report anyway

PJSIP_NAME_RE = re.compile(r"^PJSIP/[^/]+-[0-9a-f]{8}$")


def seg(value: str) -> str:
    """One path segment: Asterisk's router splits on '/' and then URI-decodes each segment, so a device
    name like PJSIP/1001 travels as PJSIP%2F1001."""
    return quote(value, safe="")


def _dig(event: Mapping[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def about(kind: str, channel: str | None = None, bridge: str | None = None,
          **fields: Any) -> Predicate:
    """Event of type `kind` about a channel (its `channel` or Dial's `peer`) and/or a bridge, with fields
    (double underscores stand for dots: playback__id)."""

    def predicate(event: dict[str, Any]) -> bool:
        if event.get("type") != kind:
            return False
        if channel is not None and _dig(event, "channel.id") != channel and _dig(event, "peer.id") != channel:
            return False
        if bridge is not None and _dig(event, "bridge.id") != bridge:
            return False
        return all(_dig(event, key.replace("__", ".")) == value for key, value in fields.items())

    return predicate


@dataclass
class Ctx:
    client: AriClient
    sim: SimControl
    rec: Recorder
    app: str
    app2: str
    observer: str
    run_id: str
    agents: list[str]
    supervisors: list[str]
    entity_id: str = ""
    trunk: str | None = None
    dids: list[str] = field(default_factory=lambda: ["6003"])
    bindings: dict[str, dict[str, Any]] = field(default_factory=dict)
    aborted: set[str] = field(default_factory=set)
    connections: dict[str, EventConnection] = field(default_factory=dict)
    _caller_seq: int = 0

    # --- bookkeeping ---------------------------------------------------------------------------------------
    def id(self, flow: str, role: str) -> str:
        return f"{self.run_id}-{flow}-{role}"[:149]

    def bind(self, spec: str, **values: Any) -> None:
        self.bindings.setdefault(spec, {"APP": self.app, "APP2": self.app2, "OBSERVER": self.observer}).update(values)

    def take_agent(self, flow: str) -> str:
        if not self.agents:
            raise FlowError("not enough agent endpoints for every flow (GET /ari/endpoints)")
        return self.agents.pop(0)

    def take_supervisor(self, flow: str) -> str:
        if self.supervisors:
            return self.supervisors.pop(0)
        return self.take_agent(flow)

    def caller_number(self) -> str:
        self._caller_seq += 1
        return f"1555000{self._caller_seq:04d}"

    def check(self, flow: str, ok: bool, text: str) -> None:
        if not ok:
            self.rec.violation(flow, text)

    # --- waiting ----------------------------------------------------------------------------------------------
    async def wait(self, flow: str, predicate: Predicate, what: str, *, app: str | None = None,
                   timeout: float = WAIT) -> dict[str, Any]:
        return await self.rec.wait_for(app or self.app, predicate, timeout=timeout, what=what, flow=flow)

    async def settle(self, flow: str, predicate: Predicate, what: str, *, app: str | None = None,
                     timeout: float = SETTLE) -> dict[str, Any] | None:
        try:
            return await self.wait(flow, predicate, what, app=app, timeout=timeout)
        except FlowError:
            return None

    # --- ARI building blocks ---------------------------------------------------------------------------------
    async def inbound(self, flow: str, spec: str, role: str = "C", *, args: list[str] | None = None,
                      app: str | None = None) -> dict[str, Any]:
        """A PSTN caller dials a DID; returns the StasisStart event of the caller channel."""
        did = self.dids[0]
        number = self.caller_number()
        cid = await self.sim.inject_call(did, number, "Conformance Caller", app=app, args=args)
        start = await self.wait(flow, about("StasisStart", cid), f"StasisStart of inbound {role} {cid}",
                                app=app)
        channel = start.get("channel") or {}
        self.bind(spec, **{role: cid, f"{role}_NAME": channel.get("name"), "DID": did, "CALLER_NUMBER": number})
        dialplan = channel.get("dialplan") or {}
        expected_data = ",".join([start.get("application", ""), *[str(a) for a in start.get("args", [])]])
        self.check(flow, dialplan.get("app_name") == "Stasis" and dialplan.get("app_data") == expected_data,
                   f"inbound {cid}: StasisStart dialplan app {dialplan.get('app_name')!r}({dialplan.get('app_data')!r}) "
                   f"does not match the Stasis({expected_data}) that delivered args {start.get('args')} "
                   f"(the dialplan application's data is the app name followed by its args)")
        self.check(flow, bool(re.fullmatch(r"(\S+-)?\d{10}\.\d+", cid)),
                   f"inbound channel id {cid!r} is not Asterisk's '<epoch seconds>.<sequence>' uniqueid form")
        return start

    async def answer(self, flow: str, cid: str) -> None:
        await self.client.ok(flow, "POST", f"/channels/{cid}/answer", expect=204)
        await self.wait(flow, about("ChannelStateChange", cid, channel__state="Up"), f"{cid} Up after answer")

    async def bridge(self, flow: str, bid: str, kind: str, name: str = "") -> dict[str, Any]:
        params = {"type": kind}
        if name:
            params["name"] = name
        body = await self.client.ok(flow, "POST", f"/bridges/{bid}", params=params)
        if isinstance(body, dict):
            self.check(flow, body.get("id") == bid and body.get("bridge_type") == kind and body.get("channels") == []
                       and body.get("bridge_class") == "stasis" and body.get("creator") == "Stasis",
                       f"POST /bridges/{bid}?type={kind}: got {body}; expected id {bid}, bridge_type {kind}, "
                       f"bridge_class 'stasis', creator 'Stasis', channels []")
            if kind == "holding":
                self.check(flow, body.get("technology") == "holding_bridge",
                           f"holding bridge technology {body.get('technology')!r}, Asterisk uses 'holding_bridge'")
        return body if isinstance(body, dict) else {}

    async def add(self, flow: str, bid: str, *cids: str, role: str | None = None) -> None:
        params: dict[str, Any] = {"channel": ",".join(cids)}
        if role:
            params["role"] = role
        await self.client.ok(flow, "POST", f"/bridges/{bid}/addChannel", params=params, expect=204)
        for cid in cids:
            await self.wait(flow, about("ChannelEnteredBridge", cid, bid), f"{cid} entering {bid}")

    async def remove(self, flow: str, bid: str, cid: str) -> None:
        await self.client.ok(flow, "POST", f"/bridges/{bid}/removeChannel", params={"channel": cid}, expect=204)
        await self.wait(flow, about("ChannelLeftBridge", cid, bid), f"{cid} leaving {bid}")

    async def originate(self, flow: str, cid: str, resource: str, args: list[str], *,
                        originator: str | None = None, timeout: int = 30,
                        caller_id: str = "Conformance <2000>") -> dict[str, Any]:
        params: dict[str, Any] = {"endpoint": f"PJSIP/{resource}", "app": self.app, "appArgs": ",".join(args),
                                  "callerId": caller_id, "timeout": timeout}
        if originator:
            params["originator"] = originator
        body = await self.client.ok(flow, "POST", f"/channels/{cid}", params=params)
        if isinstance(body, dict):
            self.check(flow, body.get("id") == cid, f"originate with id {cid}: response id {body.get('id')!r}")
            want_caller = {"name": "Conformance", "number": "2000"} if caller_id == "Conformance <2000>" else None
            self.check(flow, want_caller is None or body.get("caller") == want_caller,
                       f"originate {cid} with callerId {caller_id!r}: caller {body.get('caller')!r}, "
                       f"ast_callerid_parse gives {want_caller}")
            self.check(flow, body.get("state") == "Down",
                       f"originate {cid}: response state {body.get('state')!r}, Asterisk returns the new channel "
                       f"in state 'Down' (NOTES §b1.5)")
            name = str(body.get("name", ""))
            self.check(flow, name.startswith(f"PJSIP/{resource}-") and bool(PJSIP_NAME_RE.match(name)),
                       f"originate {cid}: channel name {name!r}, Asterisk names it PJSIP/{resource}-<8 hex> (NOTES §g)")
        return body if isinstance(body, dict) else {}

    async def hangup(self, flow: str, cid: str, expect: int | tuple[int, ...] = 204, **params: Any) -> None:
        await self.client.call(flow, "DELETE", f"/channels/{cid}", params=params or None, expect=expect,
                               why="DELETE /channels/{id} of a live channel answers 204")

    async def cleanup(self, flow: str, channels: list[str], bridges: list[str]) -> None:
        """Best-effort teardown; statuses are still recorded and validated, but not held to one value."""
        for cid in channels:
            await self.client.call(flow, "DELETE", f"/channels/{cid}")
        for bid in bridges:
            await self.client.call(flow, "DELETE", f"/bridges/{bid}")


FlowFn = Callable[[Ctx], Awaitable[None]]


# --- b1 -------------------------------------------------------------------------------------------------------
async def b1_caller_hangs_up(ctx: Ctx) -> None:
    f = spec = "b1-caller-hangs-up"
    agent = ctx.take_agent(f)
    await ctx.sim.phone(agent, registered=True, mode="answer", ring_after_s=0.1, answer_after_s=0.3)
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    h, m, a, call = ctx.id(f, "H"), ctx.id(f, "M"), ctx.id(f, "A"), ctx.id(f, "call")
    ctx.bind(spec, H=h, M=m, A=a, CALL=call, AGENT_RES=agent)
    await ctx.bridge(f, h, "holding")
    await ctx.client.ok(f, "POST", f"/bridges/{h}/moh", params={"mohClass": "default"}, expect=204)
    await ctx.add(f, h, c)
    chan = await ctx.originate(f, a, agent, ["agent", call], originator=c)
    ctx.bind(spec, A_NAME=chan.get("name"))
    await ctx.wait(f, about("StasisStart", a), "agent StasisStart after answer")
    await ctx.client.ok(f, "DELETE", f"/bridges/{h}/moh", expect=204)
    await ctx.remove(f, h, c)
    await ctx.client.call(f, "POST", f"/bridges/{h}/removeChannel", params={"channel": c}, expect=422,
                          why="removeChannel of a channel not in the bridge: 'Channel not in this bridge'")
    await ctx.bridge(f, m, "mixing", name="conformance-b1")
    await ctx.add(f, m, c, a)
    bridge = await ctx.client.ok(f, "GET", f"/bridges/{m}")
    ctx.check(f, isinstance(bridge, dict) and sorted(bridge.get("channels", [])) == sorted([c, a]),
              f"GET /bridges/{m} after adding both legs: {bridge}")
    app = await ctx.client.ok(f, "GET", f"/applications/{ctx.app}")
    ctx.check(f, isinstance(app, dict) and {c, a} <= set(app.get("channel_ids", [])) and m in app.get("bridge_ids", []),
              f"GET /applications/{ctx.app}: channel_ids/bridge_ids must list {c}, {a} and {m} (NOTES §c: reconcile view)")
    # The agent's phone is busy with this call: its endpoint lists the channel, its device is in use.
    endpoint = await ctx.client.ok(f, "GET", f"/endpoints/PJSIP/{agent}")
    ctx.check(f, isinstance(endpoint, dict) and endpoint.get("channel_ids") == [a],
              f"GET /endpoints/PJSIP/{agent} during the call: channel_ids should be [{a}], got {endpoint}")
    device = await ctx.client.ok(f, "GET", f"/deviceStates/{seg('PJSIP/' + agent)}")
    ctx.check(f, isinstance(device, dict) and device.get("state") == "INUSE",
              f"GET /deviceStates/PJSIP/{agent} during the call: {device}; a phone in a call is INUSE")
    # Observer bindings: the subscribeAll app sees C and A from creation to destruction, M from BridgeCreated.
    ctx.bind("observer-subscribeAll", C=c, A=a, M=m)
    await ctx.sim.far_end(c, "hangup")
    await ctx.wait(f, about("StasisEnd", c), "caller StasisEnd after far-end hangup")
    await ctx.hangup(f, a)
    await ctx.wait(f, about("ChannelDestroyed", a), "agent ChannelDestroyed after DELETE")
    await ctx.client.ok(f, "DELETE", f"/bridges/{m}", expect=204)
    await ctx.settle(f, about("BridgeDestroyed", bridge=m), "BridgeDestroyed of M")
    await ctx.client.ok(f, "DELETE", f"/bridges/{h}", expect=204)
    await ctx.client.call(f, "GET", f"/channels/{c}", expect=404, why="the caller hung up: Channel not found")
    await ctx.client.call(f, "GET", f"/bridges/{m}", expect=404, why="deleted bridge: Bridge not found")


async def b1_agent_hangs_up(ctx: Ctx) -> None:
    f = spec = "b1-agent-hangs-up"
    agent = ctx.take_agent(f)
    await ctx.sim.phone(agent, registered=True, mode="answer", ring_after_s=0.1, answer_after_s=0.2)
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    sub = await ctx.client.ok(f, "POST", f"/applications/{ctx.app}/subscription",
                              params={"eventSource": f"channel:{c}"})
    ctx.check(f, isinstance(sub, dict) and c in sub.get("channel_ids", []),
              f"subscription to channel:{c}: Application.channel_ids should list it, got {sub}")
    await ctx.answer(f, c)
    m, a, call = ctx.id(f, "M"), ctx.id(f, "A"), ctx.id(f, "call")
    ctx.bind(spec, M=m, A=a, CALL=call, AGENT_RES=agent)
    await ctx.originate(f, a, agent, ["agent", call])
    await ctx.wait(f, about("StasisStart", a), "agent StasisStart")
    await ctx.bridge(f, m, "mixing")
    await ctx.add(f, m, c, a)
    await ctx.sim.far_end(a, "hangup")
    await ctx.wait(f, about("ChannelDestroyed", a), "agent ChannelDestroyed after the agent hung up")
    await ctx.hangup(f, c)
    await ctx.wait(f, about("StasisEnd", c), "caller StasisEnd after DELETE")
    await ctx.settle(f, about("ChannelDestroyed", c), "caller ChannelDestroyed (explicit subscription)")
    await ctx.client.ok(f, "DELETE", f"/bridges/{m}", expect=204)
    await ctx.settle(f, about("BridgeDestroyed", bridge=m), "BridgeDestroyed of M")


# --- b2 and unanswered legs -----------------------------------------------------------------------------------
async def b2_caller_abandons(ctx: Ctx) -> None:
    f = spec = "b2-caller-abandons"
    agent = ctx.take_agent(f)
    await ctx.sim.phone(agent, registered=True, mode="no_answer")
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    h, a = ctx.id(f, "H"), ctx.id(f, "A")
    ctx.bind(spec, H=h, A=a, AGENT_RES=agent)
    await ctx.bridge(f, h, "holding")
    await ctx.add(f, h, c)
    await ctx.originate(f, a, agent, ["agent", ctx.id(f, "call")], timeout=60)
    await ctx.wait(f, about("Dial", a, dialstatus="RINGING"), "agent leg ringing")
    await ctx.client.call(f, "POST", f"/channels/{a}/answer", expect=409,
                          why="a ringing originated leg exists but is not in Stasis: "
                              "'Channel not in Stasis application' (NOTES §g)")
    await ctx.client.call(f, "POST", f"/bridges/{h}/addChannel", params={"channel": a}, expect=422,
                          why="a ringing originated leg is not in Stasis yet: 'Channel not in Stasis application'")
    await ctx.client.call(f, "POST", f"/channels/{c}", params={"endpoint": f"PJSIP/{agent}", "app": ctx.app},
                          expect=409, why="duplicate channel id: 'Channel with given unique ID already exists' (NOTES §c)")
    await ctx.sim.far_end(c, "hangup")
    await ctx.wait(f, about("StasisEnd", c), "caller StasisEnd after abandoning")
    await ctx.hangup(f, a)
    await ctx.wait(f, about("ChannelDestroyed", a), "ringing agent leg destroyed after DELETE")
    await ctx.client.ok(f, "DELETE", f"/bridges/{h}", expect=204)


async def agent_no_answer(ctx: Ctx) -> None:
    f = spec = "agent-no-answer"
    agent = ctx.take_agent(f)
    await ctx.sim.phone(agent, registered=True, mode="no_answer")
    a = ctx.id(f, "A")
    ctx.bind(spec, A=a, AGENT_RES=agent)
    await ctx.originate(f, a, agent, ["agent", ctx.id(f, "call")], timeout=2)
    await ctx.wait(f, about("ChannelDestroyed", a), "unanswered leg destroyed after the originate timeout",
                   timeout=15)


async def agent_busy(ctx: Ctx) -> None:
    f = spec = "agent-busy"
    agent = ctx.take_agent(f)
    await ctx.sim.phone(agent, registered=True, mode="busy")
    # POST /channels without channelId: Asterisk picks a '<epoch seconds>.<sequence>' uniqueid.
    body = await ctx.client.ok(f, "POST", "/channels", params={"endpoint": f"PJSIP/{agent}", "app": ctx.app,
                                                             "appArgs": f"agent,{ctx.id(f, 'call')}"})
    a = str(body.get("id")) if isinstance(body, dict) else ""
    ctx.check(f, bool(re.fullmatch(r"(\S+-)?\d{10}\.\d+", a)),
              f"originate without channelId: id {a!r} is not Asterisk's '<epoch seconds>.<sequence>' form")
    ctx.bind(spec, A=a, AGENT_RES=agent)
    await ctx.wait(f, about("ChannelDestroyed", a), "busy leg destroyed")
    await ctx.client.call(f, "GET", f"/channels/{a}", expect=404, why="destroyed channel: Channel not found")


async def outbound_calls(ctx: Ctx) -> None:
    """Outbound calls through the trunk: one meets a congested network (SIP 503: Dial CONGESTION, cause 34);
    one is answered by a machine whose greeting the app hears with TALK_DETECT (ChannelTalking*)."""
    f = spec = "outbound-calls"
    congested, machine = "5550199", "5550188"
    previous = await ctx.sim.must("GET", "/outcomes")
    kept = previous.get("rules", []) if isinstance(previous, dict) else []
    await ctx.sim.must("PUT", "/outcomes", {"rules": [
        {"match": congested, "outcome": "congestion", "ring_s": 0.2},
        {"match": machine, "outcome": "machine", "ring_s": 0.2, "greeting_s": 1.2, "machine_hangup_s": 30},
        *kept]})
    try:
        trunk = ctx.trunk or "carrier"
        a, b = ctx.id(f, "A"), ctx.id(f, "B")
        ctx.bind(spec, A=a, B=b, DIALSTRING=f"{congested}@{trunk}", DIALSTRING_B=f"{machine}@{trunk}")
        await ctx.client.ok(f, "POST", f"/channels/{a}", params={"endpoint": f"PJSIP/{congested}@{trunk}",
                                                                "app": ctx.app, "appArgs": "outbound"})
        await ctx.wait(f, about("ChannelDestroyed", a), "the congested outbound leg destroyed")
        await ctx.client.ok(f, "POST", f"/channels/{b}", params={"endpoint": f"PJSIP/{machine}@{trunk}",
                                                                "app": ctx.app, "appArgs": "outbound"})
        await ctx.wait(f, about("StasisStart", b), "the answered outbound leg in Stasis")
        # TALK_DETECT is a dialplan function: set through the variable resource, it turns the talk events on.
        await ctx.client.ok(f, "POST", f"/channels/{b}/variable", params={"variable": "TALK_DETECT(set)", "value": ""},
                            expect=204)
        done = await ctx.wait(f, about("ChannelTalkingFinished", b), "ChannelTalkingFinished of the greeting")
        ctx.check(f, isinstance(done.get("duration"), int) and done["duration"] > 0,
                  f"ChannelTalkingFinished.duration {done.get('duration')!r}: the talk's length in ms")
        await ctx.hangup(f, b)
        await ctx.wait(f, about("ChannelDestroyed", b), "the answered outbound leg destroyed")
    finally:
        if isinstance(previous, dict) and "rules" in previous:
            await ctx.sim.must("PUT", "/outcomes", {"rules": previous["rules"]})


async def multi_app(ctx: Ctx) -> None:
    """One WebSocket for two apps (app=a,b): each event names the app it is for (NOTES §d)."""
    f = "multi-app"
    one, two = ctx.id(f, "one"), ctx.id(f, "two")
    conn = await ctx.client.connect(f, [one, two])
    try:
        cid = await ctx.sim.inject_call(ctx.dids[0], ctx.caller_number(), "Multi App", app=two, args=["x"])
        start = await ctx.wait(f, about("StasisStart", cid), "StasisStart in the second app of the socket", app=two)
        ctx.check(f, start.get("application") == two and start.get("args") == ["x"],
                  f"StasisStart for a call to {two}: application {start.get('application')!r}, args {start.get('args')}")
        ctx.check(f, ctx.rec.find(one, about("StasisStart", cid)) is None,
                  f"the call to {two} was also announced to {one}")
        await ctx.hangup(f, cid)
        await ctx.wait(f, about("StasisEnd", cid), "StasisEnd in the second app", app=two)
    finally:
        await conn.close()


# --- b3 / b4 transfers ----------------------------------------------------------------------------------------
async def _connected_call(ctx: Ctx, f: str, spec: str, args0: str = "agent") -> tuple[str, str, str, str]:
    """Caller C answered and bridged with agent A in mixing bridge M. Returns (C, A, M, CALL)."""
    agent = ctx.take_agent(f)
    await ctx.sim.phone(agent, registered=True, mode="answer", ring_after_s=0.1, answer_after_s=0.2)
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    m, a, call = ctx.id(f, "M"), ctx.id(f, "A"), ctx.id(f, "call")
    ctx.bind(spec, M=m, A=a, CALL=call, AGENT_RES=agent)
    chan = await ctx.originate(f, a, agent, [args0, call])
    ctx.bind(spec, A_NAME=chan.get("name"))
    await ctx.wait(f, about("StasisStart", a), "agent StasisStart")
    await ctx.bridge(f, m, "mixing")
    await ctx.add(f, m, c, a)
    return c, a, m, call


async def b3_blind_transfer(ctx: Ctx) -> None:
    f = spec = "b3-blind-transfer"
    c, a, m, call = await _connected_call(ctx, f, spec)
    target = ctx.take_agent(f)
    await ctx.sim.phone(target, registered=True, mode="answer", ring_after_s=0.1, answer_after_s=0.2)
    t = ctx.id(f, "T")
    ctx.bind(spec, T=t, TARGET_RES=target)
    await ctx.remove(f, m, a)
    await ctx.hangup(f, a, expect=400, reason="busy", reason_code="17")
    await ctx.hangup(f, a, reason="answered_elsewhere")
    await ctx.wait(f, about("ChannelDestroyed", a), "transferring agent destroyed")
    await ctx.originate(f, t, target, ["transfer", call])
    await ctx.wait(f, about("StasisStart", t), "transfer target StasisStart")
    await ctx.add(f, m, t)
    await ctx.cleanup(f, [t, c], [m])


async def b4_attended_transfer(ctx: Ctx) -> None:
    f = spec = "b4-attended-transfer"
    c, a, m, call = await _connected_call(ctx, f, spec)
    target = ctx.take_agent(f)
    await ctx.sim.phone(target, registered=True, mode="answer", ring_after_s=0.1, answer_after_s=0.2)
    h, m2, t = ctx.id(f, "H"), ctx.id(f, "M2"), ctx.id(f, "T")
    ctx.bind(spec, H=h, M2=m2, T=t, TARGET_RES=target)
    # Consult: the caller waits on hold with music, the agent calls the target in a second bridge.
    await ctx.remove(f, m, c)
    await ctx.bridge(f, h, "holding")
    await ctx.add(f, h, c)
    await ctx.client.ok(f, "POST", f"/bridges/{h}/moh", expect=204)
    await ctx.originate(f, t, target, ["consult", call])
    await ctx.wait(f, about("StasisStart", t), "consult target StasisStart")
    await ctx.bridge(f, m2, "mixing")
    await ctx.add(f, m2, t)
    await ctx.remove(f, m, a)
    await ctx.add(f, m2, a)
    # Complete: target to the caller's bridge, agent out, consult bridge gone.
    await ctx.remove(f, m2, t)
    await ctx.client.ok(f, "DELETE", f"/bridges/{h}/moh", expect=204)
    await ctx.remove(f, h, c)
    await ctx.add(f, m, c, t)
    await ctx.hangup(f, a)
    await ctx.wait(f, about("ChannelDestroyed", a), "agent destroyed after completing the transfer")
    await ctx.client.ok(f, "DELETE", f"/bridges/{m2}", expect=204)
    await ctx.settle(f, about("BridgeDestroyed", bridge=m2), "BridgeDestroyed of M2")
    await ctx.cleanup(f, [t, c], [m, h])


async def b3_blind_transfer_phone(ctx: Ctx) -> None:
    """The agent's phone sends a REFER to 2000@from-internal; Asterisk carries the transfer out."""
    f = spec = "b3-blind-transfer-phone"
    c, a, m, _ = await _connected_call(ctx, f, spec)
    ctx.bind(spec, C=c)
    await ctx.sim.far_end(a, "blind_transfer", {"exten": "2000", "context": "from-internal", "app": ctx.app})
    xfer = await ctx.wait(f, lambda e: e.get("type") == "BridgeBlindTransfer" and _dig(e, "channel.id") == a,
                          "BridgeBlindTransfer")
    one = str(_dig(xfer, "replace_channel.id"))
    ctx.bind(spec, L1=one)
    await ctx.wait(f, about("ChannelEnteredBridge", one, m), "the Local ;1 half entering M")
    two_start = await ctx.wait(f, lambda e: e.get("type") == "StasisStart"
                               and str(_dig(e, "channel.name")).endswith(";2")
                               and str(_dig(e, "channel.name")).rsplit(";", 1)[0]
                               == str(_dig(xfer, "replace_channel.name")).rsplit(";", 1)[0],
                               "StasisStart of the Local ;2 half")
    two = str(_dig(two_start, "channel.id"))
    ctx.bind(spec, L2=two)
    await ctx.wait(f, about("ChannelDestroyed", a), "the transferer hung up after the REFER")
    bridge = await ctx.client.ok(f, "GET", f"/bridges/{m}")
    ctx.check(f, isinstance(bridge, dict) and sorted(bridge.get("channels", [])) == sorted([c, one]),
              f"after the blind transfer M should hold the caller and the Local ;1 half: {bridge}")
    # A Local pair lives and dies together (NOTES §b4 (i).4).
    await ctx.hangup(f, two)
    await ctx.wait(f, about("StasisEnd", one), "the Local ;1 half gone with its ;2 half")
    await ctx.cleanup(f, [c], [m])


async def b4_attended_transfer_phone(ctx: Ctx) -> None:
    """A talks to C in M; A2 talks to D in M2; A's phone completes an attended transfer (REFER/Replaces)."""
    f = spec = "b4-attended-transfer-phone"
    c, a, m, _ = await _connected_call(ctx, f, spec)
    ctx.bind(spec, C=c)
    start = await ctx.inbound(f, spec, role="A2")
    a2 = start["channel"]["id"]
    await ctx.answer(f, a2)
    target = ctx.take_agent(f)
    await ctx.sim.phone(target, registered=True, mode="answer", ring_after_s=0.1, answer_after_s=0.2)
    d, m2 = ctx.id(f, "D"), ctx.id(f, "M2")
    ctx.bind(spec, D=d, M2=m2)
    await ctx.originate(f, d, target, ["target", ctx.id(f, "call")])
    await ctx.wait(f, about("StasisStart", d), "transfer target StasisStart")
    await ctx.bridge(f, m2, "mixing")
    await ctx.add(f, m2, a2, d)
    await ctx.sim.far_end(a, "attended_transfer", {"other": a2})
    xfer = await ctx.wait(f, lambda e: e.get("type") == "BridgeAttendedTransfer"
                          and _dig(e, "transferer_first_leg.id") == a, "BridgeAttendedTransfer")
    one, two = str(_dig(xfer, "destination_link_first_leg.id")), str(_dig(xfer, "destination_link_second_leg.id"))
    ctx.bind(spec, L1=one, L2=two)
    await ctx.wait(f, about("ChannelEnteredBridge", one, m), "the Local ;1 half in M")
    await ctx.wait(f, about("ChannelEnteredBridge", two, m2), "the Local ;2 half in M2")
    await ctx.wait(f, about("StasisEnd", a2), "the second transferer leg leaving the app")
    await ctx.settle(f, about("ChannelDestroyed", a), "the first transferer leg hung up")
    await ctx.hangup(f, one)
    await ctx.wait(f, about("StasisEnd", two), "the Local ;2 half gone with its ;1 half")
    await ctx.cleanup(f, [c, d], [m, m2])


# --- b5 snoop -------------------------------------------------------------------------------------------------
async def b5_snoop(ctx: Ctx) -> None:
    f = spec = "b5-snoop"
    c, a, m, call = await _connected_call(ctx, f, spec)
    sup_res = ctx.take_supervisor(f)
    await ctx.sim.phone(sup_res, registered=True, mode="answer", ring_after_s=0.1, answer_after_s=0.2)
    s, w, sb, sup, sid = ctx.id(f, "S"), ctx.id(f, "W"), ctx.id(f, "SB"), ctx.id(f, "SUP"), ctx.id(f, "session")
    ctx.bind(spec, S=s, W=w, SB=sb, SUP=sup, SID=sid, SUP_RES=sup_res)
    body = await ctx.client.ok(f, "POST", f"/channels/{a}/snoop/{s}",
                               params={"spy": "both", "whisper": "none", "app": ctx.app, "appArgs": f"snoop,{sid}"})
    if isinstance(body, dict):
        ctx.check(f, bool(re.fullmatch(rf"Snoop/{re.escape(a)}-[0-9a-f]{{8}}", str(body.get("name", "")))),
                  f"snoop channel name {body.get('name')!r}, Asterisk names it Snoop/<spied id>-<8 hex> (NOTES §b5.1, §g)")
        ctx.check(f, body.get("id") == s, f"snoop with id {s}: response id {body.get('id')!r}")
    await ctx.wait(f, about("StasisStart", s), "snoop channel StasisStart")
    await ctx.bridge(f, sb, "mixing")
    await ctx.add(f, sb, s)
    await ctx.originate(f, sup, sup_res, ["supervisor", sid])
    await ctx.wait(f, about("StasisStart", sup), "supervisor StasisStart")
    await ctx.add(f, sb, sup)
    # Whisper (coach): a second snoop with whisper=out, created through snoopChannel with snoopId.
    await ctx.client.ok(f, "POST", f"/channels/{a}/snoop",
                        params={"snoopId": w, "spy": "none", "whisper": "out", "app": ctx.app,
                                "appArgs": f"whisper,{sid}"})
    await ctx.wait(f, about("StasisStart", w), "whisper snoop StasisStart")
    bridge = await ctx.client.ok(f, "GET", f"/bridges/{m}")
    ctx.check(f, isinstance(bridge, dict) and a in bridge.get("channels", []) and c in bridge.get("channels", []),
              f"snooping must leave the agent and the caller in their bridge; GET /bridges/{m}: {bridge}")
    await ctx.hangup(f, w)
    await ctx.wait(f, about("StasisEnd", w), "whisper snoop StasisEnd after DELETE")
    await ctx.client.call(f, "POST", "/channels/no-such-channel/snoop", params={"app": ctx.app, "spy": "in"},
                          expect=404, why="snoop on an unknown channel: Channel not found")
    await ctx.client.call(f, "POST", f"/channels/{a}/snoop", params={"spy": "in"},
                          expect=400, why="snoop without app: Invalid parameters")
    await ctx.client.call(f, "POST", f"/channels/{a}/snoop", params={"app": ctx.app, "spy": "none", "whisper": "none"},
                          expect=400, why="'Direction must be specified for at least spy or whisper'")
    await ctx.client.call(f, "POST", f"/channels/{a}/snoop", params={"app": ctx.app, "spy": "sideways"},
                          expect=400, why="'Invalid direction specified for spy'")
    # The spied agent hangs up: Asterisk hangs the snoop channel up too (NOTES §b5.6).
    await ctx.sim.far_end(a, "hangup")
    await ctx.settle(f, about("StasisEnd", s), "snoop StasisEnd after the spied channel hung up", timeout=WAIT)
    await ctx.cleanup(f, [s, sup, c], [sb, m])


# --- b6 recording ---------------------------------------------------------------------------------------------
async def b6_bridge_recording(ctx: Ctx) -> None:
    f = spec = "b6-bridge-recording"
    c, a, m, _ = await _connected_call(ctx, f, spec)
    rec, cancelled, copy = ctx.id(f, "rec"), ctx.id(f, "cancelled"), ctx.id(f, "copy")
    ctx.bind(spec, REC=rec, CANCELLED=cancelled)
    params = {"name": rec, "format": "wav", "ifExists": "fail", "beep": "false", "maxDurationSeconds": 0,
              "maxSilenceSeconds": 0, "terminateOn": "none"}
    live = await ctx.client.ok(f, "POST", f"/bridges/{m}/record", params=params, expect=201)
    if isinstance(live, dict):
        ctx.check(f, live.get("name") == rec and live.get("format") == "wav" and live.get("target_uri") == f"bridge:{m}"
                  and live.get("state") == "queued",
                  f"POST /bridges/{m}/record: got {live}; Asterisk returns the LiveRecording in state 'queued' "
                  f"with target_uri bridge:{m} (NOTES §b6)")
    await ctx.wait(f, lambda e: e.get("type") == "RecordingStarted" and _dig(e, "recording.name") == rec,
                   "RecordingStarted")
    await ctx.client.call(f, "POST", f"/bridges/{m}/record", params=params, expect=409,
                          why="a recording with the same name is in progress (bridges.json record 409)")
    got = await ctx.client.ok(f, "GET", f"/recordings/live/{rec}")
    ctx.check(f, isinstance(got, dict) and got.get("state") == "recording", f"GET live recording: {got}")
    await ctx.client.ok(f, "POST", f"/recordings/live/{rec}/pause", expect=204)
    got = await ctx.client.ok(f, "GET", f"/recordings/live/{rec}")
    ctx.check(f, isinstance(got, dict) and got.get("state") == "paused", f"GET paused live recording: {got}")
    await ctx.client.ok(f, "DELETE", f"/recordings/live/{rec}/pause", expect=204)
    await ctx.client.ok(f, "POST", f"/recordings/live/{rec}/mute", expect=204)
    await ctx.client.ok(f, "DELETE", f"/recordings/live/{rec}/mute", expect=204)
    await ctx.client.ok(f, "POST", f"/recordings/live/{rec}/stop", expect=204)
    await ctx.wait(f, lambda e: e.get("type") == "RecordingFinished" and _dig(e, "recording.name") == rec,
                   "RecordingFinished after stop")
    await ctx.client.call(f, "POST", f"/bridges/{m}/record", params={"name": rec, "format": "wav", "ifExists": "fail"},
                          expect=409, why="the stored file exists and ifExists=fail (res_stasis_recording.c: EEXIST)")
    await ctx.client.call(f, "GET", f"/recordings/live/{rec}", expect=404, why="a finished recording is no longer live")
    stored = await ctx.client.ok(f, "GET", f"/recordings/stored/{rec}")
    ctx.check(f, stored == {"name": rec, "format": "wav"}, f"GET stored recording: {stored}")
    listing = await ctx.client.ok(f, "GET", "/recordings/stored")
    ctx.check(f, isinstance(listing, list) and {"name": rec, "format": "wav"} in listing,
              f"GET /recordings/stored does not list {rec}")
    ex = await ctx.client.call(f, "GET", f"/recordings/stored/{rec}/file", expect=200)
    ctx.check(f, ex.body[:4] == b"RIFF" and ex.body[8:12] == b"WAVE",
              f"stored file of a wav recording does not start with a RIFF/WAVE header: {ex.body[:12]!r}")
    ctx.check(f, ex.headers.get("content-type", "").startswith("audio/"),
              f"stored wav file served as {ex.headers.get('content-type')!r}; expected an audio/* type")
    await ctx.client.ok(f, "POST", f"/recordings/stored/{rec}/copy", params={"destinationRecordingName": copy})
    await ctx.client.call(f, "POST", f"/recordings/stored/{rec}/copy", params={"destinationRecordingName": copy},
                          expect=409, why="copy onto an existing recording (recordings.json copyStored 409)")
    await ctx.client.ok(f, "DELETE", f"/recordings/stored/{copy}", expect=204)
    await ctx.client.call(f, "GET", f"/recordings/stored/{copy}", expect=404, why="deleted stored recording")
    # Cancel = discard: DELETE on a live recording leaves no stored file (NOTES §b6).
    await ctx.client.ok(f, "POST", f"/bridges/{m}/record", params={"name": cancelled, "format": "wav"}, expect=201)
    await ctx.wait(f, lambda e: e.get("type") == "RecordingStarted" and _dig(e, "recording.name") == cancelled,
                   "RecordingStarted of the recording to cancel")
    await ctx.client.ok(f, "DELETE", f"/recordings/live/{cancelled}", expect=204)
    await ctx.client.call(f, "GET", f"/recordings/stored/{cancelled}", expect=404,
                          why="DELETE /recordings/live/{name} cancels and discards the file (NOTES §b6)")
    await ctx.client.call(f, "POST", f"/bridges/{m}/record", params={"name": ctx.id(f, "badfmt"), "format": "nope"},
                          expect=422, why="unknown format (bridges.json record 422)")
    await ctx.client.call(f, "POST", "/bridges/no-such-bridge/record", params={"name": "x", "format": "wav"},
                          expect=404, why="Bridge not found")
    await ctx.client.ok(f, "DELETE", f"/recordings/stored/{rec}", expect=204)
    await ctx.cleanup(f, [a, c], [m])


async def channel_recording(ctx: Ctx) -> None:
    f = spec = "channel-recording"
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    rec, cb = ctx.id(f, "rec"), ctx.id(f, "CB")
    ctx.bind(spec, REC=rec, CB=cb)
    await ctx.bridge(f, cb, "mixing")
    live = await ctx.client.ok(f, "POST", f"/channels/{c}/record", params={"name": rec, "format": "wav"}, expect=201)
    if isinstance(live, dict):
        ctx.check(f, live.get("target_uri") == f"channel:{c}",
                  f"channel recording target_uri {live.get('target_uri')!r}")
    await ctx.wait(f, lambda e: e.get("type") == "RecordingStarted" and _dig(e, "recording.name") == rec,
                   "channel RecordingStarted")
    await ctx.client.call(f, "POST", f"/bridges/{cb}/addChannel", params={"channel": c}, expect=409,
                          why="'Channel currently recording' (bridges.json addChannel 409; the recording's add rule)")
    await ctx.client.ok(f, "POST", f"/recordings/live/{rec}/stop", expect=204)
    await ctx.wait(f, lambda e: e.get("type") == "RecordingFinished" and _dig(e, "recording.name") == rec,
                   "channel RecordingFinished")
    ex = await ctx.client.call(f, "GET", f"/recordings/stored/{rec}/file", expect=200)
    ctx.check(f, ex.body[:4] == b"RIFF", f"channel recording file is not a WAV file: {ex.body[:12]!r}")
    await ctx.client.call(f, "POST", "/channels/no-such-channel/record", params={"name": "x", "format": "wav"},
                          expect=404, why="Channel not found")
    # A bridged channel cannot be recorded: the request is accepted (201), then record_file() fails it
    # asynchronously with RecordingFailed (res_stasis_recording.c; asterisk#2044 shows the same on 22.10.1).
    bridged = ctx.id(f, "bridged")
    ctx.bind(spec, BRIDGED=bridged)
    await ctx.add(f, cb, c)
    await ctx.client.call(f, "POST", f"/channels/{c}/record", params={"name": bridged, "format": "wav"},
                          expect=201, why="the bridge check happens later, in the channel's thread")
    await ctx.wait(f, lambda e: e.get("type") == "RecordingFailed" and _dig(e, "recording.name") == bridged,
                   "RecordingFailed of the bridged channel's recording")
    await ctx.client.ok(f, "DELETE", f"/recordings/stored/{rec}", expect=204)
    # Destroying a bridge with a channel in it: the channel is put out (ChannelLeftBridge) and stays in Stasis.
    await ctx.client.ok(f, "DELETE", f"/bridges/{cb}", expect=204)
    await ctx.wait(f, about("BridgeDestroyed", bridge=cb), "BridgeDestroyed of a bridge with a channel in it")
    await ctx.client.ok(f, "POST", f"/channels/{c}/variable", params={"variable": "CS_AFTER", "value": "1"},
                        expect=204, why="the channel is still in Stasis after its bridge went away")
    await ctx.cleanup(f, [c], [])


# --- playback, DTMF, hold, variables --------------------------------------------------------------------------
async def playback(ctx: Ctx) -> None:
    f = spec = "playback"
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    p1, p3, p4, m = (ctx.id(f, r) for r in ("P1", "P3", "P4", "M"))
    ctx.bind(spec, P1=p1, P3=p3, P4=p4, M=m)
    pb = await ctx.client.ok(f, "POST", f"/channels/{c}/play/{p1}", params={"media": "sound:hello-world"}, expect=201)
    if isinstance(pb, dict):
        ctx.check(f, pb.get("id") == p1 and pb.get("target_uri") == f"channel:{c}" and pb.get("state") == "queued"
                  and pb.get("media_uri") == "sound:hello-world",
                  f"POST play: got {pb}; Asterisk answers the Playback in state 'queued'")
    await ctx.wait(f, about("PlaybackFinished", playback__id=p1), "PlaybackFinished of P1")
    await ctx.client.call(f, "GET", f"/playbacks/{p1}", expect=404, why="a finished playback is gone")
    await ctx.client.ok(f, "POST", f"/channels/{c}/play/{p4}", params={"media": "sound:tt-weasels"}, expect=201)
    await ctx.wait(f, about("PlaybackStarted", playback__id=p4), "PlaybackStarted of P4")
    got = await ctx.client.ok(f, "GET", f"/playbacks/{p4}")
    ctx.check(f, isinstance(got, dict) and got.get("state") == "playing", f"GET /playbacks/{p4} while playing: {got}")
    await ctx.client.ok(f, "POST", f"/playbacks/{p4}/control", params={"operation": "pause"}, expect=204)
    got = await ctx.client.ok(f, "GET", f"/playbacks/{p4}")
    ctx.check(f, isinstance(got, dict) and got.get("state") == "paused",
              f"GET /playbacks/{p4} after pause: state {got.get('state') if isinstance(got, dict) else got!r}; "
              f"Asterisk reports 'paused' (res_stasis_playback.c playback_pause/state_to_string), even though "
              f"the Playback model does not list it")
    await ctx.client.ok(f, "POST", f"/playbacks/{p4}/control", params={"operation": "unpause"}, expect=204)
    await ctx.client.ok(f, "POST", f"/playbacks/{p4}/control", params={"operation": "restart"}, expect=204)
    await ctx.client.call(f, "POST", f"/playbacks/{p4}/control", params={"operation": "bogus"}, expect=400,
                          why="invalid operation (playbacks.json control 400)")
    await ctx.client.ok(f, "DELETE", f"/playbacks/{p4}", expect=204)
    await ctx.wait(f, about("PlaybackFinished", playback__id=p4), "PlaybackFinished after DELETE /playbacks")
    await ctx.bridge(f, m, "mixing")
    await ctx.add(f, m, c)
    await ctx.client.ok(f, "POST", f"/bridges/{m}/play/{p3}", params={"media": "sound:hello-world"}, expect=201)
    await ctx.wait(f, about("PlaybackFinished", playback__id=p3), "bridge PlaybackFinished")
    await ctx.client.call(f, "POST", "/bridges/no-such-bridge/play", params={"media": "sound:hello-world"},
                          expect=404, why="Bridge not found")
    await ctx.client.call(f, "DELETE", "/playbacks/no-such-playback", expect=404, why="The playback cannot be found")
    await ctx.cleanup(f, [c], [m])


async def playback_multi(ctx: Ctx) -> None:
    f = spec = "playback-multi"
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    p2, p5 = ctx.id(f, "P2"), ctx.id(f, "P5")
    ctx.bind(spec, P2=p2, P5=p5)
    # Several media in one `media` parameter, comma-separated (how swagger clients send a list).
    await ctx.client.ok(f, "POST", f"/channels/{c}/play",
                        params={"playbackId": p2, "media": "sound:tt-monkeys,digits:12"}, expect=201)
    await ctx.wait(f, about("PlaybackFinished", playback__id=p2), "PlaybackFinished of the two-media P2", timeout=20)
    # A repeated `media` parameter: the generated res_ari_channels.c parses each occurrence afresh, so only
    # the last one is played.
    body = await ctx.client.ok(f, "POST", f"/channels/{c}/play/{p5}",
                               params=[("media", "sound:hello-world"), ("media", "digits:42")], expect=201)
    ctx.check(f, isinstance(body, dict) and body.get("media_uri") == "digits:42" and "next_media_uri" not in body,
              f"repeated media parameters: Asterisk keeps only the last one (media_uri 'digits:42', no "
              f"next_media_uri); got {body}")
    await ctx.wait(f, about("PlaybackFinished", playback__id=p5), "PlaybackFinished of P5")
    await ctx.cleanup(f, [c], [])


async def dtmf_hold(ctx: Ctx) -> None:
    f = spec = "dtmf-hold"
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    for path in ("ring", "moh", "silence", "hold"):
        await ctx.client.ok(f, "POST", f"/channels/{c}/{path}", expect=204)
        await ctx.client.ok(f, "DELETE", f"/channels/{c}/{path}", expect=204)
    await ctx.client.ok(f, "POST", f"/channels/{c}/mute", params={"direction": "both"}, expect=204)
    await ctx.client.ok(f, "DELETE", f"/channels/{c}/mute", params={"direction": "both"}, expect=204)
    await ctx.client.call(f, "POST", f"/channels/{c}/redirect", params={"endpoint": "IAX2/elsewhere"}, expect=422,
                          why="redirect to another technology: 'Endpoint technology does not match channel technology'")
    await ctx.client.call(f, "POST", f"/channels/{c}/redirect", params={"endpoint": "PJSIP"}, expect=422,
                          why="redirect endpoint without '/': 'does not contain tech/resource'")
    await ctx.client.call(f, "POST", f"/channels/{c}/redirect", expect=400, why="redirect without endpoint")
    await ctx.client.ok(f, "POST", f"/channels/{c}/dtmf", params={"dtmf": "789", "between": 50, "duration": 50},
                        expect=204)
    await ctx.client.call(f, "POST", f"/channels/{c}/dtmf", expect=400, why="DTMF is required")
    await ctx.sim.far_end(c, "dtmf", {"digits": "5"})
    await ctx.wait(f, about("ChannelDtmfReceived", c, digit="5"), "ChannelDtmfReceived 5")
    await ctx.sim.far_end(c, "dtmf", {"digits": "#"})
    ev = await ctx.wait(f, about("ChannelDtmfReceived", c, digit="#"), "ChannelDtmfReceived #")
    ctx.check(f, isinstance(ev.get("duration_ms"), int) and ev["duration_ms"] > 0,
              f"ChannelDtmfReceived.duration_ms {ev.get('duration_ms')!r}: sent at DTMF end, with its duration")
    await ctx.sim.far_end(c, "hold")
    await ctx.wait(f, about("ChannelHold", c), "ChannelHold from the far end")
    await ctx.sim.far_end(c, "unhold")
    await ctx.wait(f, about("ChannelUnhold", c), "ChannelUnhold from the far end")
    await ctx.client.ok(f, "POST", f"/channels/{c}/variable", params={"variable": "CS_MARK", "value": "1"}, expect=204)
    await ctx.wait(f, about("ChannelVarset", c, variable="CS_MARK", value="1"), "ChannelVarset CS_MARK")
    got = await ctx.client.ok(f, "GET", f"/channels/{c}/variable", params={"variable": "CS_MARK"})
    ctx.check(f, got == {"value": "1"}, f"GET variable CS_MARK: {got}")
    await ctx.client.call(f, "GET", f"/channels/{c}/variable", expect=400, why="Missing variable parameter")
    await ctx.client.call(f, "GET", f"/channels/{c}/variable", params={"variable": "CS_NEVER_SET"}, expect=404,
                          why="an unset variable: 'Provided variable was not found' (resource_channels.c)")
    await ctx.client.ok(f, "POST", f"/channels/{c}/variable",
                        params={"variable": "CALLERID(name)", "value": "Renamed Caller"}, expect=204)
    ev = await ctx.wait(f, about("ChannelCallerId", c), "ChannelCallerId after setting CALLERID(name) "
                                                     "(func_callerid publishes a caller change)")
    ctx.check(f, _dig(ev, "channel.caller.name") == "Renamed Caller",
              f"ChannelCallerId carries the new caller name, got {_dig(ev, 'channel.caller.name')!r}")
    ctx.check(f, ev.get("caller_presentation") != 0
              or ev.get("caller_presentation_txt") == "Presentation Allowed, Not Screened",
              f"caller_presentation 0 is described as 'Presentation Allowed, Not Screened', got "
              f"{ev.get('caller_presentation_txt')!r}")
    await ctx.client.ok(f, "POST", "/events/user/cs-conformance",
                        params={"application": ctx.app, "source": f"channel:{c}"},
                        body={"variables": {"step": "dtmf-hold"}}, expect=204)
    ev = await ctx.wait(f, about("ChannelUserevent", c, eventname="cs-conformance"), "ChannelUserevent")
    ctx.check(f, ev.get("userevent") == {"step": "dtmf-hold"} or (isinstance(ev.get("userevent"), dict)
                                                                 and ev["userevent"].get("step") == "dtmf-hold"),
              f"ChannelUserevent.userevent should carry the variables, got {ev.get('userevent')!r}")
    await ctx.hangup(f, c, expect=400, reason="bogus")
    await ctx.hangup(f, c, reason="normal")
    await ctx.wait(f, about("StasisEnd", c), "StasisEnd after DELETE")


async def create_dial(ctx: Ctx) -> None:
    f = spec = "create-dial"
    agent = ctx.take_agent(f)
    await ctx.sim.phone(agent, registered=True, mode="answer", ring_after_s=0.1, answer_after_s=0.2)
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    a, call = ctx.id(f, "A"), ctx.id(f, "call")
    ctx.bind(spec, A=a, CALL=call, AGENT_RES=agent)
    body = await ctx.client.ok(f, "POST", "/channels/create",
                               params={"endpoint": f"PJSIP/{agent}", "app": ctx.app, "appArgs": f"created,{call}",
                                       "channelId": a})
    ctx.check(f, isinstance(body, dict) and body.get("id") == a and body.get("state") == "Down",
              f"POST /channels/create: {body}")
    await ctx.wait(f, about("StasisStart", a), "StasisStart at once after /channels/create")
    # A Down channel in Stasis: state-changing and media operations are refused (channel_state_invalid).
    for method, path, params in (("POST", "answer", None), ("POST", "hold", None), ("POST", "ring", None),
                                 ("POST", "play", {"media": "sound:hello-world"}), ("POST", "moh", None)):
        await ctx.client.call(f, method, f"/channels/{a}/{path}", params=params, expect=412,
                              why="a Down channel: 'Channel in invalid state' (resource_channels.c channel_state_invalid)")
    await ctx.client.call(f, "POST", "/channels/create",
                          params={"endpoint": f"PJSIP/{agent}", "app": ctx.app, "channelId": a}, expect=409,
                          why="duplicate channel id: 'Channel with given unique ID already exists'")
    await ctx.client.ok(f, "POST", f"/channels/{a}/dial", params={"caller": c, "timeout": 30}, expect=204)
    await ctx.wait(f, about("Dial", a, dialstatus="ANSWER"), "Dial ANSWER after /dial")
    await ctx.wait(f, about("ChannelStateChange", a, channel__state="Up"), "created channel Up")
    await ctx.client.call(f, "POST", f"/channels/{a}/dial", expect=409,
                          why="dialing a channel that is not Down: 'Channel is not in the 'Down' state'")
    await ctx.client.call(f, "POST", "/channels/no-such-channel/dial", expect=404, why="Channel cannot be found")
    await ctx.cleanup(f, [a, c], [])


# --- endpoints and device states -------------------------------------------------------------------------------
async def endpoint_state(ctx: Ctx) -> None:
    f = spec = "endpoint-state"
    res = ctx.take_agent(f)
    await ctx.sim.phone(res, registered=True, mode="answer", ring_after_s=0.1, answer_after_s=0.2)
    ep, dev = f"PJSIP/{res}", f"PJSIP/{res}"
    ctx.bind(spec, EP=ep, DEV=dev)
    # Several event sources go comma-separated in one parameter (a repeated parameter keeps only its last value).
    sub = await ctx.client.ok(f, "POST", f"/applications/{ctx.app}/subscription",
                              params={"eventSource": f"endpoint:{ep},deviceState:{dev}"})
    ctx.check(f, isinstance(sub, dict) and ep in sub.get("endpoint_ids", []) and dev in sub.get("device_names", []),
              f"subscription answer should list endpoint {ep} and device {dev}: {sub}")
    got = await ctx.client.ok(f, "GET", f"/endpoints/PJSIP/{res}")
    ctx.check(f, isinstance(got, dict) and got.get("state") == "online",
              f"GET /endpoints/{ep} of a registered phone: {got}")
    await ctx.sim.phone(res, registered=False)
    await ctx.wait(f, lambda e: e.get("type") == "PeerStatusChange" and _dig(e, "endpoint.resource") == res
                   and _dig(e, "peer.peer_status") == "Unreachable", "PeerStatusChange Unreachable")
    await ctx.settle(f, lambda e: e.get("type") == "DeviceStateChanged" and _dig(e, "device_state.name") == dev
                     and _dig(e, "device_state.state") == "UNAVAILABLE", "DeviceStateChanged UNAVAILABLE")
    got = await ctx.client.ok(f, "GET", f"/endpoints/PJSIP/{res}")
    ctx.check(f, isinstance(got, dict) and got.get("state") == "offline", f"GET /endpoints/{ep} after unregister: {got}")
    got = await ctx.client.ok(f, "GET", f"/deviceStates/{seg(dev)}")
    ctx.check(f, isinstance(got, dict) and got.get("state") == "UNAVAILABLE", f"GET /deviceStates/{dev} after unregister: {got}")
    await ctx.sim.phone(res, registered=True)
    await ctx.wait(f, lambda e: e.get("type") == "PeerStatusChange" and _dig(e, "endpoint.resource") == res
                   and _dig(e, "peer.peer_status") == "Reachable", "PeerStatusChange Reachable")
    await ctx.settle(f, lambda e: e.get("type") == "DeviceStateChanged" and _dig(e, "device_state.name") == dev
                     and _dig(e, "device_state.state") == "NOT_INUSE", "DeviceStateChanged NOT_INUSE")
    await ctx.client.ok(f, "DELETE", f"/applications/{ctx.app}/subscription",
                        params={"eventSource": f"endpoint:{ep},deviceState:{dev}"})
    # Stasis-controlled device states (NOTES §c): settable, readable, deletable; PJSIP devices are not.
    name = f"Stasis:{ctx.id(f, 'dev')}"
    await ctx.client.ok(f, "PUT", f"/deviceStates/{name}", params={"deviceState": "INUSE"}, expect=204)
    got = await ctx.client.ok(f, "GET", f"/deviceStates/{name}")
    ctx.check(f, got == {"name": name, "state": "INUSE"}, f"GET /deviceStates/{name}: {got}")
    await ctx.client.call(f, "PUT", f"/deviceStates/{seg(dev)}", params={"deviceState": "INUSE"}, expect=409,
                          why="only Stasis: devices can be controlled: 'Uncontrolled device specified'")
    await ctx.client.ok(f, "DELETE", f"/deviceStates/{name}", expect=204)


# --- Stasis membership: move, continue ------------------------------------------------------------------------
async def move_continue(ctx: Ctx) -> None:
    f = spec = "move-continue"
    start = await ctx.inbound(f, spec)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    call, no_app = ctx.id(f, "call"), ctx.id(f, "no-such-app")
    ctx.bind(spec, CALL=call, NO_APP=no_app)
    await ctx.client.ok(f, "POST", f"/channels/{c}/move", params={"app": no_app}, expect=204)
    await ctx.wait(f, about("ApplicationMoveFailed", c), "ApplicationMoveFailed for an unregistered app")
    await ctx.client.ok(f, "POST", f"/channels/{c}/move", params={"app": ctx.app2, "appArgs": f"moved,{call}"},
                        expect=204)
    await ctx.wait(f, about("StasisStart", c), "StasisStart in the second app", app=ctx.app2)
    await ctx.wait(f, about("StasisEnd", c), "StasisEnd in the first app")
    await ctx.client.ok(f, "POST", f"/channels/{c}/continue", expect=204)
    await ctx.wait(f, about("StasisEnd", c), "StasisEnd in the second app after continue", app=ctx.app2)
    await ctx.client.call(f, "POST", f"/channels/{c}/answer", expect=(409, 404),
                          why="the channel left Stasis: 'Channel not in Stasis application' (404 once it is gone)")
    await ctx.client.call(f, "DELETE", f"/channels/{c}", expect=(204, 404),
                          why="hang up what the dialplan left behind (404 once it is gone)")


# --- inventory, api-docs and error responses ----------------------------------------------------------------------
async def inventory(ctx: Ctx) -> None:
    f = "inventory"
    info = await ctx.client.ok(f, "GET", "/asterisk/info")
    if isinstance(info, dict):
        for part in ("build", "system", "config", "status"):
            ctx.check(f, part in info, f"GET /asterisk/info without 'only' has no {part!r}")
        ctx.check(f, _dig(info, "system.entity_id") == ctx.entity_id,
                  f"system.entity_id {_dig(info, 'system.entity_id')!r} differs from the entity id {ctx.entity_id!r}")
    only = await ctx.client.ok(f, "GET", "/asterisk/info", params={"only": "system"})
    ctx.check(f, isinstance(only, dict) and set(only) == {"system"}, f"GET /asterisk/info?only=system gave keys "
                                                                     f"{sorted(only) if isinstance(only, dict) else only}")
    ping = await ctx.client.ok(f, "GET", "/asterisk/ping")
    ctx.check(f, isinstance(ping, dict) and ping.get("ping") == "pong" and ping.get("asterisk_id") == ctx.entity_id,
              f"GET /asterisk/ping: {ping}")
    apps = await ctx.client.ok(f, "GET", "/applications")
    ctx.check(f, isinstance(apps, list) and ctx.app in [a.get("name") for a in apps if isinstance(a, dict)],
              f"GET /applications does not list {ctx.app}")
    await ctx.client.ok(f, "PUT", f"/applications/{ctx.app}/eventFilter", body={"allowed": [], "disallowed": []})
    for path in ("/channels", "/bridges", "/endpoints", "/endpoints/PJSIP", "/deviceStates", "/recordings/stored"):
        await ctx.client.ok(f, "GET", path)
    got = await ctx.client.call(f, "GET", "/channels", auth="api_key", expect=200,
                                why="?api_key=user:password authenticates like Basic (NOTES §d)")
    del got


async def api_docs(ctx: Ctx, local: Any) -> None:
    """The simulator serves Asterisk's api-docs with basePath rewritten to the address the client used."""
    f = "api-docs"
    host = ctx.client.base_url.split("://", 1)[1]
    listing = await ctx.client.ok(f, "GET", "/api-docs/resources.json")
    if not isinstance(listing, dict):
        raise FlowError("resources.json is not a JSON object")
    ctx.check(f, listing.get("basePath") == f"http://{host}/ari",
              f"resources.json basePath {listing.get('basePath')!r}, Asterisk rewrites it to 'http://{host}/ari' "
              f"from the Host header (NOTES §g)")
    ctx.check(f, listing.get("apiVersion") == local.api_version,
              f"resources.json apiVersion {listing.get('apiVersion')!r} differs from the api-docs' {local.api_version!r}")
    for api in listing.get("apis", []):
        name = str(api.get("path", "")).rsplit("/", 1)[-1].replace(".{format}", "")
        served = await ctx.client.ok(f, "GET", f"/api-docs/{name}.json")
        if not isinstance(served, dict):
            continue
        ctx.check(f, served.get("basePath") == f"http://{host}/ari",
                  f"{name}.json basePath {served.get('basePath')!r}, expected 'http://{host}/ari'")
        original = dict(local.resource_files.get(name, {}))
        ctx.check(f, {k: v for k, v in served.items() if k != "basePath"}
                  == {k: v for k, v in original.items() if k != "basePath"},
                  f"{name}.json served differs from Asterisk's file beyond basePath")
    await ctx.client.call(f, "GET", "/api-docs/resources.json", auth="none", expect=401,
                          why="api-docs need credentials too (res_ari.c authenticates first)")
    await ctx.client.call(f, "GET", "/api-docs/no-such-resource.json", expect=404,
                          why="ast_ari_get_docs: 'Resource not found'")


async def errors(ctx: Ctx) -> None:
    f = "errors"
    call = ctx.client.call
    await call(f, "GET", "/channels/no-such-channel", expect=404, why="Channel not found")
    await call(f, "POST", "/channels/no-such-channel/answer", expect=404, why="Channel not found")
    await call(f, "GET", "/bridges/no-such-bridge", expect=404, why="Bridge not found")
    await call(f, "DELETE", "/bridges/no-such-bridge", expect=404, why="Bridge not found")
    await call(f, "GET", "/recordings/live/no-such-recording", expect=404, why="Recording not found")
    await call(f, "GET", "/recordings/stored/no-such-recording", expect=404, why="Recording not found")
    await call(f, "GET", "/playbacks/no-such-playback", expect=404, why="The playback cannot be found")
    await call(f, "GET", f"/applications/{ctx.id(f, 'no-app')}", expect=404, why="Application does not exist")
    await call(f, "GET", "/endpoints/PJSIP/no-such-endpoint", expect=404, why="Endpoints not found")
    await call(f, "POST", "/channels", params={"app": ctx.app}, expect=400,
               why="originate without endpoint: 400 (NOTES §g)")
    await call(f, "POST", "/channels", params={"endpoint": "agent-without-technology", "app": ctx.app}, expect=400,
               why="endpoint without '/': 400 (NOTES §g)")
    ex = await call(f, "POST", "/channels", params={"endpoint": "Bogus/xyz", "app": ctx.app}, expect=500,
                    why="unknown technology: 500 {\"error\": \"Allocation failed\"} (NOTES §g)")
    ctx.check(f, ex.json_body == {"error": "Allocation failed"},
              f"unknown technology must answer {{\"error\": \"Allocation failed\"}}, got {ex.body[:120]!r}")
    await call(f, "POST", "/channels", params={"endpoint": "PJSIP/nobody"}, expect=400,
               why="'Application or extension must be specified'")
    await call(f, "POST", "/channels", params={"endpoint": "PJSIP/nobody", "app": ctx.app, "channelId": "x" * 150},
               expect=400, why="'Uniqueid length exceeds maximum of 149'")
    await call(f, "POST", "/channels/create", params={"app": ctx.app}, expect=400, why="'Endpoint must be specified'")
    generated = await ctx.client.ok(f, "POST", "/bridges", params={"type": "mixing"})
    gid = str(generated.get("id")) if isinstance(generated, dict) else ""
    ctx.check(f, bool(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", gid)),
              f"POST /bridges without bridgeId: id {gid!r} is not a UUID like Asterisk's ast_uuid_generate_str")
    listing = await ctx.client.ok(f, "GET", "/bridges")
    ctx.check(f, isinstance(listing, list) and gid in [b.get("id") for b in listing if isinstance(b, dict)],
              f"GET /bridges does not list the new bridge {gid}")
    await ctx.client.ok(f, "DELETE", f"/bridges/{gid}", expect=204)
    bid = ctx.id(f, "dup")
    await ctx.bridge(f, bid, "mixing")
    await call(f, "POST", f"/bridges/{bid}", params={"type": "mixing"}, expect=409,
               why="duplicate bridge id (NOTES §c)")
    await call(f, "POST", "/bridges", params={"type": "holding", "bridgeId": bid}, expect=409,
               why="duplicate bridge id through bridgeId (NOTES §c)")
    await call(f, "POST", f"/bridges/{bid}/addChannel", params={"channel": "no-such-channel"}, expect=400,
               why="addChannel of an unknown channel: 400 Channel not found (bridges.json)")
    await call(f, "POST", "/bridges/no-such-bridge/addChannel", params={"channel": "x"}, expect=404,
               why="Bridge not found")
    await call(f, "POST", f"/applications/{ctx.app}/subscription", params={"eventSource": "channel:no-such-channel"},
               expect=422, why="Event source does not exist")
    await ctx.client.ok(f, "DELETE", f"/bridges/{bid}", expect=204)
    await call(f, "GET", "/channels", auth="none", expect=401, why="no credentials")
    await call(f, "GET", "/channels", auth="bad", expect=401, why="wrong password")
    await call(f, "GET", "/no-such-resource", expect=404, why="Resource not found")
    await call(f, "POST", "/channels/no-such-channel/no-such-action", expect=404, why="Resource not found")
    ex = await call(f, "GET", "/channels/", expect=404, why="ARI URLs do not end with a slash (res_ari.c)")
    ctx.check(f, isinstance(ex.json_body, dict)
              and str(ex.json_body.get("message", "")).startswith("ARI URLs do not end with a slash"),
              f"GET /ari/channels/ should explain 'ARI URLs do not end with a slash. Try /ari/channels', "
              f"got {ex.body[:120]!r}")
    await call(f, "PUT", "/channels", expect=405, why="Invalid method")
    # The WebSocket subprotocol "ari" is accepted when asked for (res_ari.c registers the "ari" protocol).
    # A throwaway app name, so that the flows' own app is not taken over.
    ws = await ctx.client.session.ws_connect(f"{ctx.client.base_url}/ari/events",
                                             params={"app": ctx.id(f, "proto")}, headers=ctx.client.auth_headers,
                                             protocols=("ari",))
    ctx.check(f, ws.protocol == "ari", f"WebSocket subprotocol 'ari' requested, server chose {ws.protocol!r}")
    await ws.close()
    # The event WebSocket without credentials, and without app.
    for params, headers, want in (({"app": ctx.app}, {}, 401), ({}, ctx.client.auth_headers, 400)):
        try:
            ws = await ctx.client.session.ws_connect(f"{ctx.client.base_url}/ari/events", params=params,
                                                     headers=headers)
        except Exception as exc:  # aiohttp raises WSServerHandshakeError with the status
            status = getattr(exc, "status", None)
            ctx.check(f, status == want, f"GET /ari/events {params or 'without app'}: handshake status {status}, "
                                         f"Asterisk answers {want}")
        else:
            await ws.close()
            ctx.check(f, False, f"GET /ari/events {params or 'without app'} "
                                f"{'' if headers else 'without credentials'} was upgraded; Asterisk answers {want}")


# --- WebSocket-level flows (run alone) -------------------------------------------------------------------------
async def application_replaced(ctx: Ctx) -> None:
    f = "application-replaced"
    old = ctx.connections["main"]
    new = await ctx.client.connect(f, [ctx.app])
    try:
        await ctx.rec.wait_for(ctx.app, lambda e: e.get("type") == "ApplicationReplaced", timeout=WAIT,
                               what="ApplicationReplaced on the older WebSocket", flow=f)
    except FlowError:
        await new.close()
        raise
    ctx.check(f, any(isinstance(m.event, dict) and m.event.get("type") == "ApplicationReplaced" for m in old.messages),
              "ApplicationReplaced must reach the older connection, not the new one")
    ctx.check(f, not any(isinstance(m.event, dict) and m.event.get("type") == "ApplicationReplaced"
                         for m in new.messages),
              "the new connection must not receive ApplicationReplaced")
    ctx.connections["main"] = new
    # Events now go to the new connection only.
    before = len(old.messages)
    start = await ctx.inbound(f, f)
    c = start["channel"]["id"]
    ctx.check(f, any(isinstance(m.event, dict) and _dig(m.event, "channel.id") == c for m in new.messages),
              "after the takeover the new connection receives the app's events")
    ctx.check(f, len(old.messages) == before, "the replaced connection must receive no more events for the app")
    await old.close()
    await ctx.hangup(f, c)
    await ctx.wait(f, about("StasisEnd", c), "StasisEnd after DELETE")


async def websocket_drop(ctx: Ctx) -> None:
    f = "websocket-drop"
    start = await ctx.inbound(f, f)
    c = start["channel"]["id"]
    await ctx.answer(f, c)
    conns = dict(ctx.connections)
    await ctx.sim.drop_websocket()
    main = conns["main"]
    try:
        await asyncio.wait_for(main.closed.wait(), WAIT)
    except asyncio.TimeoutError as exc:
        raise FlowError("POST /_sim/websocket/drop did not close the event WebSocket") from exc
    # The gap: what happens now is lost to the app (NOTES §d, §e.1). A subscribeAll watcher proves that it did
    # happen (and when), so that a late event is not mistaken for a lost one.
    watcher_app = ctx.id(f, "watcher")
    watcher = await ctx.client.connect(f, [watcher_app], subscribe_all=True, from_start=False)
    try:
        await ctx.sim.far_end(c, "dtmf", {"digits": "3"})
        await ctx.client.ok(f, "POST", f"/channels/{c}/variable", params={"variable": "CS_GAP", "value": "1"},
                            expect=204)
        await ctx.wait(f, about("ChannelDtmfReceived", c, digit="3"), "the gap's DTMF, seen by a subscribeAll watcher",
                       app=watcher_app)
        await ctx.wait(f, about("ChannelVarset", c, variable="CS_GAP"), "the gap's ChannelVarset, seen by the watcher",
                       app=watcher_app)
    finally:
        await watcher.close()
    got = await ctx.client.ok(f, "GET", f"/channels/{c}")
    ctx.check(f, isinstance(got, dict) and got.get("id") == c,
              "channels in Stasis survive the WebSocket going away (NOTES §d)")
    gap_call: str | None = None
    try:
        gap_call = await ctx.sim.inject_call(ctx.dids[0], ctx.caller_number(), "Gap Caller")
    except FlowError:
        gap_call = None  # the control API may refuse: the inactive app cannot take the call
    await ctx.sim.refuse_websocket(True)
    try:
        refused = await ctx.client.connect(f, [ctx.app])
    except FlowError:
        pass
    else:
        await refused.close()
        ctx.check(f, False, "PUT /_sim/websocket/refuse did not refuse the next WebSocket")
    await ctx.sim.refuse_websocket(False)
    for name, conn in conns.items():
        if conn.closed.is_set():
            ctx.connections[name] = await ctx.client.connect(f, list(conn.apps), conn.subscribe_all)
    await ctx.sim.far_end(c, "dtmf", {"digits": "4"})
    await ctx.wait(f, about("ChannelDtmfReceived", c, digit="4"), "events for the surviving channel after reconnecting")
    ctx.check(f, ctx.rec.find(ctx.app, about("ChannelDtmfReceived", c, digit="3")) is None,
              "an event from while the WebSocket was down was delivered; Asterisk drops them (NOTES §e.1)")
    ctx.check(f, ctx.rec.find(ctx.app, about("ChannelVarset", c, variable="CS_GAP")) is None,
              "a ChannelVarset from while the WebSocket was down was delivered; Asterisk drops them (NOTES §e.1)")
    if gap_call:
        ctx.check(f, ctx.rec.find(ctx.app, about("StasisStart", gap_call)) is None,
                  f"call {gap_call} arrived while the app was inactive yet entered Stasis; Stasis() fails for an "
                  f"inactive app (NOTES §d)")
        await ctx.client.call(f, "DELETE", f"/channels/{gap_call}")
    await ctx.hangup(f, c)
    await ctx.wait(f, about("StasisEnd", c), "StasisEnd after DELETE")


CONCURRENT: list[tuple[str, FlowFn]] = [
    ("b1-caller-hangs-up", b1_caller_hangs_up),
    ("b1-agent-hangs-up", b1_agent_hangs_up),
    ("b2-caller-abandons", b2_caller_abandons),
    ("agent-no-answer", agent_no_answer),
    ("agent-busy", agent_busy),
    ("b3-blind-transfer", b3_blind_transfer),
    ("b4-attended-transfer", b4_attended_transfer),
    ("b3-blind-transfer-phone", b3_blind_transfer_phone),
    ("b4-attended-transfer-phone", b4_attended_transfer_phone),
    ("b5-snoop", b5_snoop),
    ("b6-bridge-recording", b6_bridge_recording),
    ("channel-recording", channel_recording),
    ("playback", playback),
    ("playback-multi", playback_multi),
    ("dtmf-hold", dtmf_hold),
    ("create-dial", create_dial),
    ("endpoint-state", endpoint_state),
    ("outbound-calls", outbound_calls),
    ("multi-app", multi_app),
    ("move-continue", move_continue),
    ("inventory", inventory),
    ("errors", errors),
]

async def event_filter(ctx: Ctx) -> None:
    """PUT /applications/{app}/eventFilter drops what it disallows (NOTES §e.6), until it is reset."""
    f = "event-filter"
    app2 = ctx.app2
    got = await ctx.client.ok(f, "PUT", f"/applications/{app2}/eventFilter",
                              body={"disallowed": [{"type": "ChannelUserevent"}]})
    ctx.check(f, isinstance(got, dict) and got.get("events_disallowed") == [{"type": "ChannelUserevent"}]
              and got.get("events_allowed") == [], f"eventFilter answer should echo the filter: {got}")
    await ctx.client.ok(f, "POST", f"/events/user/{ctx.id(f, 'filtered')}", params={"application": app2}, expect=204)
    got = await ctx.client.ok(f, "PUT", f"/applications/{app2}/eventFilter", body={"allowed": [], "disallowed": []})
    ctx.check(f, isinstance(got, dict) and got.get("events_disallowed") == [] and got.get("events_allowed") == [],
              f"eventFilter reset: {got}")
    await ctx.client.ok(f, "POST", f"/events/user/{ctx.id(f, 'passed')}", params={"application": app2}, expect=204)
    await ctx.wait(f, about("ChannelUserevent", eventname=ctx.id(f, "passed")), "the user event after the reset",
                   app=app2)
    ctx.check(f, ctx.rec.find(app2, about("ChannelUserevent", eventname=ctx.id(f, "filtered"))) is None,
              "an event type the filter disallowed was delivered")
    await ctx.client.call(f, "PUT", f"/applications/{ctx.id(f, 'no-app')}/eventFilter", body={}, expect=404,
                          why="Application does not exist")


EXCLUSIVE: list[tuple[str, FlowFn]] = [
    ("event-filter", event_filter),
    ("application-replaced", application_replaced),
    ("websocket-drop", websocket_drop),
]
