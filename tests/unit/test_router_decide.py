"""The router's pure decider: every flow by example, then properties over a simulated PBX, Redis and agents.

The examples check exact command lists against ../shared/ari/NOTES.md §b. The properties drive `decide` with
random interleavings of calls, agent answers and failures, hangups, timers, transfers, snapshots, agent
pauses, duplicated and reordered events, with the real agent state machine behind a fake Redis.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callstream_agent_state.machine import (
    AgentMachineState,
    AgentPolicy,
    AgentReserved,
    EndpointRegistration,
    Rejection,
    due_timers,
    evolve,
)
from callstream_common.messages.agents import AgentState, AgentStateChanged
from callstream_common.messages.calls import (
    CallAbandoned,
    CallAgentMissed,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallTransferred,
)
from callstream_common.messages.cms import (
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentUnpause,
    TransferAttendedFinish,
    TransferAttendedStart,
    TransferBlind,
)
from callstream_common.messages.commands import (
    Answer,
    AriCommand,
    BridgeAddChannel,
    BridgeCreate,
    BridgeDestroy,
    BridgeRemoveChannel,
    Continue,
    Hangup,
    MohStart,
    Originate,
    Ring,
    VariableSet,
)
from callstream_router import ids
from callstream_router.config import DidRoute, QueueConfig, RouterConfig
from callstream_router.decide import decide
from callstream_router.inputs import (
    AgentFreed,
    CmsTransfer,
    CommandFailed,
    Deadline,
    ReservationResult,
    ReservedAgent,
    RouterInput,
    Snapshot,
    parse_ari_event,
)
from callstream_router.outputs import ReleaseAgent, ReserveAgent, RouterNote, RouterOutput
from callstream_router.state import RouterState, due_deadlines
from callstream_router.strategies import effective_level, next_relaxation

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PBX = "pbx1"

QUEUES = {
    "sales": QueueConfig("sales", ring_timeout_s=15, max_wait_s=120, overflow_action="queue",
                         overflow_queue_id="support", moh_class="default"),
    "support": QueueConfig("support", ring_timeout_s=20, max_wait_s=300, overflow_action="voicemail",
                           voicemail_extension="vm"),
    "vip": QueueConfig("vip", strategy="ring_all", ring_timeout_s=10, priority=10),
    "billing": QueueConfig("billing", required_skill="billing", min_skill_level=3, relax_after_s=10,
                           max_wait_s=60),
}
CONFIG = RouterConfig(
    pbx_id=PBX, queues=QUEUES,
    dids={"5550100": DidRoute(queue_id="sales"), "5550200": DidRoute(queue_id="support"),
          "5550300": DidRoute(queue_id="vip"), "5550400": DidRoute(queue_id="billing"),
          "5550500": DidRoute(extension="1002")},
    extensions={"1001": "ag1", "1002": "ag2", "1003": "ag3"},
)


def call_of(channel: str) -> str:
    return ids.call_id_for_channel(PBX, channel)


def ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def channel(channel_id: str, state: str = "Up", number: str = "15550001111", exten: str = "5550100") -> dict[str, Any]:
    return {"id": channel_id, "name": f"PJSIP/x-{channel_id}", "state": state, "protocol_id": "",
            "caller": {"name": "", "number": number}, "connected": {"name": "", "number": ""}, "accountcode": "",
            "dialplan": {"context": "from-trunk", "exten": exten, "priority": 1, "app_name": "Stasis",
                         "app_data": "callstream"},
            "creationtime": "2026-03-02T09:00:00.000+0000", "language": "en"}


def commands(out: list[RouterOutput]) -> list[Any]:
    return [o.operation for o in out if isinstance(o, AriCommand)]


def events(out: list[RouterOutput]) -> list[Any]:
    return [o for o in out if isinstance(o, (CallQueued, CallOffered, CallAgentMissed, CallAnswered, CallAbandoned,
                                             CallTransferred, CallOverflowed, CallEnded))]


def intents(out: list[RouterOutput]) -> list[ReserveAgent | ReleaseAgent]:
    return [o for o in out if isinstance(o, (ReserveAgent, ReleaseAgent))]


def kinds(out: list[RouterOutput]) -> list[str]:
    return [o.type for o in events(out)]


class Sim:
    """Drives decide for the examples: ARI events at consecutive offsets, explicit reservation answers."""

    def __init__(self, config: RouterConfig = CONFIG) -> None:
        self.config = config
        self.state = RouterState()
        self.now = T0
        self.offset = 0
        self.reserves: list[ReserveAgent] = []

    def feed(self, item: RouterInput) -> list[RouterOutput]:
        self.state, out = decide(self.state, item, self.now, self.config)
        self.reserves.extend(o for o in out if isinstance(o, ReserveAgent))
        return out

    def ari(self, kind: str, **fields: Any) -> list[RouterOutput]:
        self.offset += 1
        parsed = parse_ari_event({"type": kind, "timestamp": ts(self.now), "application": "callstream",
                                  "asterisk_id": "02:00:00:00:00:01", **fields}, ids.position("ari.events", 0, self.offset))
        assert parsed is not None
        return self.feed(parsed)

    def inbound(self, channel_id: str, did: str = "5550100", args: list[str] | None = None) -> list[RouterOutput]:
        return self.ari("StasisStart", args=args if args is not None else ["inbound", did],
                        channel=channel(channel_id, "Ring", exten=did))

    def answer(self, *agents: str, request: ReserveAgent | None = None) -> list[RouterOutput]:
        """Answer the oldest open reservation request with these agents (endpoint PJSIP/<agent>)."""
        req = request or self.reserves.pop(0)
        if request is not None:
            self.reserves.remove(request)
        return self.feed(ReservationResult(req.request_id, req.call_id,
                                           tuple(ReservedAgent(a, f"PJSIP/{a}") for a in agents)))

    def agent_answers(self, leg: str, call_id: str, role: str = "agent") -> list[RouterOutput]:
        out = self.ari("Dial", dialstatus="ANSWER", dialstring="x", forward="", peer=channel(leg, "Up"))
        return out + self.ari("StasisStart", args=[role, call_id], channel=channel(leg, "Up"))

    def advance(self, seconds: float) -> list[RouterOutput]:
        self.now += timedelta(seconds=seconds)
        out: list[RouterOutput] = []
        for deadline in due_deadlines(self.state, self.now, self.config):
            out += self.feed(deadline)
        return out

    def cms(self, command: Any) -> list[RouterOutput]:
        self.offset += 1
        return self.feed(CmsTransfer(ids.position("cms.commands", 0, self.offset), command))


def cms_fields(n: int) -> dict[str, Any]:
    return {"command_id": f"cmd-{n}", "requested_at": T0}


# ---- examples: inbound, bridging, hangups ---------------------------------------------------------------------

def test_inbound_call_is_answered_held_with_moh_and_queued_then_an_agent_is_reserved() -> None:
    sim = Sim()
    call, hold = call_of("C1"), ids.holding_bridge_id(call_of("C1"))
    out = sim.inbound("C1")
    assert commands(out) == [
        Answer(channel_id="C1"),
        BridgeCreate(bridge_id=hold, bridge_type="holding", name=call),
        MohStart(bridge_id=hold, moh_class="default"),
        BridgeAddChannel(bridge_id=hold, channel_ids=["C1"]),
    ]
    queued = events(out)
    assert [e.type for e in queued] == ["call.queued"]
    assert queued[0].queue_id == "sales" and queued[0].did == "5550100" and queued[0].caller_number == "15550001111"
    assert intents(out) == [ReserveAgent(request_id=f"rq:{call}:1", call_id=call, queue_id="sales")]
    assert [c.command_id for c in out if isinstance(c, AriCommand)] == [f"ari.events:0:1:{n}" for n in range(4)]
    assert all(c.ordering_key == f"call:{call}" for c in out if isinstance(c, AriCommand))


def test_full_inbound_flow_to_bridge_and_caller_hangup_matches_notes_b1() -> None:
    sim = Sim()
    call = call_of("C1")
    hold, leg, mix = ids.holding_bridge_id(call), ids.agent_leg_id(call, 1), ids.mixing_bridge_id(call, 1)
    sim.inbound("C1")
    out = sim.answer("ag1")
    assert commands(out) == [Originate(channel_id=leg, endpoint="PJSIP/ag1", app="callstream",
                                       app_args=f"agent,{call}", caller_id="15550001111", timeout_s=15,
                                       originator="C1")]
    offered = events(out)[0]
    assert isinstance(offered, CallOffered) and (offered.agent_id, offered.attempt, offered.agent_channel_id) == (
        "ag1", 1, leg)
    # Dial progress before the answer changes nothing (NOTES b1.5).
    for status in ("", "RINGING"):
        assert sim.ari("Dial", dialstatus=status, dialstring="ag1", forward="", peer=channel(leg, "Ringing")) == []
    sim.now += timedelta(seconds=4)
    out = sim.agent_answers(leg, call)
    assert commands(out) == [
        BridgeRemoveChannel(bridge_id=hold, channel_ids=["C1"]),
        BridgeCreate(bridge_id=mix, bridge_type="mixing", name=call),
        BridgeAddChannel(bridge_id=mix, channel_ids=["C1", leg]),
    ]
    answered = events(out)[0]
    assert isinstance(answered, CallAnswered) and answered.wait_s == pytest.approx(4.0) and answered.bridge_id == mix
    sim.now += timedelta(seconds=60)
    out = sim.ari("ChannelHangupRequest", cause=16, channel=channel("C1"))
    assert commands(out) == [Hangup(channel_id=leg), BridgeDestroy(bridge_id=mix), BridgeDestroy(bridge_id=hold)]
    (ended,) = events(out)
    assert isinstance(ended, CallEnded)
    assert (ended.outcome, ended.hangup_by, ended.agent_id, ended.cause) == ("completed", "caller", "ag1", 16)
    assert ended.talk_s == pytest.approx(60.0)
    # The rest of the teardown (NOTES b1.7-8) finds nothing left to do.
    for kind, extra in [("StasisEnd", {}), ("ChannelHangupRequest", {"soft": True, "cause": 32}),
                        ("ChannelDestroyed", {"cause": 16, "cause_txt": "Normal Clearing"})]:
        assert sim.ari(kind, channel=channel(leg), **extra) == []
    assert sim.state.calls == {}


def test_agent_hangs_up_first_ends_the_call_by_agent() -> None:
    sim = Sim()
    call = call_of("C1")
    sim.inbound("C1")
    sim.answer("ag1")
    leg = ids.agent_leg_id(call, 1)
    sim.agent_answers(leg, call)
    out = sim.ari("ChannelHangupRequest", cause=16, channel=channel(leg))
    assert commands(out)[0] == Hangup(channel_id="C1")
    (ended,) = events(out)
    assert isinstance(ended, CallEnded) and ended.hangup_by == "agent" and ended.agent_id == "ag1"


@pytest.mark.parametrize(("status", "reason"), [("NOANSWER", "no_answer"), ("BUSY", "busy"),
                                                 ("CHANUNAVAIL", "unreachable"), ("CONGESTION", "failed")])
def test_unanswered_leg_is_missed_released_and_the_next_agent_is_asked_without_it(status: str, reason: str) -> None:
    sim = Sim()
    call = call_of("C1")
    sim.inbound("C1")
    sim.answer("ag1")
    leg = ids.agent_leg_id(call, 1)
    out = sim.ari("Dial", dialstatus=status, dialstring="ag1", forward="", peer=channel(leg, "Down"))
    assert commands(out) == []
    assert [(e.type, e.agent_id, e.reason) for e in events(out) if isinstance(e, CallAgentMissed)] == [
        ("call.agent-missed", "ag1", reason)]
    # No ReleaseAgent: call.agent-missed is the release, agent-state moves the agent (outputs.ReleaseAgent).
    assert intents(out) == [ReserveAgent(request_id=f"rq:{call}:2", call_id=call, queue_id="sales", exclude=("ag1",))]
    # Destroyed after the Dial: already handled.
    assert sim.ari("ChannelDestroyed", cause=17, cause_txt="Busy", channel=channel(leg)) == []
    out = sim.answer("ag2")
    assert commands(out)[0].channel_id == ids.agent_leg_id(call, 2)
    assert events(out)[0].attempt == 2


def test_leg_destroyed_before_any_dial_event_counts_as_missed_by_its_cause() -> None:
    sim = Sim()
    call = call_of("C1")
    sim.inbound("C1")
    sim.answer("ag1")
    out = sim.ari("ChannelDestroyed", cause=21, cause_txt="Call Rejected", channel=channel(ids.agent_leg_id(call, 1)))
    assert [e.reason for e in events(out) if isinstance(e, CallAgentMissed)] == ["rejected"]


def test_ring_deadline_hangs_up_a_leg_whose_events_were_lost() -> None:
    sim = Sim()
    call = call_of("C1")
    sim.inbound("C1")
    sim.answer("ag1")
    leg = ids.agent_leg_id(call, 1)
    assert sim.advance(15) == []  # Asterisk's own timeout comes first; the router waits the grace too
    out = sim.advance(6)
    assert commands(out) == [Hangup(channel_id=leg, reason="timeout")]
    assert [c.command_id for c in out if isinstance(c, AriCommand)] == [f"dl:{call}:ring:1:0"]
    assert kinds(out) == ["call.agent-missed"]


def test_failed_originate_is_a_miss() -> None:
    sim = Sim()
    call = call_of("C1")
    sim.inbound("C1")
    out = sim.answer("ag1")
    originate_id = next(o.command_id for o in out if isinstance(o, AriCommand))
    out = sim.feed(CommandFailed("ari.command-results:0:9", originate_id, "originate", 500))
    assert [(e.type, e.reason) for e in events(out)] == [("call.agent-missed", "failed")]


def test_caller_abandons_while_waiting() -> None:
    sim = Sim()
    call = call_of("C1")
    sim.inbound("C1")
    sim.answer()  # no agent
    sim.now += timedelta(seconds=30)
    out = sim.ari("ChannelHangupRequest", cause=16, channel=channel("C1"))
    assert commands(out) == [BridgeDestroy(bridge_id=ids.holding_bridge_id(call))]
    abandoned, ended = events(out)
    assert isinstance(abandoned, CallAbandoned) and abandoned.wait_s == pytest.approx(30)
    assert abandoned.while_ringing_agent is None
    assert isinstance(ended, CallEnded) and (ended.outcome, ended.hangup_by) == ("abandoned", "caller")
    assert sim.ari("StasisEnd", channel=channel("C1")) == []


def test_caller_abandons_while_an_agent_rings_hangs_up_the_leg_and_releases_the_agent() -> None:
    sim = Sim()
    call = call_of("C1")
    leg = ids.agent_leg_id(call, 1)
    sim.inbound("C1")
    sim.answer("ag1")
    out = sim.ari("ChannelHangupRequest", cause=16, channel=channel("C1"))
    assert commands(out) == [Hangup(channel_id=leg), BridgeDestroy(bridge_id=ids.holding_bridge_id(call))]
    assert intents(out) == []  # call.abandoned names the ringing agent: agent-state releases it
    assert kinds(out) == ["call.abandoned", "call.ended"]
    assert events(out)[0].while_ringing_agent == "ag1"
    # NOTES b2.2: the cancelled leg reports NOANSWER and is destroyed; a late answer is hung up.
    assert events(sim.ari("Dial", dialstatus="NOANSWER", dialstring="ag1", forward="", peer=channel(leg))) == []
    out = sim.ari("StasisStart", args=["agent", call], channel=channel(leg))
    assert [(c.command_id, c.operation) for c in out if isinstance(c, AriCommand)] == [
        (f"gc:{leg}", Hangup(channel_id=leg))]


def test_a_reservation_answered_after_the_caller_left_is_released() -> None:
    sim = Sim()
    call = call_of("C1")
    sim.inbound("C1")
    sim.ari("StasisEnd", channel=channel("C1"))
    out = sim.answer("ag1")
    assert intents(out) == [ReleaseAgent("ag1", call)]  # no event names it: the router undoes it
    assert commands(out) == []


def test_duplicate_stasis_start_changes_nothing_and_reprocessing_gives_the_same_ids() -> None:
    sim = Sim()
    before = sim.state
    first = sim.inbound("C1")
    again_state, again = decide(before, parse_ari_event(
        {"type": "StasisStart", "timestamp": ts(T0), "args": ["inbound", "5550100"],
         "channel": channel("C1", "Ring")}, "ari.events:0:1"), T0 + timedelta(seconds=3), CONFIG)
    assert [c.command_id for c in again if isinstance(c, AriCommand)] == \
        [c.command_id for c in first if isinstance(c, AriCommand)]
    assert commands(again) == commands(first)
    out = sim.ari("StasisStart", args=["inbound", "5550100"], channel=channel("C1", "Ring"))
    assert [type(o) for o in out] == [RouterNote]


# ---- examples: choosing agents ------------------------------------------------------------------------------

def test_waiting_calls_ask_in_priority_then_wait_order_when_an_agent_frees() -> None:
    sim = Sim()
    sim.inbound("C1", "5550100")  # sales, priority 0
    sim.answer()
    sim.now += timedelta(seconds=0.5)
    out = sim.inbound("C2", "5550100")
    assert intents(out) == []  # the queue just had nobody: not asked again before retry_s
    sim.now += timedelta(seconds=1)
    sim.inbound("C3", "5550300")  # vip, priority 10
    sim.answer()
    out = sim.feed(AgentFreed("agents:0:1", "ag1"))
    asked = [i.call_id for i in intents(out) if isinstance(i, ReserveAgent)]
    assert asked == [call_of("C3"), call_of("C1"), call_of("C2")]


def test_skill_level_relaxes_with_the_wait() -> None:
    sim = Sim()
    call = call_of("C1")
    out = sim.inbound("C1", "5550400")
    assert intents(out) == [ReserveAgent(request_id=f"rq:{call}:1", call_id=call, queue_id="billing",
                                         skill="billing", min_level=3)]
    sim.answer()
    assert sim.advance(1) == []  # the queue had nobody at level 3: not asked again before retry_s
    out = sim.advance(1)
    assert [(i.min_level, i.request_id) for i in intents(out)] == [(3, f"rq:{call}:2")]
    sim.answer()
    out = sim.advance(8)  # the relaxation comes before the next retry
    assert [(i.min_level, i.request_id) for i in intents(out)] == [(2, f"rq:{call}:3")]
    sim.answer()
    sim.now += timedelta(seconds=20)
    out = sim.feed(AgentFreed("agents:0:2", "ag9"))
    assert [i.min_level for i in intents(out) if isinstance(i, ReserveAgent)] == [1]


def test_relaxation_is_stepwise_and_never_drops_the_skill() -> None:
    billing = QUEUES["billing"]
    assert [effective_level(billing, s) for s in (0, 9.9, 10, 25, 40)] == [3, 3, 2, 1, 1]
    assert next_relaxation(billing, T0, T0 + timedelta(seconds=12)) == T0 + timedelta(seconds=20)
    assert next_relaxation(billing, T0, T0 + timedelta(seconds=21)) is None
    assert effective_level(QUEUES["sales"], 1000) == 0
    assert next_relaxation(QUEUES["sales"], T0, T0) is None


def test_ring_all_originates_to_every_agent_and_the_first_answer_wins() -> None:
    sim = Sim()
    call = call_of("C1")
    out = sim.inbound("C1", "5550300")
    assert intents(out)[0].count == "all"
    out = sim.answer("ag1", "ag2", "ag3")
    legs = [ids.agent_leg_id(call, n) for n in (1, 2, 3)]
    assert [c.channel_id for c in commands(out)] == legs
    assert [e.agent_id for e in events(out)] == ["ag1", "ag2", "ag3"]
    out = sim.ari("Dial", dialstatus="BUSY", dialstring="ag3", forward="", peer=channel(legs[2]))
    assert kinds(out) == ["call.agent-missed"] and not any(isinstance(i, ReserveAgent) for i in intents(out))
    out = sim.agent_answers(legs[1], call)
    mix = ids.mixing_bridge_id(call, 1)
    assert commands(out) == [
        BridgeRemoveChannel(bridge_id=ids.holding_bridge_id(call), channel_ids=["C1"]),
        BridgeCreate(bridge_id=mix, bridge_type="mixing", name=call),
        BridgeAddChannel(bridge_id=mix, channel_ids=["C1", legs[1]]),
        Hangup(channel_id=legs[0], reason="answered_elsewhere"),
    ]
    assert intents(out) == []  # call.answered by ag2 releases ag1 in agent-state
    assert [e.agent_id for e in events(out)] == ["ag2"]
    assert commands(sim.agent_answers(legs[0], call)) == [Hangup(channel_id=legs[0])]


# ---- examples: overflow -------------------------------------------------------------------------------------

def test_max_wait_overflows_to_another_queue_keeping_waiting_since() -> None:
    sim = Sim()
    call = call_of("C1")
    sim.inbound("C1", "5550100")
    sim.answer()
    out = sim.advance(120)
    overflowed, queued = [e for e in events(out)]
    assert isinstance(overflowed, CallOverflowed) and (overflowed.to_queue_id, overflowed.action) == (
        "support", "queue")
    assert isinstance(queued, CallQueued) and queued.queue_id == "support" and queued.waiting_since == T0
    assert commands(out) == []  # still in its holding bridge
    assert [i.queue_id for i in intents(out) if isinstance(i, ReserveAgent)] == ["support"]
    sim.reserves.clear()
    out = sim.advance(300)
    assert commands(out) == [
        VariableSet(channel_id="C1", variable="CALLSTREAM_QUEUE", value="support"),
        Continue(channel_id="C1", context="callstream-voicemail", extension="vm", priority=1),
        BridgeDestroy(bridge_id=ids.holding_bridge_id(call)),
    ]
    assert kinds(out) == ["call.overflowed", "call.ended"]
    assert events(out)[1].outcome == "overflowed"
    assert sim.ari("StasisEnd", channel=channel("C1")) == []


def test_overflow_to_hangup_and_deferred_while_an_agent_rings() -> None:
    config = replace(CONFIG, queues={"q": QueueConfig("q", max_wait_s=30, ring_timeout_s=20)},
                     dids={"1": DidRoute(queue_id="q")})
    sim = Sim(config)
    call = call_of("C1")
    sim.inbound("C1", "1")
    sim.now += timedelta(seconds=25)
    sim.answer("ag1")
    assert events(sim.advance(10)) == []  # max wait passed, but ag1 is ringing
    out = sim.ari("Dial", dialstatus="NOANSWER", dialstring="ag1", forward="",
                  peer=channel(ids.agent_leg_id(call, 1)))
    assert kinds(out) == ["call.agent-missed", "call.overflowed", "call.ended"]
    assert Hangup(channel_id="C1") in commands(out)


# ---- examples: transfers ------------------------------------------------------------------------------------

def talking(sim: Sim, caller: str = "C1", agent: str = "ag1", did: str = "5550100") -> str:
    call = call_of(caller)
    sim.inbound(caller, did)
    sim.answer(agent)
    sim.agent_answers(ids.agent_leg_id(call, 1), call)
    return call


def test_blind_transfer_to_a_queue_requeues_keeping_waiting_since() -> None:
    sim = Sim()
    call = talking(sim)
    sim.now += timedelta(seconds=30)
    out = sim.cms(TransferBlind(agent_id="ag1", call_id=call, to_queue_id="support", **cms_fields(1)))
    hold, mix = ids.holding_bridge_id(call), ids.mixing_bridge_id(call, 1)
    assert commands(out) == [
        BridgeRemoveChannel(bridge_id=mix, channel_ids=["C1"]),
        BridgeAddChannel(bridge_id=hold, channel_ids=["C1"]),
        Hangup(channel_id=ids.agent_leg_id(call, 1)),
        BridgeDestroy(bridge_id=mix),
    ]
    transferred, queued = events(out)
    assert isinstance(transferred, CallTransferred) and (transferred.kind, transferred.from_agent_id,
                                                         transferred.to_queue_id) == ("blind_queue", "ag1", "support")
    assert isinstance(queued, CallQueued) and queued.waiting_since == T0
    assert intents(out)[0].exclude == ("ag1",)
    # The agent's leg going away now is expected; the same command again is acted on once.
    assert events(sim.ari("ChannelHangupRequest", soft=True, cause=32, channel=channel(ids.agent_leg_id(call, 1)))) == []
    assert [type(o) for o in sim.cms(TransferBlind(agent_id="ag1", call_id=call, to_queue_id="support",
                                                   **cms_fields(1)))] == [RouterNote]
    out = sim.answer("ag2")
    out = sim.agent_answers(ids.agent_leg_id(call, 2), call)
    assert commands(out)[1] == BridgeCreate(bridge_id=ids.mixing_bridge_id(call, 2), bridge_type="mixing", name=call)


def test_blind_transfer_to_an_agent_extension_and_to_an_outside_extension() -> None:
    sim = Sim()
    call = talking(sim)
    out = sim.cms(TransferBlind(agent_id="ag1", call_id=call, to_extension="1003", **cms_fields(1)))
    assert [(e.kind, e.to_agent_id) for e in events(out)] == [("blind_extension", "ag3")]
    assert intents(out) == [ReserveAgent(request_id=f"rq:{call}:2", call_id=call, queue_id=None, agent_id="ag3")]
    out = sim.answer()  # ag3 is busy: back to the queue it came from
    assert kinds(out) == ["call.queued"]

    sim2 = Sim()
    call2 = talking(sim2, "C9")
    out = sim2.cms(TransferBlind(agent_id="ag1", call_id=call2, to_extension="5559999", **cms_fields(2)))
    assert commands(out)[:2] == [Continue(channel_id="C9", context="callstream-external", extension="5559999",
                                          priority=1), Hangup(channel_id=ids.agent_leg_id(call2, 1))]
    assert kinds(out) == ["call.transferred", "call.ended"]


def test_attended_transfer_consults_then_completes() -> None:
    sim = Sim()
    call = talking(sim)
    hold, mix = ids.holding_bridge_id(call), ids.mixing_bridge_id(call, 1)
    consult = ids.consult_call_id(call, 1)
    out = sim.cms(TransferAttendedStart(agent_id="ag1", call_id=call, to_queue_id="support", **cms_fields(1)))
    assert commands(out) == [BridgeRemoveChannel(bridge_id=mix, channel_ids=["C1"]),
                             BridgeAddChannel(bridge_id=hold, channel_ids=["C1"])]
    assert intents(out) == [ReserveAgent(request_id=f"rq:{consult}:1", call_id=consult, queue_id="support",
                                         exclude=("ag1",))]
    out = sim.answer("ag2")
    assert commands(out) == [Originate(channel_id=consult, endpoint="PJSIP/ag2", app="callstream",
                                       app_args=f"consult,{call}", caller_id="15550001111", timeout_s=20,
                                       originator=ids.agent_leg_id(call, 1))]
    assert [(e.type, e.call_id) for e in events(out)] == [("call.offered", consult)]
    out = sim.agent_answers(consult, call, role="consult")
    assert commands(out) == [BridgeAddChannel(bridge_id=mix, channel_ids=[consult])]
    assert [(e.type, e.call_id, e.agent_id) for e in events(out)] == [("call.answered", consult, "ag2")]
    sim.now += timedelta(seconds=10)
    out = sim.cms(TransferAttendedFinish(agent_id="ag1", call_id=call, action="complete", **cms_fields(2)))
    assert commands(out) == [BridgeRemoveChannel(bridge_id=hold, channel_ids=["C1"]),
                             BridgeAddChannel(bridge_id=mix, channel_ids=["C1"]),
                             Hangup(channel_id=ids.agent_leg_id(call, 1))]
    transferred, consult_ended = events(out)
    assert isinstance(transferred, CallTransferred) and (transferred.kind, transferred.from_agent_id,
                                                         transferred.to_agent_id) == ("attended", "ag1", "ag2")
    assert isinstance(consult_ended, CallEnded) and consult_ended.call_id == consult
    # ag2 now holds the call: its hangup ends it.
    out = sim.ari("ChannelHangupRequest", cause=16, channel=channel(consult))
    (ended,) = events(out)
    assert isinstance(ended, CallEnded) and ended.agent_id == "ag2" and ended.hold_s == pytest.approx(10)


def test_attended_transfer_cancel_and_consult_no_answer_bring_the_caller_back() -> None:
    sim = Sim()
    call = talking(sim)
    hold, mix = ids.holding_bridge_id(call), ids.mixing_bridge_id(call, 1)
    sim.cms(TransferAttendedStart(agent_id="ag1", call_id=call, to_extension="1002", **cms_fields(1)))
    assert sim.reserves[0].agent_id == "ag2"
    sim.answer("ag2")
    out = sim.cms(TransferAttendedFinish(agent_id="ag1", call_id=call, action="cancel", **cms_fields(2)))
    consult = ids.consult_call_id(call, 1)
    assert commands(out) == [Hangup(channel_id=consult), BridgeRemoveChannel(bridge_id=hold, channel_ids=["C1"]),
                             BridgeAddChannel(bridge_id=mix, channel_ids=["C1"])]
    assert intents(out) == []  # the consultation's call.ended releases ag2 in agent-state
    assert [(e.call_id, e.outcome) for e in events(out)] == [(consult, "abandoned")]
    sim.cms(TransferAttendedStart(agent_id="ag1", call_id=call, to_queue_id="support", **cms_fields(3)))
    sim.answer("ag3")
    consult2 = ids.consult_call_id(call, 2)
    out = sim.ari("Dial", dialstatus="NOANSWER", dialstring="ag3", forward="", peer=channel(consult2))
    assert kinds(out) == ["call.agent-missed", "call.ended"]
    assert commands(out)[-1] == BridgeAddChannel(bridge_id=mix, channel_ids=["C1"])
    assert sim.state.calls[call].phase == "talking"


# ---- examples: direct calls, repair -------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["inbound", "5550500"], ["extension", "1002"]])
def test_direct_call_to_an_extension_rings_that_agent_only(args: list[str]) -> None:
    sim = Sim()
    call = call_of("C1")
    out = sim.inbound("C1", args=args)
    assert commands(out) == [Ring(channel_id="C1")]
    assert intents(out) == [ReserveAgent(request_id=f"rq:{call}:1", call_id=call, queue_id=None, agent_id="ag2")]
    assert events(out) == []
    out = sim.answer("ag2")
    assert events(out)[0].queue_id is None
    out = sim.agent_answers(ids.agent_leg_id(call, 1), call)
    mix = ids.mixing_bridge_id(call, 1)
    assert commands(out) == [Answer(channel_id="C1"), BridgeCreate(bridge_id=mix, bridge_type="mixing", name=call),
                             BridgeAddChannel(bridge_id=mix, channel_ids=["C1", ids.agent_leg_id(call, 1)])]


def test_direct_call_to_a_busy_agent_is_rejected_and_unknown_did_unallocated() -> None:
    sim = Sim()
    sim.inbound("C1", args=["extension", "1002"])
    out = sim.answer()
    assert commands(out) == [Hangup(channel_id="C1", reason="busy")]
    assert [(e.type, e.outcome) for e in events(out)] == [("call.ended", "rejected")]
    out = sim.inbound("C2", "9999")
    assert commands(out) == [Hangup(channel_id="C2", reason="unallocated")]
    assert [(e.type, e.outcome) for e in events(out)] == [("call.ended", "rejected")]


def test_snapshot_ends_calls_whose_channels_are_gone_and_cleans_leftovers() -> None:
    sim = Sim()
    c1, c2 = call_of("C1"), call_of("C2")
    sim.inbound("C1")
    sim.answer("ag1")
    talking(sim, "C2", "ag2")
    sim.now += timedelta(seconds=10)
    leftover = ids.holding_bridge_id(call_of("C0"))
    out = sim.feed(Snapshot("ari.events:0:99", sim.now, frozenset({"C2", ids.agent_leg_id(c2, 1)}),
                            frozenset({leftover, ids.mixing_bridge_id(c2, 1), ids.holding_bridge_id(c2)})))
    assert [(e.call_id, e.type, getattr(e, "outcome", None)) for e in events(out)] == [(c1, "call.ended", "failed")]
    assert intents(out) == []  # c1's call.ended releases ag1 in agent-state
    assert Hangup(channel_id=ids.agent_leg_id(c1, 1)) in commands(out)
    cleanup = [c for c in out if isinstance(c, AriCommand) and c.command_id.startswith("gc:")]
    assert [c.operation for c in cleanup] == [BridgeDestroy(bridge_id=leftover)]
    out = sim.feed(Snapshot("ari.events:0:100", sim.now, frozenset({"C2"}), frozenset()))
    assert [(e.call_id, e.hangup_by) for e in events(out)] == [(c2, "agent")]


def test_parse_ari_event_reads_the_notes_examples_and_ignores_the_rest() -> None:
    start = parse_ari_event({"type": "StasisStart", "timestamp": "2025-04-22T17:28:24.283+0200", "args": [],
                             "channel": channel("1745335704.8974", "Ring", exten="6003")}, "o")
    assert start is not None and start.at == datetime(2025, 4, 22, 15, 28, 24, 283000, tzinfo=UTC)
    assert parse_ari_event({"type": "ChannelVarset", "variable": "X", "value": "1"}, "o") is None
    assert parse_ari_event({"type": "Dial", "dialstatus": "RINGING"}, "o") is None  # no peer
    assert parse_ari_event({"type": "StasisEnd"}, "o") is None


def test_the_sweeper_ends_a_call_open_past_its_maximum_age_and_hangs_up_its_channels() -> None:
    sim = Sim(replace(CONFIG, max_call_age_s=3600))
    call = talking(sim)
    agent_leg = ids.agent_leg_id(call, 1)
    assert [d for d in due_deadlines(sim.state, T0 + timedelta(seconds=3599), sim.config) if d.kind == "stale"] == []
    sim.now = T0 + timedelta(seconds=3601)
    due = due_deadlines(sim.state, sim.now, sim.config)
    assert due == [Deadline(call, "stale", 1)]  # its other timers no longer matter
    out = sim.feed(due[0])
    assert [n.kind for n in out if isinstance(n, RouterNote)] == ["stale_call"]
    hung_up = {c.channel_id for c in commands(out) if isinstance(c, Hangup)}
    assert hung_up == {"C1", agent_leg}
    assert [(e.type, e.outcome, e.hangup_by, e.agent_id) for e in events(out)] == [
        ("call.ended", "failed", "system", "ag1")]  # names ag1: agent-state releases it
    assert call not in sim.state.calls
    assert sim.feed(due[0]) == []  # fired twice: the call is gone, nothing more


def test_due_deadlines_and_state_serialises_for_the_table() -> None:
    sim = Sim()
    sim.inbound("C1")
    sim.answer("ag1")
    sim.inbound("C2")
    assert due_deadlines(sim.state, T0, CONFIG) == []
    due = due_deadlines(sim.state, T0 + timedelta(seconds=121), CONFIG)
    assert {(d.call_id, d.kind) for d in due} == {(call_of("C1"), "ring"), (call_of("C1"), "max_wait"),
                                                  (call_of("C2"), "max_wait"), (call_of("C2"), "reserve")}
    adapter = pydantic.TypeAdapter(RouterState)
    assert adapter.validate_json(adapter.dump_json(sim.state)) == sim.state


# ---- properties ---------------------------------------------------------------------------------------------

AGENTS = ("ag1", "ag2", "ag3", "ag4")
# Short waits, so overflows (to a queue, voicemail, hangup) happen within a few actions.
WORLD_CONFIG = replace(CONFIG, queues={
    **QUEUES,
    "sales": replace(QUEUES["sales"], max_wait_s=20),
    "support": replace(QUEUES["support"], max_wait_s=30),
    "billing": replace(QUEUES["billing"], max_wait_s=25, overflow_action="hangup"),
})
POLICY = AgentPolicy(auto_pause_after=2, default_wrapup_s=3.0)
BUSY = (AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL)


@dataclass
class World:
    """A PBX, Redis and agent-state around the decider, with the properties checked as it goes."""

    state: RouterState = field(default_factory=RouterState)
    now: datetime = T0
    offset: int = 0
    machines: dict[str, AgentMachineState] = field(default_factory=dict)
    reserved: dict[str, str] = field(default_factory=dict)  # Redis reservations: agent -> call
    offered_to: dict[str, set[str]] = field(default_factory=dict)  # call -> agents it was offered to
    ringing: dict[str, list[str]] = field(default_factory=dict)  # leg channel -> Stasis args on answer
    answered: set[str] = field(default_factory=set)
    callers: set[str] = field(default_factory=set)
    bridges: set[str] = field(default_factory=set)
    parked: list[dict[str, Any]] = field(default_factory=list)  # PBX events not delivered yet
    delivered: list[RouterInput] = field(default_factory=list)
    raw_delivered: list[dict[str, Any]] = field(default_factory=list)
    started: set[str] = field(default_factory=set)
    ended: Counter[str] = field(default_factory=Counter)
    command_ops: dict[str, Any] = field(default_factory=dict)
    callers_made: int = 0
    cms_made: int = 0

    def __post_init__(self) -> None:
        for agent in AGENTS:
            m = AgentMachineState.new(agent, T0)
            m, _ = evolve(m, EndpointRegistration(f"PJSIP/{agent}", True), T0, POLICY)
            m, _ = evolve(m, AgentLogin(command_id=f"login-{agent}", requested_at=T0, agent_id=agent,
                                        endpoint=f"PJSIP/{agent}"), T0, POLICY)
            self.machines[agent] = m

    # -- feeding the decider --

    def feed(self, item: RouterInput) -> None:
        pre = self.state
        self.state, out = decide(pre, item, self.now, WORLD_CONFIG)
        again_state, again = decide(pre, item, self.now, WORLD_CONFIG)
        assert again == out and again_state == self.state, "decide is not deterministic"
        self.delivered.append(item)
        self.check_state()
        freed: list[str] = []
        for o in out:
            self.act(item, o, freed)
        for agent in freed:
            self.offset += 1
            self.feed(AgentFreed(ids.position("agents", 0, self.offset), agent))

    def act(self, item: RouterInput, o: RouterOutput, freed: list[str]) -> None:
        if isinstance(o, AriCommand):
            assert o.command_id.startswith(item.origin + ":") or o.command_id.startswith("gc:"), o.command_id
            known = self.command_ops.setdefault(o.command_id, o.operation)
            assert known == o.operation, f"command id {o.command_id} reused for another operation"
            self.pbx(o.operation)
        elif isinstance(o, ReserveAgent):
            self.feed(ReservationResult(o.request_id, o.call_id, self.redis_reserve(o)))
        elif isinstance(o, ReleaseAgent):
            if self.reserved.get(o.agent_id) == o.call_id:
                del self.reserved[o.agent_id]
        elif not isinstance(o, RouterNote):
            self.call_event(o, freed)

    def redis_reserve(self, req: ReserveAgent) -> tuple[ReservedAgent, ...]:
        free = [a for a in AGENTS if self.machines[a].state == AgentState.AVAILABLE and a not in self.reserved
                and a not in req.exclude and (req.agent_id is None or a == req.agent_id)]
        chosen = free if req.count == "all" else free[:1]
        for agent in chosen:
            self.reserved[agent] = req.call_id
        return tuple(ReservedAgent(a, f"PJSIP/{a}") for a in chosen)

    def call_event(self, ev: Any, freed: list[str]) -> None:
        assert self.ended[ev.call_id] == 0, f"{ev.type} after call.ended of {ev.call_id}"
        if isinstance(ev, CallEnded):
            self.ended[ev.call_id] += 1
        else:
            self.started.add(ev.call_id)
        if isinstance(ev, CallOffered):
            self.offered_to.setdefault(ev.call_id, set()).add(ev.agent_id)
        named = {getattr(ev, name, None) for name in ("agent_id", "while_ringing_agent", "from_agent_id",
                                                      "to_agent_id")}
        for agent in sorted((named | self.offered_to.get(ev.call_id, set())) - {None}):
            assert isinstance(agent, str)
            before = self.machines[agent]
            after, outs = evolve(before, ev, self.now, POLICY)
            if isinstance(ev, CallOffered) and ev.agent_id == agent:
                # A paused (or otherwise unavailable) agent is never offered a call.
                assert before.state in (AgentState.AVAILABLE, AgentState.RESERVED), (before.state, ev)
                assert not any(isinstance(x, Rejection) for x in outs), outs
            self.machines[agent] = after
            self.agent_moved(agent, before, after, freed)

    def agent_moved(self, agent: str, before: AgentMachineState, after: AgentMachineState, freed: list[str]) -> None:
        # Agent-state's compare-and-set: once the agent leaves the reservation, Redis follows.
        if after.state not in (AgentState.RESERVED, AgentState.RINGING) and self.reserved.get(agent) == before.call_id:
            self.reserved.pop(agent, None)
        if after.state == AgentState.AVAILABLE and before.state != AgentState.AVAILABLE:
            freed.append(agent)

    # -- the PBX --

    def pbx(self, op: Any) -> None:
        if isinstance(op, Originate):
            self.ringing[op.channel_id] = (op.app_args or "").split(",")
            self.park({"type": "Dial", "dialstatus": "", "peer": channel(op.channel_id, "Down")})
        elif isinstance(op, Hangup):
            ch = op.channel_id
            if ch in self.ringing:
                del self.ringing[ch]
                self.park({"type": "ChannelHangupRequest", "soft": True, "cause": 32, "channel": channel(ch)},
                          {"type": "Dial", "dialstatus": "NOANSWER", "peer": channel(ch)},
                          {"type": "ChannelDestroyed", "cause": 16, "channel": channel(ch)})
            elif ch in self.answered or ch in self.callers:
                self.answered.discard(ch)
                self.callers.discard(ch)
                self.park({"type": "ChannelHangupRequest", "soft": True, "cause": 32, "channel": channel(ch)},
                          {"type": "StasisEnd", "channel": channel(ch)})
        elif isinstance(op, Continue):
            if op.channel_id in self.callers:
                self.callers.discard(op.channel_id)
                self.park({"type": "StasisEnd", "channel": channel(op.channel_id)})
        elif isinstance(op, BridgeCreate):
            self.bridges.add(op.bridge_id)
        elif isinstance(op, BridgeDestroy):
            self.bridges.discard(op.bridge_id)

    def park(self, *raw: dict[str, Any]) -> None:
        self.parked.extend(raw)

    def deliver(self, index: int = 0) -> None:
        raw = {**self.parked.pop(index % len(self.parked)), "timestamp": ts(self.now)}
        self.raw_delivered.append(raw)
        self.offset += 1
        parsed = parse_ari_event(raw, ids.position("ari.events", 0, self.offset))
        if parsed is not None:
            self.feed(parsed)

    def deliver_all(self) -> None:
        while self.parked:
            self.deliver()

    # -- world actions --

    def new_call(self, did_choice: int) -> None:
        self.callers_made += 1
        ch = f"C{self.callers_made}"
        args = [["inbound", "5550100"], ["inbound", "5550200"], ["inbound", "5550300"], ["inbound", "5550400"],
                ["inbound", "5550500"], ["extension", "1003"], ["inbound", "0000"]][did_choice % 7]
        self.callers.add(ch)
        self.park({"type": "StasisStart", "args": args, "channel": channel(ch, "Ring")})

    def agent_answers(self, pick: int) -> None:
        if self.ringing:
            leg = sorted(self.ringing)[pick % len(self.ringing)]
            args = self.ringing.pop(leg)
            self.answered.add(leg)
            self.park({"type": "Dial", "dialstatus": "ANSWER", "peer": channel(leg)},
                      {"type": "StasisStart", "args": args, "channel": channel(leg)})

    def agent_fails(self, pick: int, how: int) -> None:
        if self.ringing:
            leg = sorted(self.ringing)[pick % len(self.ringing)]
            del self.ringing[leg]
            status, cause = [("BUSY", 17), ("NOANSWER", 19), ("CHANUNAVAIL", 20), ("", 21)][how % 4]
            if status:
                self.park({"type": "Dial", "dialstatus": status, "peer": channel(leg)})
            self.park({"type": "ChannelDestroyed", "cause": cause, "channel": channel(leg)})

    def hangs_up(self, pick: int, caller: bool) -> None:
        pool = sorted(self.callers if caller else self.answered)
        if pool:
            ch = pool[pick % len(pool)]
            (self.callers if caller else self.answered).discard(ch)
            self.park({"type": "ChannelHangupRequest", "cause": 16, "channel": channel(ch)},
                      {"type": "StasisEnd", "channel": channel(ch)})
            if not caller:
                self.park({"type": "ChannelDestroyed", "cause": 16, "channel": channel(ch)})

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        for deadline in due_deadlines(self.state, self.now, WORLD_CONFIG):
            self.feed(deadline)
        for agent in AGENTS:
            for timer in due_timers(self.machines[agent], self.now, POLICY):
                before = self.machines[agent]
                self.machines[agent], _ = evolve(before, timer, self.now, POLICY)
                freed: list[str] = []
                self.agent_moved(agent, before, self.machines[agent], freed)
                for a in freed:
                    self.offset += 1
                    self.feed(AgentFreed(ids.position("agents", 0, self.offset), a))

    def duplicate(self, pick: int) -> None:
        """An input again: the last one at its own position (a crash before the commit), or any earlier ARI
        event at a new position (the gateway publishing it twice, or a replay)."""
        if pick % 2 == 0 and self.delivered:
            item = self.delivered[-1]
            if not isinstance(item, ReservationResult):  # answers come from Redis, never replayed blindly
                self.feed(item)
        elif self.raw_delivered:
            self.offset += 1
            raw = self.raw_delivered[pick % len(self.raw_delivered)]
            parsed = parse_ari_event(raw, ids.position("ari.events", 0, self.offset))
            if parsed is not None:
                self.feed(parsed)

    def agent_command(self, pick: int, kind: int) -> None:
        agent = AGENTS[pick % len(AGENTS)]
        self.cms_made += 1
        base = {"command_id": f"a{self.cms_made}", "requested_at": self.now, "agent_id": agent}
        command: Any = [AgentPause(reason="break", **base), AgentUnpause(**base), AgentLogout(**base),
                        AgentLogin(endpoint=f"PJSIP/{agent}", **base)][kind % 4]
        before = self.machines[agent]
        machine = before
        if agent in self.reserved and machine.state == AgentState.AVAILABLE:
            # The compare-and-set out of `available` failed: Redis shows the reservation first.
            machine, _ = evolve(machine, AgentReserved(self.reserved[agent]), self.now, POLICY)
        machine, _ = evolve(machine, command, self.now, POLICY)
        self.machines[agent] = machine
        freed: list[str] = []
        self.agent_moved(agent, before, machine, freed)
        for a in freed:
            self.offset += 1
            self.feed(AgentFreed(ids.position("agents", 0, self.offset), a))

    def transfer(self, pick: int, kind: int) -> None:
        talking_calls = sorted((c for c in self.state.calls.values() if c.agent_id is not None), key=lambda c: c.call_id)
        if not talking_calls:
            return
        call = talking_calls[pick % len(talking_calls)]
        self.cms_made += 1
        base = {"command_id": f"t{self.cms_made}", "requested_at": self.now, "agent_id": call.agent_id,
                "call_id": call.call_id}
        command: Any = [
            TransferBlind(to_queue_id="support", **base), TransferBlind(to_extension="1002", **base),
            TransferBlind(to_extension="5551234", **base), TransferAttendedStart(to_queue_id="sales", **base),
            TransferAttendedStart(to_extension="1003", **base),
            TransferAttendedFinish(action="complete", **base), TransferAttendedFinish(action="cancel", **base),
        ][kind % 7]
        self.offset += 1
        self.feed(CmsTransfer(ids.position("cms.commands", 0, self.offset), command))

    def snapshot(self) -> None:
        self.offset += 1
        present = frozenset(self.callers | self.answered | set(self.ringing))
        self.feed(Snapshot(ids.position("ari.events", 0, self.offset), self.now, present, frozenset(self.bridges)))

    # -- properties --

    def check_state(self) -> None:
        involved: list[str] = []
        for call in self.state.calls.values():
            agents = {leg.agent_id for leg in call.legs}
            if call.agent_id is not None:
                agents.add(call.agent_id)
            if call.consult is not None and call.consult.leg is not None:
                agents.add(call.consult.leg.agent_id)
            involved.extend(agents)
            assert call.call_id not in self.ended
        assert len(involved) == len(set(involved)), f"an agent is on two calls: {involved}"
        for agent, machine in self.machines.items():
            if machine.state in BUSY:
                assert machine.call_id is not None and self.ended[machine.call_id] == 0, \
                    f"{agent} is {machine.state} on ended call {machine.call_id}"

    def drain(self) -> None:
        self.deliver_all()
        for _ in range(3):  # let time run first: ring timeouts, overflows, wrap-ups
            self.advance(25)
            self.deliver_all()
        for _ in range(12):
            for ch in sorted(self.callers):
                self.hangs_up(0, caller=True)
            self.deliver_all()
            self.advance(400)
            self.deliver_all()
            if not self.state.calls and not self.callers:
                break
        assert self.state.calls == {} and self.state.requests == {}
        for call_id in self.started:
            assert self.ended[call_id] == 1, f"call {call_id} ended {self.ended[call_id]} times"
        assert self.bridges == set(), f"leaked bridges {self.bridges}"
        assert not self.ringing and not self.answered
        assert self.reserved == {}, f"reservations left {self.reserved}"
        for agent, machine in self.machines.items():
            assert machine.state not in BUSY, (agent, machine)


# Action kinds, repeated to weigh them: calls and answers are common, snapshots rare.
KINDS = (0, 1, 2, 2, 2, 2, 2, 3, 4, 5, 5, 6, 6, 7, 8, 9, 9, 9, 9, 9, 9, 10, 11)
ACTIONS = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 50), st.integers(0, 50),
                             st.integers(0, 4).map(bool)),
                   min_size=5, max_size=60)


def run(world: World, actions: list[tuple[int, int, int, bool]]) -> None:
    """Each action may leave its PBX events parked (delivered later, maybe out of order) or deliver all."""
    for kind, a, b, now in actions:
        match kind:
            case 0 | 1:
                world.new_call(a)
            case 2:
                world.agent_answers(a)
            case 3:
                world.agent_fails(a, b)
            case 4:
                world.hangs_up(a, caller=True)
            case 5:
                world.hangs_up(a, caller=False)
            case 6:
                world.advance(1 + b % 40)
            case 7:
                world.duplicate(a * 51 + b)
            case 8:
                world.agent_command(a, b)
            case 9:
                world.transfer(a, b)
            case 10:
                world.snapshot()
            case 11:
                if world.parked:
                    world.deliver(a)  # out of order
        if now:
            world.deliver_all()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS)
def test_property_calls_end_once_agents_never_double_booked_and_nothing_leaks(
        actions: list[tuple[int, int, int, bool]]) -> None:
    """Over random interleavings (duplicates, reorderings, timers, transfers, snapshots, pauses):

    - no agent is ever involved in two calls, in the router or in agent-state;
    - a paused (or otherwise unavailable) agent is never offered a call, and every offer is accepted;
    - nothing happens to a call after its `call.ended`, and every call ends exactly once;
    - no agent stays reserved, ringing or on a call once its call has ended; no bridge or reservation leaks;
    - decide is deterministic, its command ids start with the input's position, and no id is ever reused
      for a different operation (so re-processing an input at its position is idempotent at the gateway).
    """
    world = World()
    run(world, actions)
    world.drain()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(20, 120))
def test_property_long_random_programs_keep_the_same_invariants(seed: int, length: int) -> None:
    """The same properties over longer programs drawn from a seed: hypothesis's shrinking prefers short
    lists, which rarely reach transfers of calls overflowed twice; a seed explores those (and replays)."""
    rnd = random.Random(seed)
    actions = [(rnd.choice(KINDS), rnd.randint(0, 50), rnd.randint(0, 50), rnd.randint(0, 4) > 0)
               for _ in range(length)]
    world = World()
    run(world, actions)
    world.drain()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS, st.data())
def test_property_reprocessing_any_input_from_its_pre_state_repeats_its_outputs(
        actions: list[tuple[int, int, int, bool]], data: st.DataObject) -> None:
    world = World()
    run(world, actions)
    world.deliver_all()
    pre = world.state
    pending = [world.parked.pop(0)] if world.parked else []
    if not pending:
        return
    item = parse_ari_event({**pending[0], "timestamp": ts(world.now)}, "ari.events:3:77")
    if item is None:
        return
    later = world.now + timedelta(seconds=data.draw(st.integers(0, 5)))
    _, first = decide(pre, item, world.now, WORLD_CONFIG)
    _, second = decide(pre, item, later, WORLD_CONFIG)
    first_ids = [(o.command_id, o.operation) for o in first if isinstance(o, AriCommand)]
    assert first_ids == [(o.command_id, o.operation) for o in second if isinstance(o, AriCommand)]
    assert all(cid.startswith("ari.events:3:77:") or cid.startswith("gc:") for cid, _ in first_ids)


def test_an_agent_is_rung_before_the_callers_set_up_commands_and_the_rest_keep_their_order() -> None:
    from callstream_common.messages.commands import AriCommand, Answer, Hangup, Originate
    from callstream_router.processor import ringing_first

    expires = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)

    def command(n: int, operation: object) -> AriCommand:
        return AriCommand(command_id=f"x:0:{n}:0", operation=operation, expires_at=expires, ordering_key="call:c1")

    answer = command(1, Answer(channel_id="caller"))
    originate = command(2, Originate(channel_id="leg", endpoint="PJSIP/1001", app="callstream",
                                     app_args="agent,c1", timeout_s=15, originator="caller"))
    hangup = command(3, Hangup(channel_id="other", reason="normal"))
    assert ringing_first([answer, originate, hangup]) == [originate, answer, hangup]
    assert ringing_first([answer, hangup]) == [answer, hangup]
