"""The agent state machine: `evolve(state, input, now, policy) -> (new_state, outputs)`, pure, no I/O.

States and transitions: docs/acd.md ("Agent state machine"). Outputs are agent event bodies
(`agent.logged-in`, `agent.logged-out`, `agent.state-changed`), or one `Rejection` when the input does not fit
the state: inputs arrive late, twice or out of order (a `call.ended` of an old call, a repeated
`cms.agent-pause`), and none of that may raise or move the agent. A rejected input leaves the state unchanged.

What the service must deliver (the contract this machine relies on):

- CMS agent commands and the router's call events on `calls`: each call event goes to the agent it names
  (`agent_id`, `while_ringing_agent`, `from_agent_id`, `to_agent_id`) **and** to every agent the call was
  offered to, so ring-all legs that lost (`call.answered` by another agent) and legs of abandoned calls are
  released. `calls` is read in order, so that routing table is complete when a call's end arrives.
- How agent-state learns of a reservation: normally through `call.offered` (the router reserves in Redis and
  originates in the same step, so `available -> ringing` directly). A move out of `available` (pause, logout)
  is a compare-and-set in Redis; when it fails because the router has just reserved the agent, the service
  feeds `AgentReserved(call_id)` (read from the agent's Redis hash) before the command, which then becomes
  pending. `ReservationLapsed` ends a reservation that never became an offer (the router released it).
- Endpoint registration (ARI EndpointStateChange / the gateway snapshot) as `EndpointRegistration`; before a
  login on an endpoint the machine does not know yet, the service feeds that endpoint's registration first.
- Timers: `due_timers(state, now, policy)` lists the WrapUpExpired / ReservationLapsed / BusyTooLong inputs
  that are due (BusyTooLong: the sweeper, for an agent whose call's end was lost).

Rules worth knowing:

- A pause or logout asked while the agent is reserved, ringing or on a call is *pending*: it applies when the
  agent would otherwise become available (after wrap-up).
- `auto_pause_after` misses in a row pause the agent with reason "missed"; an answer resets the count.
- A lost endpoint pauses an idle agent ("endpoint_lost"); a busy one finishes its call first. Its return
  unpauses agents paused for "endpoint_lost" or "login" only; other pauses stay.
- Calls that ended (`call.ended`, `call.abandoned`) are remembered (the last `remembered_calls`), so a late
  `call.offered` or `call.answered` of an ended call never puts the agent back on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

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

BUSY = frozenset({AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL})
OFFERED = frozenset({AgentState.RESERVED, AgentState.RINGING})


@dataclass(frozen=True)
class AgentPolicy:
    # Misses in a row that pause the agent ("missed"); 0 never pauses.
    auto_pause_after: int = 3
    default_wrapup_s: float = 10.0
    # Wrap-up per queue (queues.wrapup_s); calls without a queue (direct calls) use default_wrapup_s.
    wrapup_s: Mapping[str, float] = field(default_factory=dict)
    # A reservation learned of through AgentReserved that no call.offered follows within this lapses.
    reservation_timeout_s: float = 15.0
    remembered_calls: int = 32
    # The sweeper: ringing or on a call this long means its end was lost (the router ends calls older than its
    # own, shorter, limit with a call.ended first); the agent is released (`BusyTooLong`) and it is reported.
    max_busy_s: float = 5 * 3600.0
    missed_reason: str = "missed"
    endpoint_lost_reason: str = "endpoint_lost"
    login_reason: str = "login"

    def wrapup_for(self, queue_id: str | None) -> float:
        if queue_id is None:
            return self.default_wrapup_s
        return self.wrapup_s.get(queue_id, self.default_wrapup_s)


@dataclass(frozen=True)
class AgentMachineState:
    agent_id: str
    since: datetime
    state: AgentState = AgentState.LOGGED_OUT
    pause_reason: str | None = None
    pending_pause: str | None = None
    pending_logout: bool = False
    call_id: str | None = None  # the call behind reserved, ringing, on_call, wrap_up
    queue_id: str | None = None  # that call's queue (its wrap-up time)
    misses: int = 0  # in a row
    wrapup_until: datetime | None = None
    reserved_until: datetime | None = None
    session_id: str | None = None  # the login command's id; kept after logout so a repeated login is seen
    endpoint: str | None = None
    endpoint_registered: bool = False
    ended_calls: tuple[str, ...] = ()  # the most recent ended calls, oldest first

    @classmethod
    def new(cls, agent_id: str, now: datetime) -> AgentMachineState:
        return cls(agent_id=agent_id, since=now)


# ---- inputs other than the CMS commands and call events -------------------------------------------------------

@dataclass(frozen=True)
class EndpointRegistration:
    """The agent's phone registered (True) or went offline (False): ARI EndpointStateChange, or a snapshot."""

    endpoint: str
    registered: bool
    at: datetime | None = None


@dataclass(frozen=True)
class AgentReserved:
    """Redis says the router reserved this agent for `call_id` (learned when a compare-and-set failed)."""

    call_id: str
    queue_id: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class ReservationLapsed:
    call_id: str
    at: datetime | None = None


@dataclass(frozen=True)
class WrapUpExpired:
    call_id: str
    at: datetime | None = None


@dataclass(frozen=True)
class BusyTooLong:
    """The sweeper: the agent has been ringing or on `call_id` for longer than `max_busy_s`."""

    call_id: str
    at: datetime | None = None


CmsAgentCommand = AgentLogin | AgentLogout | AgentPause | AgentUnpause | AgentEndWrapUp
CallInput = CallOffered | CallAgentMissed | CallAnswered | CallAbandoned | CallEnded | CallTransferred
AgentInput = (CmsAgentCommand | CallInput | EndpointRegistration | AgentReserved | ReservationLapsed | WrapUpExpired
              | BusyTooLong)

RejectReason = Literal[
    "not_for_agent", "duplicate", "stale_call", "not_logged_in", "already_logged_in", "not_allowed",
    "endpoint_unregistered", "not_due",
]


@dataclass(frozen=True)
class Rejection:
    """Why an input changed nothing; for the service's log and metrics, never an error."""

    agent_id: str
    input_type: str
    reason: RejectReason
    detail: str = ""


AgentEventOut = AgentLoggedIn | AgentLoggedOut | AgentStateChanged
AgentOutput = AgentEventOut | Rejection
Result = tuple[AgentMachineState, tuple[AgentOutput, ...]]


def evolve(state: AgentMachineState, input: AgentInput, now: datetime, policy: AgentPolicy) -> Result:
    step = _Step(state, input, now, policy)
    match input:
        case AgentLogin():
            return step.login(input)
        case AgentLogout():
            return step.logout()
        case AgentPause():
            return step.pause(input.reason)
        case AgentUnpause():
            return step.unpause()
        case AgentEndWrapUp():
            return step.end_wrapup(None)
        case WrapUpExpired():
            return step.end_wrapup(input.call_id)
        case AgentReserved():
            return step.reserved(input)
        case ReservationLapsed():
            return step.lapsed(input.call_id)
        case BusyTooLong():
            return step.busy_too_long(input.call_id)
        case EndpointRegistration():
            return step.registration(input)
        case CallOffered():
            return step.offered(input)
        case CallAnswered():
            return step.answered(input)
        case CallAgentMissed():
            return step.missed(input)
        case CallAbandoned() | CallEnded():
            return step.ended(input)
        case CallTransferred():
            return step.transferred(input)
    return step.reject("not_allowed", "unknown input")


def due_timers(state: AgentMachineState, now: datetime,
               policy: AgentPolicy) -> list[WrapUpExpired | ReservationLapsed | BusyTooLong]:
    """The timer inputs due now (the service's tick feeds them to `evolve`)."""
    if state.state in (AgentState.RINGING, AgentState.ON_CALL) and state.call_id is not None \
            and state.since + timedelta(seconds=policy.max_busy_s) <= now:
        return [BusyTooLong(state.call_id)]
    if state.state == AgentState.WRAP_UP and state.call_id is not None and state.wrapup_until is not None \
            and state.wrapup_until <= now:
        return [WrapUpExpired(state.call_id)]
    if state.state == AgentState.RESERVED and state.call_id is not None and state.reserved_until is not None \
            and state.reserved_until <= now:
        return [ReservationLapsed(state.call_id)]
    return []


class _Step:
    """One evolve call: the input, its time, and the transitions it may make."""

    def __init__(self, state: AgentMachineState, item: AgentInput, now: datetime, policy: AgentPolicy) -> None:
        self.s = state
        self.item = item
        self.now = now
        self.policy = policy
        self.at: datetime = getattr(item, "at", None) or now

    # -- building results --

    def reject(self, reason: RejectReason, detail: str = "") -> Result:
        return self.s, (Rejection(self.s.agent_id, type(self.item).__name__, reason, detail),)

    def quiet(self, state: AgentMachineState) -> Result:
        """A change with nothing to announce (a pending pause, a remembered call, a registration flag)."""
        return state, ()

    def move(self, state: AgentMachineState, to: AgentState, *, call_id: str | None = None,
             pause_reason: str | None = None, extra: tuple[AgentEventOut, ...] = ()) -> Result:
        """`state` with the new state `to`, and the `agent.state-changed` announcing it."""
        reason = pause_reason if to == AgentState.PAUSED else None
        busy = to in BUSY or to == AgentState.WRAP_UP
        new = replace(state, state=to, since=self.at, pause_reason=reason, call_id=call_id if busy else None,
                      queue_id=state.queue_id if busy else None,
                      wrapup_until=state.wrapup_until if to == AgentState.WRAP_UP else None,
                      reserved_until=state.reserved_until if to == AgentState.RESERVED else None)
        event = AgentStateChanged(agent_id=self.s.agent_id, at=self.at, state=to, previous_state=self.s.state,
                                  pause_reason=reason, call_id=new.call_id)
        return new, (*extra, event)

    def remember(self, call_id: str) -> tuple[str, ...]:
        calls = self.s.ended_calls
        if call_id in calls:
            return calls
        return (*calls, call_id)[-self.policy.remembered_calls:]

    def release(self, *, missed: bool, ended_call: str | None = None) -> Result:
        """The reservation or call is over: logged out, paused or available, whichever applies first."""
        s = self.s
        misses = s.misses + 1 if missed else s.misses
        base = replace(s, misses=misses, wrapup_until=None, reserved_until=None,
                       ended_calls=self.remember(ended_call) if ended_call else s.ended_calls)
        if s.pending_logout:
            return self.logged_out(base)
        if s.pending_pause is not None:
            return self.move(replace(base, pending_pause=None), AgentState.PAUSED, pause_reason=s.pending_pause)
        if missed and 0 < self.policy.auto_pause_after <= misses:
            return self.move(replace(base, misses=0), AgentState.PAUSED, pause_reason=self.policy.missed_reason)
        if not s.endpoint_registered:
            return self.move(base, AgentState.PAUSED, pause_reason=self.policy.endpoint_lost_reason)
        return self.move(base, AgentState.AVAILABLE)

    def logged_out(self, state: AgentMachineState) -> Result:
        logout = AgentLoggedOut(agent_id=self.s.agent_id, at=self.at, session_id=self.s.session_id or "unknown")
        return self.move(replace(state, pending_logout=False, pending_pause=None, misses=0),
                         AgentState.LOGGED_OUT, extra=(logout,))

    def mine(self, call_id: str) -> bool:
        return self.s.call_id == call_id

    # -- CMS commands --

    def login(self, cmd: AgentLogin) -> Result:
        s = self.s
        if cmd.agent_id != s.agent_id:
            return self.reject("not_for_agent")
        if cmd.command_id == s.session_id:
            return self.reject("duplicate", f"login {cmd.command_id}")
        if s.state != AgentState.LOGGED_OUT:
            return self.reject("already_logged_in", f"session {s.session_id}")
        registered = s.endpoint_registered if s.endpoint == cmd.endpoint else False
        base = replace(s, session_id=cmd.command_id, endpoint=cmd.endpoint, endpoint_registered=registered,
                       misses=0, pending_pause=None, pending_logout=False)
        logged_in = AgentLoggedIn(agent_id=s.agent_id, at=self.at, session_id=cmd.command_id, endpoint=cmd.endpoint,
                                  station=cmd.station)
        if registered:
            return self.move(base, AgentState.AVAILABLE, extra=(logged_in,))
        return self.move(base, AgentState.PAUSED, pause_reason=self.policy.login_reason, extra=(logged_in,))

    def logout(self) -> Result:
        s = self.s
        if s.state == AgentState.LOGGED_OUT:
            return self.reject("not_logged_in")
        if s.state in BUSY:
            if s.pending_logout:
                return self.reject("duplicate", "logout already pending")
            return self.quiet(replace(s, pending_logout=True))
        # Leaving wrap-up does not mean the call ended: after a transfer it goes on without this agent.
        return self.logged_out(s)

    def pause(self, reason: str) -> Result:
        s = self.s
        if s.state == AgentState.LOGGED_OUT:
            return self.reject("not_logged_in")
        if s.state in BUSY:
            if s.pending_pause == reason:
                return self.reject("duplicate", "pause already pending")
            return self.quiet(replace(s, pending_pause=reason))
        if s.state == AgentState.PAUSED and s.pause_reason == reason:
            return self.reject("duplicate", f"already paused ({reason})")
        return self.move(s, AgentState.PAUSED, pause_reason=reason)

    def unpause(self) -> Result:
        s = self.s
        if s.state != AgentState.PAUSED and s.pending_pause is not None:
            # Still pending (busy, or in the wrap-up it applies after): the agent is back before the break began.
            return self.quiet(replace(s, pending_pause=None))
        if s.state != AgentState.PAUSED:
            return self.reject("not_allowed", f"unpause while {s.state}")
        if not s.endpoint_registered:
            return self.reject("endpoint_unregistered", f"{s.endpoint} is not registered")
        return self.move(replace(s, misses=0), AgentState.AVAILABLE)

    def end_wrapup(self, call_id: str | None) -> Result:
        s = self.s
        if s.state != AgentState.WRAP_UP:
            return self.reject("not_allowed" if call_id is None else "stale_call", f"end of wrap-up while {s.state}")
        if call_id is not None and (not self.mine(call_id) or s.wrapup_until is None or s.wrapup_until > self.now):
            return self.reject("not_due", f"wrap-up of {call_id}")
        return self.release(missed=False)

    # -- reservations and registration --

    def reserved(self, item: AgentReserved) -> Result:
        s = self.s
        if item.call_id in s.ended_calls:
            return self.reject("stale_call", item.call_id)
        if s.state in BUSY and self.mine(item.call_id):
            return self.reject("duplicate", item.call_id)
        if s.state != AgentState.AVAILABLE:
            return self.reject("not_allowed", f"reserved while {s.state}")
        base = replace(s, queue_id=item.queue_id,
                       reserved_until=self.now + timedelta(seconds=self.policy.reservation_timeout_s))
        return self.move(base, AgentState.RESERVED, call_id=item.call_id)

    def lapsed(self, call_id: str) -> Result:
        s = self.s
        if s.state != AgentState.RESERVED or not self.mine(call_id):
            return self.reject("stale_call", call_id)
        if s.reserved_until is not None and s.reserved_until > self.now:
            return self.reject("not_due", call_id)
        return self.release(missed=False)

    def busy_too_long(self, call_id: str) -> Result:
        s = self.s
        if s.state not in (AgentState.RINGING, AgentState.ON_CALL) or not self.mine(call_id):
            return self.reject("stale_call", call_id)
        if s.since + timedelta(seconds=self.policy.max_busy_s) > self.now:
            return self.reject("not_due", call_id)
        return self.release(missed=False, ended_call=call_id)

    def registration(self, item: EndpointRegistration) -> Result:
        s = self.s
        if s.state == AgentState.LOGGED_OUT:
            return self.quiet(replace(s, endpoint=item.endpoint, endpoint_registered=item.registered))
        if item.endpoint != s.endpoint:
            return self.reject("not_for_agent", f"endpoint {item.endpoint}, agent on {s.endpoint}")
        if item.registered == s.endpoint_registered:
            return self.reject("duplicate", f"registered={item.registered}")
        updated = replace(s, endpoint_registered=item.registered)
        lost, login = self.policy.endpoint_lost_reason, self.policy.login_reason
        if item.registered and s.state == AgentState.PAUSED and s.pause_reason in (lost, login):
            return self.move(updated, AgentState.AVAILABLE)
        if not item.registered and s.state == AgentState.AVAILABLE:
            return self.move(updated, AgentState.PAUSED, pause_reason=lost)
        return self.quiet(updated)  # busy agents finish first; other pauses keep their reason

    # -- call events --

    def offered(self, ev: CallOffered) -> Result:
        s = self.s
        if ev.agent_id != s.agent_id:
            return self.reject("not_for_agent")
        if ev.call_id in s.ended_calls:
            return self.reject("stale_call", ev.call_id)
        if self.mine(ev.call_id) and s.state in (AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP):
            return self.reject("duplicate", ev.call_id)
        if (s.state == AgentState.RESERVED and self.mine(ev.call_id)) or s.state == AgentState.AVAILABLE:
            return self.move(replace(s, queue_id=ev.queue_id), AgentState.RINGING, call_id=ev.call_id)
        return self.reject("not_allowed", f"offered {ev.call_id} while {s.state} ({s.call_id})")

    def answered(self, ev: CallAnswered) -> Result:
        s = self.s
        if ev.agent_id != s.agent_id:
            # Another agent answered: a ring-all leg (or one of an earlier attempt) of ours lost.
            if s.state in OFFERED and self.mine(ev.call_id):
                return self.release(missed=False)
            return self.reject("not_for_agent", f"answered by {ev.agent_id}")
        if ev.call_id in s.ended_calls:
            return self.reject("stale_call", ev.call_id)
        if s.state == AgentState.ON_CALL and self.mine(ev.call_id):
            return self.reject("duplicate", ev.call_id)
        if (s.state in OFFERED and self.mine(ev.call_id)) or s.state == AgentState.AVAILABLE:
            queue = s.queue_id if self.mine(ev.call_id) else ev.queue_id
            return self.move(replace(s, misses=0, queue_id=queue), AgentState.ON_CALL, call_id=ev.call_id)
        return self.reject("not_allowed", f"answered {ev.call_id} while {s.state} ({s.call_id})")

    def missed(self, ev: CallAgentMissed) -> Result:
        s = self.s
        if ev.agent_id != s.agent_id:
            return self.reject("not_for_agent")
        if s.state in OFFERED and self.mine(ev.call_id):
            return self.release(missed=True)
        return self.reject("stale_call", f"missed {ev.call_id} while {s.state} ({s.call_id})")

    def ended(self, ev: CallAbandoned | CallEnded) -> Result:
        s = self.s
        remembered = replace(s, ended_calls=self.remember(ev.call_id))
        if not self.mine(ev.call_id) or s.state not in (*BUSY, AgentState.WRAP_UP):
            # Not (or no longer) this agent's call: remember it ended, so a late offer of it is refused.
            if ev.call_id in s.ended_calls:
                return self.reject("duplicate", ev.call_id)
            return self.quiet(remembered)
        if s.state in OFFERED:
            return self.release(missed=False, ended_call=ev.call_id)
        if s.state == AgentState.WRAP_UP:
            return self.reject("duplicate", ev.call_id) if ev.call_id in s.ended_calls else self.quiet(remembered)
        # On the call: its end (or an abandon that overtook this agent's transfer of it) starts wrap-up.
        return self.wrap_up(remembered, ev.queue_id if ev.queue_id is not None else s.queue_id, ev.call_id)

    def wrap_up(self, state: AgentMachineState, queue_id: str | None, call_id: str) -> Result:
        seconds = self.policy.wrapup_for(queue_id)
        if seconds <= 0:
            self.s = state
            return self.release(missed=False)
        base = replace(state, queue_id=queue_id, wrapup_until=self.now + timedelta(seconds=seconds))
        return self.move(base, AgentState.WRAP_UP, call_id=call_id)

    def transferred(self, ev: CallTransferred) -> Result:
        s = self.s
        if ev.from_agent_id is not None and ev.from_agent_id == ev.to_agent_id:
            return self.reject("not_allowed", f"transfer of {ev.call_id} from an agent to itself")
        if ev.from_agent_id == s.agent_id and s.state == AgentState.ON_CALL and self.mine(ev.call_id):
            return self.wrap_up(s, s.queue_id, ev.call_id)
        if ev.kind == "attended" and ev.to_agent_id == s.agent_id and s.state == AgentState.ON_CALL \
                and not self.mine(ev.call_id) and ev.call_id not in s.ended_calls:
            # The consulted agent of an attended transfer takes the call over from its consultation.
            base = replace(s, queue_id=ev.to_queue_id if ev.to_queue_id is not None else s.queue_id)
            return self.move(base, AgentState.ON_CALL, call_id=ev.call_id)
        if ev.from_agent_id == s.agent_id and s.state == AgentState.WRAP_UP and self.mine(ev.call_id):
            return self.reject("duplicate", ev.call_id)
        return self.reject("not_for_agent" if s.agent_id not in (ev.from_agent_id, ev.to_agent_id) else "stale_call",
                           f"transfer of {ev.call_id} while {s.state} ({s.call_id})")
