"""The agent state machine: every row of docs/acd.md's table by example, then properties over random,
duplicated and reordered inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callstream_agent_state.machine import (
    BUSY,
    AgentInput,
    AgentMachineState,
    AgentPolicy,
    AgentReserved,
    BusyTooLong,
    EndpointRegistration,
    ReservationLapsed,
    Rejection,
    WrapUpExpired,
    due_timers,
    evolve,
)
from callstream_common.messages.agents import AgentLoggedIn, AgentLoggedOut, AgentState, AgentStateChanged
from callstream_common.messages.calls import (
    CallAbandoned,
    CallAgentMissed,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallTransferred,
)
from callstream_common.messages.cms import AgentEndWrapUp, AgentLogin, AgentLogout, AgentPause, AgentUnpause

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = "ag1"
ENDPOINT = "PJSIP/ag1"
POLICY = AgentPolicy(auto_pause_after=3, default_wrapup_s=10, wrapup_s={"sales": 30, "fast": 0})
S, R, P = AgentState, Rejection, AgentStateChanged


class Agent:
    """One agent's machine with a clock; `do` returns the outputs of one input."""

    def __init__(self, registered: bool = True, policy: AgentPolicy = POLICY) -> None:
        self.policy = policy
        self.now = T0
        self.state = AgentMachineState.new(AGENT, T0)
        self.n = 0
        if registered:
            self.do(EndpointRegistration(ENDPOINT, True))

    def do(self, item: AgentInput) -> tuple[Any, ...]:
        self.state, out = evolve(self.state, item, self.now, self.policy)
        return out

    def cmd(self, kind: type[Any], **fields: Any) -> tuple[Any, ...]:
        self.n += 1
        return self.do(kind(command_id=f"c{self.n}", requested_at=self.now, agent_id=AGENT, **fields))

    def login(self) -> tuple[Any, ...]:
        return self.cmd(AgentLogin, endpoint=ENDPOINT)

    def at(self, seconds: float) -> Agent:
        self.now += timedelta(seconds=seconds)
        return self


def offered(call: str = "X", agent: str = AGENT, queue: str | None = "sales") -> CallOffered:
    return CallOffered(call_id=call, at=T0, queue_id=queue, agent_id=agent, agent_channel_id=f"{call}-a1",
                       endpoint=f"PJSIP/{agent}", attempt=1)


def answered(call: str = "X", agent: str = AGENT, queue: str | None = "sales") -> CallAnswered:
    return CallAnswered(call_id=call, at=T0, queue_id=queue, agent_id=agent, bridge_id=f"{call}-m1", wait_s=1)


def missed(call: str = "X", agent: str = AGENT) -> CallAgentMissed:
    return CallAgentMissed(call_id=call, at=T0, queue_id="sales", agent_id=agent, reason="no_answer")


def ended(call: str = "X", agent: str | None = AGENT, queue: str | None = "sales") -> CallEnded:
    return CallEnded(call_id=call, at=T0, queue_id=queue, agent_id=agent, outcome="completed", hangup_by="caller")


def abandoned(call: str = "X", agent: str | None = AGENT) -> CallAbandoned:
    return CallAbandoned(call_id=call, at=T0, queue_id="sales", wait_s=3, while_ringing_agent=agent)


def changes(out: tuple[Any, ...]) -> list[tuple[AgentState, AgentState, str | None, str | None]]:
    return [(e.previous_state, e.state, e.pause_reason, e.call_id) for e in out if isinstance(e, AgentStateChanged)]


def rejected(out: tuple[Any, ...]) -> str | None:
    reasons = [o.reason for o in out if isinstance(o, Rejection)]
    return reasons[0] if reasons else None


# ---- examples -------------------------------------------------------------------------------------------------

def test_login_goes_available_with_a_registered_endpoint_and_announces_the_session() -> None:
    a = Agent()
    out = a.login()
    assert isinstance(out[0], AgentLoggedIn) and out[0].session_id == "c1" and out[0].endpoint == ENDPOINT
    assert changes(out) == [(S.LOGGED_OUT, S.AVAILABLE, None, None)]
    assert rejected(a.do(AgentLogin(command_id="c1", requested_at=T0, agent_id=AGENT, endpoint=ENDPOINT))) == \
        "duplicate"
    assert rejected(a.login()) == "already_logged_in"


def test_login_with_an_unregistered_endpoint_pauses_until_it_registers() -> None:
    a = Agent(registered=False)
    assert changes(a.login()) == [(S.LOGGED_OUT, S.PAUSED, "login", None)]
    assert rejected(a.cmd(AgentUnpause)) == "endpoint_unregistered"
    assert changes(a.do(EndpointRegistration(ENDPOINT, True))) == [(S.PAUSED, S.AVAILABLE, None, None)]


def test_a_call_from_offer_to_wrap_up_and_back_to_available() -> None:
    a = Agent()
    a.login()
    assert changes(a.do(offered())) == [(S.AVAILABLE, S.RINGING, None, "X")]
    assert rejected(a.do(offered())) == "duplicate"
    assert changes(a.do(answered())) == [(S.RINGING, S.ON_CALL, None, "X")]
    out = a.at(60).do(ended())
    assert changes(out) == [(S.ON_CALL, S.WRAP_UP, None, "X")]
    assert a.state.wrapup_until == a.now + timedelta(seconds=30)  # the queue's wrap-up
    assert due_timers(a.state, a.now + timedelta(seconds=29), a.policy) == []
    assert rejected(a.do(WrapUpExpired("X"))) == "not_due"
    a.at(30)
    (timer,) = due_timers(a.state, a.now, a.policy)
    assert changes(a.do(timer)) == [(S.WRAP_UP, S.AVAILABLE, None, None)]
    assert rejected(a.do(ended())) == "duplicate"


def test_the_sweeper_releases_an_agent_whose_call_never_ended_and_keeps_its_pending_pause() -> None:
    a = Agent(policy=AgentPolicy(max_busy_s=3600))
    a.login()
    a.do(offered())
    a.do(answered())
    a.cmd(AgentPause, reason="lunch")  # pending while on the call
    assert due_timers(a.state, a.now + timedelta(seconds=3599), a.policy) == []
    a.at(3600)
    (timer,) = due_timers(a.state, a.now, a.policy)
    assert timer == BusyTooLong("X")
    assert changes(a.do(timer)) == [(S.ON_CALL, S.PAUSED, "lunch", None)]
    assert rejected(a.do(timer)) == "stale_call"  # fired twice
    assert rejected(a.do(offered())) == "stale_call"  # the call is remembered as ended


def test_the_agent_can_end_wrap_up_early_and_queues_without_wrap_up_skip_it() -> None:
    a = Agent()
    a.login()
    a.do(offered())
    a.do(answered())
    a.do(ended())
    assert changes(a.cmd(AgentEndWrapUp)) == [(S.WRAP_UP, S.AVAILABLE, None, None)]
    assert rejected(a.cmd(AgentEndWrapUp)) == "not_allowed"
    a.do(offered("Y", queue="fast"))
    a.do(answered("Y", queue="fast"))
    assert changes(a.do(ended("Y", queue="fast"))) == [(S.ON_CALL, S.AVAILABLE, None, None)]


def test_misses_release_the_agent_and_too_many_in_a_row_pause_it() -> None:
    a = Agent()
    a.login()
    for n, call in enumerate(("A", "B"), start=1):
        a.do(offered(call))
        assert changes(a.do(missed(call))) == [(S.RINGING, S.AVAILABLE, None, None)]
        assert a.state.misses == n
    a.do(offered("C"))
    assert changes(a.do(missed("C"))) == [(S.RINGING, S.PAUSED, "missed", None)]
    assert rejected(a.do(missed("C"))) == "stale_call"
    a.cmd(AgentUnpause)
    a.do(offered("D"))
    a.do(answered("D"))
    assert a.state.misses == 0


def test_pause_while_busy_is_pending_and_applies_after_wrap_up() -> None:
    a = Agent()
    a.login()
    a.do(offered())
    assert a.cmd(AgentPause, reason="lunch") == ()
    assert a.state.pending_pause == "lunch" and a.state.state == S.RINGING
    a.do(answered())
    a.do(ended())
    assert a.state.state == S.WRAP_UP
    assert changes(a.cmd(AgentEndWrapUp)) == [(S.WRAP_UP, S.PAUSED, "lunch", None)]
    assert rejected(a.cmd(AgentPause, reason="lunch")) == "duplicate"
    assert changes(a.cmd(AgentPause, reason="training")) == [(S.PAUSED, S.PAUSED, "training", None)]
    assert changes(a.cmd(AgentUnpause)) == [(S.PAUSED, S.AVAILABLE, None, None)]


def test_unpause_while_busy_cancels_a_pending_pause() -> None:
    a = Agent()
    a.login()
    a.do(offered())
    a.cmd(AgentPause, reason="lunch")
    assert a.cmd(AgentUnpause) == ()
    assert changes(a.do(missed())) == [(S.RINGING, S.AVAILABLE, None, None)]


def test_unpause_in_the_wrap_up_of_the_call_a_pause_waited_for_cancels_it() -> None:
    # The pending pause applies when the wrap-up ends: an unpause before that must cancel it, not be refused
    # (refused, it left the agent paused for good; found by the killed-agent-state end-to-end run, session 6).
    a = Agent()
    a.login()
    a.do(offered())
    a.cmd(AgentPause, reason="break")
    a.do(answered())
    a.do(ended())
    assert a.state.state == S.WRAP_UP and a.state.pending_pause == "break"
    assert a.cmd(AgentUnpause) == ()
    assert changes(a.cmd(AgentEndWrapUp)) == [(S.WRAP_UP, S.AVAILABLE, None, None)]


def test_logout_while_ringing_waits_for_the_call_and_wrap_up_or_logs_out_at_once() -> None:
    a = Agent()
    a.login()
    a.do(offered())
    assert a.cmd(AgentLogout) == ()
    assert rejected(a.cmd(AgentLogout)) == "duplicate"
    out = a.do(missed())
    assert isinstance(out[0], AgentLoggedOut) and out[0].session_id == "c1"
    assert changes(out) == [(S.RINGING, S.LOGGED_OUT, None, None)]
    assert rejected(a.cmd(AgentLogout)) == "not_logged_in"
    assert rejected(a.cmd(AgentPause, reason="x")) == "not_logged_in"
    b = Agent()
    b.login()
    b.do(offered())
    b.do(answered())
    b.do(ended())
    assert changes(b.cmd(AgentLogout)) == [(S.WRAP_UP, S.LOGGED_OUT, None, None)]


def test_a_lost_endpoint_pauses_an_idle_agent_and_a_busy_one_after_its_call() -> None:
    a = Agent()
    a.login()
    assert changes(a.do(EndpointRegistration(ENDPOINT, False))) == [(S.AVAILABLE, S.PAUSED, "endpoint_lost", None)]
    assert changes(a.do(EndpointRegistration(ENDPOINT, True))) == [(S.PAUSED, S.AVAILABLE, None, None)]
    a.do(offered())
    a.do(answered())
    assert a.do(EndpointRegistration(ENDPOINT, False)) == ()
    assert a.state.state == S.ON_CALL
    a.do(ended("X", queue="fast"))
    assert (a.state.state, a.state.pause_reason) == (S.PAUSED, "endpoint_lost")
    a.do(EndpointRegistration(ENDPOINT, True))
    a.cmd(AgentPause, reason="lunch")
    a.do(EndpointRegistration(ENDPOINT, False))
    a.do(EndpointRegistration(ENDPOINT, True))
    assert (a.state.state, a.state.pause_reason) == (S.PAUSED, "lunch")  # the agent's own pause stays
    assert rejected(a.do(EndpointRegistration("PJSIP/other", True))) == "not_for_agent"


def test_an_old_calls_end_does_not_end_the_current_call_and_late_offers_of_ended_calls_are_refused() -> None:
    a = Agent()
    a.login()
    a.do(offered("OLD"))
    a.do(answered("OLD"))
    a.do(ended("OLD", queue="fast"))
    a.do(offered("NEW"))
    a.do(answered("NEW"))
    assert rejected(a.do(ended("OLD"))) == "duplicate"
    assert a.do(abandoned("GONE", agent=None)) == ()  # not this agent's call: only remembered
    assert a.state.state == S.ON_CALL and a.state.call_id == "NEW"
    a.do(ended("NEW", queue="fast"))
    assert rejected(a.do(offered("GONE"))) == "stale_call"
    assert rejected(a.do(answered("OLD"))) == "stale_call"
    assert a.state.state == S.AVAILABLE


def test_abandon_and_answer_elsewhere_release_without_a_miss() -> None:
    a = Agent()
    a.login()
    a.do(offered("X"))
    assert changes(a.do(abandoned("X"))) == [(S.RINGING, S.AVAILABLE, None, None)]
    a.do(offered("Y"))
    assert changes(a.do(answered("Y", agent="ag2"))) == [(S.RINGING, S.AVAILABLE, None, None)]
    assert a.state.misses == 0
    assert rejected(a.do(answered("Z", agent="ag2"))) == "not_for_agent"


def test_a_paused_agent_refuses_offers() -> None:
    a = Agent()
    a.login()
    a.cmd(AgentPause, reason="lunch")
    out = a.do(offered())
    assert rejected(out) == "not_allowed" and a.state.state == S.PAUSED
    assert rejected(a.do(AgentReserved("X"))) == "not_allowed"


def test_a_reservation_learned_from_redis_makes_a_pause_pending_and_lapses_without_an_offer() -> None:
    a = Agent()
    a.login()
    assert changes(a.do(AgentReserved("X", "sales"))) == [(S.AVAILABLE, S.RESERVED, None, "X")]
    assert a.cmd(AgentPause, reason="lunch") == ()
    assert rejected(a.do(ReservationLapsed("X"))) == "not_due"
    a.at(15)
    (timer,) = due_timers(a.state, a.now, a.policy)
    assert timer == ReservationLapsed("X")
    assert changes(a.do(timer)) == [(S.RESERVED, S.PAUSED, "lunch", None)]
    b = Agent()
    b.login()
    b.do(AgentReserved("X"))
    assert changes(b.do(offered("X"))) == [(S.RESERVED, S.RINGING, None, "X")]


def test_transfers_send_the_transferring_agent_to_wrap_up_and_the_consulted_agent_adopts_the_call() -> None:
    a = Agent()
    a.login()
    a.do(offered("X"))
    a.do(answered("X"))
    out = a.do(CallTransferred(call_id="X", at=T0, kind="blind_queue", from_agent_id=AGENT, from_queue_id="sales",
                               to_queue_id="support"))
    assert changes(out) == [(S.ON_CALL, S.WRAP_UP, None, "X")]
    b = Agent()
    b.login()
    b.do(offered("X-x1", queue=None))
    b.do(answered("X-x1", queue=None))
    out = b.do(CallTransferred(call_id="X", at=T0, kind="attended", from_agent_id="ag9", from_queue_id="sales",
                               to_queue_id="support", to_agent_id=AGENT))
    assert changes(out) == [(S.ON_CALL, S.ON_CALL, None, "X")]
    assert b.state.queue_id == "support"
    assert rejected(b.do(ended("X-x1"))) is None and b.state.call_id == "X"  # the consultation's end
    out = b.do(CallTransferred(call_id="Y", at=T0, kind="blind_extension", from_agent_id="ag9",
                               from_queue_id=None, to_extension="1001", to_agent_id=AGENT))
    assert rejected(out) == "stale_call" and b.state.call_id == "X"


def test_inputs_for_another_agent_are_refused() -> None:
    a = Agent()
    a.login()
    for item in (offered(agent="ag2"), missed(agent="ag2"),
                 AgentLogin(command_id="z", requested_at=T0, agent_id="ag2", endpoint="PJSIP/ag2")):
        assert rejected(a.do(item)) == "not_for_agent"


# ---- properties ---------------------------------------------------------------------------------------------

OTHER = "ag2"
QUEUE_CHOICES = ("sales", "fast", None)


class Script:
    """Turns drawn numbers into inputs, mostly about the agent's current call, sometimes a new or an old one
    (late and reordered events), sometimes another agent's, and sometimes the previous input again."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.previous: AgentInput | None = None

    def call(self, a: Agent, pick: int) -> str:
        if pick < 5 and a.state.call_id is not None:
            return a.state.call_id
        if pick >= 8 and self.calls:
            return self.calls[pick * 7 % len(self.calls)]
        self.calls.append(f"call{len(self.calls)}")
        return self.calls[-1]

    def make(self, a: Agent, kind: int, pick: int, who: int, misc: int) -> AgentInput:  # noqa: C901
        if kind == 17 and self.previous is not None:
            return self.previous
        call = self.call(a, pick)
        agent = OTHER if who == 0 else AGENT
        queue = QUEUE_CHOICES[misc % 3]
        cmd: dict[str, Any] = {"command_id": f"k{misc}", "requested_at": T0, "agent_id": AGENT}
        items: list[AgentInput] = [
            AgentLogin(endpoint=ENDPOINT, **cmd), AgentLogout(**cmd),
            AgentPause(reason=("lunch", "break")[misc % 2], **cmd), AgentUnpause(**cmd), AgentEndWrapUp(**cmd),
            offered(call, agent, queue), offered(call, agent, queue), answered(call, agent, queue),
            answered(call, agent, queue), missed(call, agent), abandoned(call, (AGENT, None)[misc % 2]),
            ended(call, (AGENT, None)[misc % 2], queue),
            CallTransferred(call_id=call, at=T0, kind=("blind_queue", "blind_extension", "attended")[misc % 3],
                            from_agent_id=agent, from_queue_id="sales",
                            to_agent_id=(AGENT, OTHER, None)[who % 3]),
            EndpointRegistration((ENDPOINT, ENDPOINT, "PJSIP/x")[misc % 3], misc % 2 == 0),
            AgentReserved(call, queue), ReservationLapsed(call), WrapUpExpired(call),
        ]
        self.previous = items[kind % len(items)]
        return self.previous


STEPS = st.lists(st.tuples(st.integers(0, 17), st.integers(0, 9), st.integers(0, 3), st.integers(0, 5),
                           st.integers(0, 40)), min_size=1, max_size=80)


def check_invariants(s: AgentMachineState) -> None:
    busy = s.state in BUSY or s.state == S.WRAP_UP
    assert (s.call_id is not None) == busy, s
    assert (s.pause_reason is not None) == (s.state == S.PAUSED), s
    assert (s.wrapup_until is not None) == (s.state == S.WRAP_UP), s
    if s.state == S.LOGGED_OUT:
        assert s.pending_pause is None and not s.pending_logout, s


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_property_random_inputs_never_break_the_machine(steps: list[tuple[int, int, int, int, int]]) -> None:
    """Whatever arrives, in whatever order and however often:

    - evolve never raises; a rejection leaves the state exactly as it was;
    - every change of state is announced by exactly one agent.state-changed from the old to the new state;
    - the agent is never on two calls: it never moves from one call to another without being released
      (the consulted agent adopting its transferred call is the one exception);
    - once a call has ended (call.ended / call.abandoned seen), the agent is never reserved, ringing or on it;
    - a paused agent is never offered a call (nor reserved, nor put on one), and only a login leaves
      logged_out.
    """
    a = Agent()
    a.login()
    script = Script()
    ended_calls: set[str] = set()
    for kind, pick, who, misc, dt in steps:
        a.at(dt)
        for timer in due_timers(a.state, a.now, a.policy):
            a.do(timer)
        item = script.make(a, kind, pick, who, misc)
        before = a.state
        out = a.do(item)
        after = a.state
        rejections = [o for o in out if isinstance(o, Rejection)]
        if rejections:
            assert len(out) == 1 and after == before
        announced = [o for o in out if isinstance(o, AgentStateChanged)]
        if after.state != before.state or after.call_id != before.call_id and after.state in BUSY:
            assert len(announced) == 1
        assert len(announced) <= 1
        for event in announced:
            assert (event.previous_state, event.state, event.call_id) == (before.state, after.state, after.call_id)
        if before.call_id is not None and after.call_id is not None and before.call_id != after.call_id:
            assert isinstance(item, CallTransferred) and item.kind == "attended" and item.to_agent_id == AGENT
        if isinstance(item, (CallEnded, CallAbandoned)):
            ended_calls.add(item.call_id)
        if after.state in BUSY:
            assert after.call_id not in ended_calls, (item, after)
        if before.state == S.PAUSED:
            assert after.state not in BUSY
        if before.state == S.LOGGED_OUT and after.state != S.LOGGED_OUT:
            assert isinstance(item, AgentLogin)
        check_invariants(after)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_property_an_input_delivered_twice_in_a_row_acts_once(steps: list[tuple[int, int, int, int, int]]) -> None:
    """At-least-once delivery: the second delivery of any input announces nothing and moves nothing."""
    a = Agent()
    a.login()
    script = Script()
    for kind, pick, who, misc, dt in steps:
        a.at(dt)
        item = script.make(a, kind, pick, who, misc)
        a.do(item)
        once = a.state
        out = a.do(item)
        assert not [o for o in out if isinstance(o, (AgentStateChanged, AgentLoggedIn, AgentLoggedOut))], (item, out)
        assert (a.state.state, a.state.call_id, a.state.pause_reason) == (once.state, once.call_id, once.pause_reason)


@pytest.mark.parametrize("seconds", [0.0, -5.0])
def test_policy_wrapup_zero_or_negative_means_none(seconds: float) -> None:
    policy = AgentPolicy(default_wrapup_s=seconds)
    a = Agent(policy=policy)
    a.login()
    a.do(offered(queue=None))
    a.do(answered(queue=None))
    assert changes(a.do(ended(queue=None))) == [(S.ON_CALL, S.AVAILABLE, None, None)]
