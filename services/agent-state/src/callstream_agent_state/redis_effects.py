"""Each state change of the machine, mirrored into the Redis availability store as a compare-and-set.

The router reserves agents in Redis on its own (one Lua script), so the store can be one step ahead of the
machine: an agent the machine holds as available may already be reserved. A move out of available that
finds the agent reserved reports that call (`ReservedFirst`), and the service feeds `AgentReserved` to the
machine before the input (machine.py). A CAS that finds the agent already in the target state is a replay
and counts as done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from callstream_common import metrics
from callstream_common.availability import CALL_STATES, Availability, Transition
from callstream_common.messages.agents import AgentState, AgentStateChanged

from callstream_agent_state.config import AgentEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReservedFirst:
    """The router reserved the agent for `call_id` before this move out of available could apply."""

    call_id: str


async def ensure_agent(store: Availability, entry: AgentEntry, now: datetime) -> AgentState:
    """Create the agent's hash (logged out) or refresh its configuration; logout removes the hash."""
    return await store.upsert_agent(entry.agent_id, entry.pbx_id, entry.endpoint, entry.skills, entry.queues,
                                    now=now)


async def mirror(store: Availability, change: AgentStateChanged, previous_call_id: str | None,
                 now: datetime) -> ReservedFirst | None:
    """Apply one `agent.state-changed` to Redis; ReservedFirst when the router got there first."""
    to, before = change.state, change.previous_state
    if to == AgentState.RESERVED:
        return None  # only the router reserves, in Redis first: nothing to mirror
    held = previous_call_id if before in CALL_STATES else None
    result = await _move(store, change, {before}, held, now)
    if before in CALL_STATES and to in (AgentState.PAUSED, AgentState.LOGGED_OUT) \
            and result.previous == AgentState.AVAILABLE:
        # The router undid a reservation no call event announced (router outputs.ReleaseAgent) while the
        # machine held it (it learned of it as ReservedFirst); the machine's own outcome (a pending pause or
        # logout) wins over available.
        result = await _move(store, change, {AgentState.AVAILABLE}, None, now)
    if result.applied or result.previous == to or (to == AgentState.LOGGED_OUT and result.previous is None):
        return None  # done now, or before (a re-processed input)
    if before == AgentState.AVAILABLE and result.previous == AgentState.RESERVED and result.previous_call_id:
        return ReservedFirst(result.previous_call_id)
    metrics.AGENT_STATE_REDIS_CONFLICTS.labels(str(to)).inc()
    log.warning("redis availability disagrees", extra={
        "agent_id": change.agent_id, "to": str(to), "expected": str(before),
        "found": str(result.previous), "found_call_id": result.previous_call_id})
    return None


async def _move(store: Availability, change: AgentStateChanged, expected: set[AgentState], held: str | None,
                now: datetime) -> Transition:
    agent_id, to = change.agent_id, change.state
    match to:
        case AgentState.LOGGED_OUT:
            return await store.remove(agent_id, expected_states=expected)
        case AgentState.AVAILABLE | AgentState.PAUSED:
            return await store.set_state(agent_id, to, now=now, expected_states=expected, expected_call_id=held,
                                         reason=change.pause_reason)
        case _:
            # Ringing, on_call, wrap_up: the router reserved the agent for this call (or it was ringing). Only
            # for *this* call: a late input of an older call (the router has since released the agent and
            # reserved it for another) must not take the newer reservation over, or that call's release would
            # then make available an agent the router has given to another call (two calls at once).
            result = await store.set_state(agent_id, to, now=now, call_id=change.call_id,
                                           expected_states=expected | {AgentState.RESERVED, AgentState.RINGING},
                                           expected_call_id=change.call_id)
            if result.applied or change.previous_state in CALL_STATES:
                return result
            # A direct answer finds the agent available, holding no call.
            return await store.set_state(agent_id, to, now=now, call_id=change.call_id, expected_states=expected)


async def reconcile(store: Availability, entry: AgentEntry, machine: AgentState, call_id: str | None,
                    reason: str | None, now: datetime) -> AgentState | None:
    """Make Redis say the agent is logged in when the machine says so and Redis has it logged out: the state the
    worker resumed from its changelog is the truth, Redis may have been flushed, restored from an older copy,
    or re-created logged out. Returns the state Redis was repaired from, None when nothing was done.

    Disagreements between two logged-in states are left alone: the router may have reserved the agent since
    (newer than the machine), and the inputs on their way settle those as they are processed."""
    current = await store.get(entry.agent_id)
    found = current.state if current is not None else None
    logged_in = machine != AgentState.LOGGED_OUT
    if logged_in and found in (None, AgentState.LOGGED_OUT):
        await ensure_agent(store, entry, now)  # with the phone it is logged in on, for the router to dial
        busy = machine in CALL_STATES or machine == AgentState.WRAP_UP
        result = await store.set_state(entry.agent_id, machine, now=now, expected_states={AgentState.LOGGED_OUT},
                                       call_id=call_id if busy else None,
                                       reason=reason if machine == AgentState.PAUSED else None)
        return AgentState.LOGGED_OUT if result.applied else None
    # Not the other way (the machine logged out, Redis logged in): an agent reassigned to another PBX leaves a
    # logged-out state behind in its old partition's changelog, which must never log out the agent now working
    # on the new PBX (the caller passes only the agents of their PBX's partition; this holds regardless).
    return None
