"""Folding `calls` and `agents` events into the per-board state. Pure: no I/O, no clock.

The state is mutated in place rather than copied per event: it holds thousands of agents and a day of
buckets, and a copy per event would cost more than the fold itself. Every function here is still a function
of (state, event) only, so the folds are unit-tested without Kafka or asyncio.

Order: `calls` and `agents` are separate topics with many partitions, so a replay interleaves them
differently from the live run. Within one call or one agent the order is kept (one PBX, one partition). The
fold is built so that its result does not depend on the interleaving: counts are integer sums, each fact is
counted at its own event time, and the one join across the topics (a wrap-up's call -> queue) waits for
whichever side comes second. Redelivered events (at-least-once upstream) are recognised and ignored: a call
remembers the message ids it has folded, an agent ignores an event older than its current state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from callstream_common.messages.agents import AgentState, AgentStateChanged
from callstream_common.messages.calls import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOverflowed,
    CallQueued,
)
from callstream_stats.figures.counters import MINUTE_MS, Counters, interval_of, minute_of, to_ms
from callstream_stats.figures.scopes import TENANT_SCOPE, Scopes

BUSY_STATES = frozenset((AgentState.ON_CALL, AgentState.WRAP_UP))
IDLE_STATES = frozenset((AgentState.AVAILABLE, AgentState.RESERVED, AgentState.RINGING))

HOUR_MS = 3_600_000
# How long a finished call is remembered (redelivered events of it are recognised) and how long a wrap-up
# waits for its call's queue; a wrap-up cannot outlast a queue's wrapup_s (at most an hour).
KEEP_ENDED_MS = 4 * HOUR_MS
# A leg still waiting after this is taken to be lost upstream (the router's sweeper should have ended it).
STALE_WAIT_MS = 12 * HOUR_MS
# Minute buckets serve the rolling windows only: the longest is 60 minutes.
KEEP_MINUTES_MS = 61 * MINUTE_MS
# Interval buckets serve "today" and the SQL rows: a day and a bit, whatever the zone.
KEEP_INTERVALS_MS = 50 * HOUR_MS


@dataclass(slots=True)
class Leg:
    """A call waiting in one queue."""

    queue_id: str
    entered_ms: int  # the call.queued `at`: the SL and ASA wait of this leg is measured from here
    waiting_since_ms: int  # the caller's wait (kept across transfers): the longest-wait figure
    scopes: frozenset[str]


@dataclass(slots=True)
class CallTrack:
    seen: set[str] = field(default_factory=set)  # message ids folded (redeliveries are ignored)
    leg: Leg | None = None
    answered: bool = False
    ended_ms: int | None = None


@dataclass(slots=True)
class AgentNow:
    state: AgentState
    since_ms: int
    pause_reason: str | None
    call_id: str | None  # the call behind reserved, ringing, on_call, wrap_up
    scopes: frozenset[str]


@dataclass
class StatsState:
    scopes: Scopes
    short_abandon_ms: int
    calls: dict[str, CallTrack] = field(default_factory=dict)
    waiting: dict[str, dict[str, int]] = field(default_factory=dict)  # scope -> call -> waiting since (ms)
    agents: dict[str, AgentNow] = field(default_factory=dict)
    agent_states: dict[str, Counter[str]] = field(default_factory=dict)  # scope -> state -> agents
    paused_reasons: dict[str, Counter[str]] = field(default_factory=dict)  # scope -> reason -> agents
    minutes: dict[str, dict[int, Counters]] = field(default_factory=dict)  # scope -> minute start -> counts
    intervals: dict[str, dict[int, Counters]] = field(default_factory=dict)  # scope -> 15-min start -> counts
    # (call, agent) -> the boards (but the tenant) of the queue leg that agent answered: a wrap-up's queue.
    answered_by: dict[tuple[str, str], tuple[frozenset[str], int]] = field(default_factory=dict)
    pending_wrapups: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)
    last_event_ms: dict[str, int] = field(default_factory=dict)
    # scope -> PBX time of the oldest event folded into the board since its last snapshot (the publisher takes
    # it): events from the router and from agent-state arrive with different lags, so the newest event's time
    # alone would make a late older change look fresh.
    pending_oldest_ms: dict[str, int] = field(default_factory=dict)
    # What changed since the publisher and the interval writer last looked (they clear these).
    dirty: set[str] = field(default_factory=set)
    dirty_intervals: set[tuple[str, int]] = field(default_factory=set)


def new_state(scopes: Scopes, short_abandon_s: int) -> StatsState:
    return StatsState(scopes=scopes, short_abandon_ms=short_abandon_s * 1000)


# ---- calls ---------------------------------------------------------------------------------------------------

def fold_call(state: StatsState, event: CallEvent, message_id: str) -> None:
    at = to_ms(event.at)
    if isinstance(event, CallQueued):
        track = state.calls.setdefault(event.call_id, CallTrack())
    else:
        # A call whose call.queued is older than the replay window, or a consultation (its own call id, never
        # queued): not a queue call here, nothing to count.
        found = state.calls.get(event.call_id)
        if found is None:
            return
        track = found
    if message_id in track.seen or track.ended_ms is not None:
        return
    track.seen.add(message_id)
    match event:
        case CallQueued():
            _queued(state, event.call_id, track, event, at)
        case CallAnswered():
            _answered(state, event.call_id, track, event, at)
        case CallAbandoned():
            _abandoned(state, event.call_id, track, at)
        case CallOverflowed():
            _overflowed(state, event.call_id, track, event, at)
        case CallEnded():
            _ended(state, event.call_id, track, event, at)
        case _:
            # offered, agent-missed, transferred: what they change shows on the agents' side (ringing, a new
            # call.queued for a queue transfer); they carry no count of their own.
            pass


def _queued(state: StatsState, call_id: str, track: CallTrack, event: CallQueued, at: int) -> None:
    if track.leg is not None:
        _stop_waiting(state, call_id, track.leg, at)
    leg = Leg(event.queue_id, at, to_ms(event.waiting_since), state.scopes.of_queue(event.queue_id))
    track.leg = leg
    for scope in leg.scopes:
        state.waiting.setdefault(scope, {})[call_id] = leg.waiting_since_ms
    _touch(state, leg.scopes, at)


def _answered(state: StatsState, call_id: str, track: CallTrack, event: CallAnswered, at: int) -> None:
    leg = track.leg
    if leg is None:
        return  # answered outside a queue (a transfer to an extension): no queue leg to count
    _stop_waiting(state, call_id, leg, at)
    track.leg = None
    track.answered = True
    wait = max(0, at - leg.entered_ms)
    in_sl = int(wait <= state.scopes.threshold_s(leg.queue_id) * 1000)
    # A floor sees the calls its agents answered: offered there is answered.
    scopes = leg.scopes | state.scopes.floor_of_agent(event.agent_id)
    _count(state, scopes, at, offered=1, answered=1, answered_in_sl=in_sl, answer_wait_ms=wait)
    key = (call_id, event.agent_id)
    queue_scopes = leg.scopes - {TENANT_SCOPE}
    state.answered_by[key] = (queue_scopes, at)
    for ended, duration in state.pending_wrapups.pop(key, []):
        _count(state, queue_scopes, ended, wrapups=1, wrapup_ms=duration)


def _abandoned(state: StatsState, call_id: str, track: CallTrack, at: int) -> None:
    leg = track.leg
    if leg is None:
        return
    _stop_waiting(state, call_id, leg, at)
    track.leg = None
    wait = max(0, at - leg.entered_ms)
    if wait < state.short_abandon_ms:
        _count(state, leg.scopes, at, offered=1, short_abandoned=1)
    else:
        in_sl = int(wait <= state.scopes.threshold_s(leg.queue_id) * 1000)
        _count(state, leg.scopes, at, offered=1, abandoned=1, abandoned_in_sl=in_sl)


def _overflowed(state: StatsState, call_id: str, track: CallTrack, event: CallOverflowed, at: int) -> None:
    leg = track.leg
    if leg is None or leg.queue_id != event.from_queue_id:
        return
    _stop_waiting(state, call_id, leg, at)
    track.leg = None
    # To another queue: counted only on the boards the call leaves (its queue, and its department when the
    # target is in another one); the boards it stays on count it once, where it ends.
    scopes = leg.scopes
    if event.to_queue_id is not None:
        scopes = scopes - state.scopes.of_queue(event.to_queue_id)
    _count(state, scopes, at, offered=1, overflowed=1)


def _ended(state: StatsState, call_id: str, track: CallTrack, event: CallEnded, at: int) -> None:
    if track.leg is not None:
        # Ended while still queued without an abandon or overflow (a failure upstream): not a queue outcome.
        _stop_waiting(state, call_id, track.leg, at)
        track.leg = None
    track.ended_ms = at
    track.seen.clear()  # ended_ms now rejects every later event of this call
    if not track.answered:
        return
    handle = round(event.talk_s * 1000) + round(event.hold_s * 1000)
    scopes = state.scopes.of_queue(event.queue_id) | state.scopes.floor_of_agent(event.agent_id)
    _count(state, scopes, at, handled=1, handle_ms=handle)


def _stop_waiting(state: StatsState, call_id: str, leg: Leg, at: int) -> None:
    for scope in leg.scopes:
        waiting = state.waiting.get(scope)
        if waiting is not None:
            waiting.pop(call_id, None)
    _touch(state, leg.scopes, at)


# ---- agents --------------------------------------------------------------------------------------------------

def fold_agent(state: StatsState, event: AgentStateChanged) -> None:
    """agent.state-changed only: log-ins and log-outs come with a state change of their own."""
    at = to_ms(event.at)
    agent_id = event.agent_id
    current = state.agents.get(agent_id)
    if current is not None and (at < current.since_ms or (at == current.since_ms and event.state == current.state)):
        return  # older than what is folded: a redelivery
    scopes = state.scopes.of_agent(agent_id)
    if current is not None:
        _leave_state(state, agent_id, current, at)
    now = AgentNow(event.state, at, event.pause_reason if event.state == AgentState.PAUSED else None,
                   event.call_id, scopes)
    state.agents[agent_id] = now
    _count_state(state, now, +1)
    _touch(state, scopes, at)


def _leave_state(state: StatsState, agent_id: str, current: AgentNow, at: int) -> None:
    _count_state(state, current, -1)
    if current.state in BUSY_STATES:
        _account(state, current.scopes, current.since_ms, at, busy=True)
    elif current.state in IDLE_STATES:
        _account(state, current.scopes, current.since_ms, at, busy=False)
    if current.state == AgentState.WRAP_UP:
        _wrapup_done(state, agent_id, current.call_id, current.since_ms, at)


def _wrapup_done(state: StatsState, agent_id: str, call_id: str | None, started: int, at: int) -> None:
    """A wrap-up counts on the agent's floor and the tenant at once, and on its call's queue boards once the
    queue is known: the call's answer (on `calls`) may be folded before or after this (on `agents`)."""
    duration = at - started
    direct = {TENANT_SCOPE} | state.scopes.floor_of_agent(agent_id)
    _count(state, direct, at, wrapups=1, wrapup_ms=duration)
    if call_id is None:
        return
    key = (call_id, agent_id)
    joined = state.answered_by.get(key)
    if joined is not None:
        _count(state, joined[0], at, wrapups=1, wrapup_ms=duration)
    else:
        state.pending_wrapups.setdefault(key, []).append((at, duration))


def _count_state(state: StatsState, agent: AgentNow, step: int) -> None:
    if agent.state == AgentState.LOGGED_OUT:
        return
    for scope in agent.scopes:
        counts = state.agent_states.setdefault(scope, Counter())
        counts[agent.state.value] += step
        if counts[agent.state.value] <= 0:
            del counts[agent.state.value]
        if agent.pause_reason is not None:
            reasons = state.paused_reasons.setdefault(scope, Counter())
            reasons[agent.pause_reason] += step
            if reasons[agent.pause_reason] <= 0:
                del reasons[agent.pause_reason]


# ---- buckets -------------------------------------------------------------------------------------------------

def _count(state: StatsState, scopes: frozenset[str] | set[str], at: int, **increments: int) -> None:
    minute, interval = minute_of(at), interval_of(at)
    for scope in scopes:
        for counters in (_bucket(state.minutes, scope, minute), _bucket(state.intervals, scope, interval)):
            for name, value in increments.items():
                setattr(counters, name, getattr(counters, name) + value)
        state.dirty_intervals.add((scope, interval))
    _touch(state, scopes, at)


def _account(state: StatsState, scopes: frozenset[str], start: int, end: int, *, busy: bool) -> None:
    """Agent time [start, end) split at minute boundaries, so each bucket holds exactly its own share."""
    name = "busy_ms" if busy else "idle_ms"
    while start < end:
        minute = minute_of(start)
        piece_end = min(end, minute + MINUTE_MS)
        piece = piece_end - start
        interval = interval_of(start)
        for scope in scopes:
            for counters in (_bucket(state.minutes, scope, minute), _bucket(state.intervals, scope, interval)):
                setattr(counters, name, getattr(counters, name) + piece)
            state.dirty_intervals.add((scope, interval))
        start = piece_end


def _bucket(buckets: dict[str, dict[int, Counters]], scope: str, start: int) -> Counters:
    by_start = buckets.get(scope)
    if by_start is None:
        by_start = buckets[scope] = {}
    counters = by_start.get(start)
    if counters is None:
        counters = by_start[start] = Counters()
    return counters


def _touch(state: StatsState, scopes: frozenset[str] | set[str], at: int) -> None:
    for scope in scopes:
        state.dirty.add(scope)
        if at > state.last_event_ms.get(scope, -1):
            state.last_event_ms[scope] = at
        oldest = state.pending_oldest_ms.get(scope)
        if oldest is None or at < oldest:
            state.pending_oldest_ms[scope] = at


# ---- forgetting ----------------------------------------------------------------------------------------------

def prune(state: StatsState, now_ms: int) -> None:
    """Drop what no figure can need any more at `now_ms` (and later): old buckets, long-finished calls.

    Only data that no window, join or duplicate check can reach is dropped, so pruning never changes a figure
    (a replay and the live run may prune at different moments)."""
    for buckets, keep in ((state.minutes, KEEP_MINUTES_MS), (state.intervals, KEEP_INTERVALS_MS)):
        for by_start in buckets.values():
            for start in [s for s in by_start if s < now_ms - keep]:
                del by_start[start]
    for call_id, track in list(state.calls.items()):
        if track.ended_ms is not None and track.ended_ms < now_ms - KEEP_ENDED_MS:
            del state.calls[call_id]
        elif track.leg is not None and track.leg.entered_ms < now_ms - STALE_WAIT_MS:
            _stop_waiting(state, call_id, track.leg, track.leg.entered_ms)
            track.leg = None
    for key, (_, answered) in list(state.answered_by.items()):
        if answered < now_ms - KEEP_ENDED_MS:
            del state.answered_by[key]
    for key, pending in list(state.pending_wrapups.items()):
        kept = [item for item in pending if item[0] >= now_ms - KEEP_ENDED_MS]
        if kept:
            state.pending_wrapups[key] = kept
        else:
            del state.pending_wrapups[key]
