"""The router's decider: `decide(state, input, now, config) -> (new_state, outputs)`, pure, no I/O.

Outputs, in the order the service must act on them: AriCommand bodies (for the PBX's gateway), call events
(for `calls`), ReserveAgent / ReleaseAgent intents (for Redis; each ReserveAgent is answered by feeding a
ReservationResult back in) and RouterNotes (for the log). Flows and their ARI sequences: docs/acd.md and
../shared/ari/NOTES.md §b. In short:

- inbound `StasisStart(args inbound,<DID>)` to a queue: answer, holding bridge with MOH, `call.queued`; the
  waiting calls of each queue ask for an agent in order (priority, then the longest wait) with the skill
  level relaxed by their wait; a reserved agent is originated (`app_args agent,<call>`), `call.offered`;
  ring-all reserves every eligible agent and originates to all of them.
- the agent leg's `StasisStart` (only on answer): caller out of the holding bridge, a mixing bridge with both,
  `call.answered`; other ring-all legs are hung up and released.
- an unanswered leg ends (`Dial` final status, `ChannelDestroyed` or hangup before StasisStart, the ring
  deadline, a failed originate): `call.agent-missed`, release, the next agent (not the one that missed).
- the caller goes while waiting or ringing: `call.abandoned`, agent legs hung up and released; either side
  goes after the answer: the other hung up, bridges destroyed, `call.ended`.
- max wait: `call.overflowed` to another queue (re-queued, keeping waiting_since), voicemail (continue in
  the dialplan) or hangup.
- transfers from `cms.commands`: blind to a queue or an extension, attended (consultation, complete/cancel).
- `inbound,<DID>` where the DID routes to an extension, or `extension,<ext>`: straight to that agent.
- a gateway snapshot ends the calls whose channels are gone and releases their agents.

Every call ends with exactly one `call.ended`. An input that does not fit the state (late, duplicated,
reordered) changes nothing and yields at most a RouterNote.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

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
from callstream_common.messages.cms import TransferAttendedFinish, TransferAttendedStart, TransferBlind
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
    Operation,
    Originate,
    Ring,
    VariableSet,
)
from callstream_router import ids
from callstream_router.config import QueueConfig, RouterConfig
from callstream_router.inputs import (
    AgentFreed,
    ChannelDestroyed,
    ChannelHangupRequest,
    CmsTransfer,
    CommandFailed,
    Deadline,
    DialEvent,
    ReservationResult,
    ReservedAgent,
    RouterInput,
    Snapshot,
    StasisEnd,
    StasisStart,
)
from callstream_router.outputs import ReleaseAgent, ReserveAgent, RouterNote, RouterOutput
from callstream_router.recorded import Recorded
from callstream_router.state import CallState, Consult, DryMark, Ended, Leg, RouterState
from callstream_router.strategies import effective_level, next_relaxation, waiting_order

MissReason = Literal["no_answer", "busy", "unreachable", "rejected", "failed"]
Outcome = Literal["completed", "abandoned", "overflowed", "failed", "rejected"]
HangupBy = Literal["caller", "agent", "system"]

# Dial statuses that are progress, not an end (NOTES §e.11).
_PROGRESS = frozenset({"", "RINGING", "PROGRESS", "PROCEEDING", "ANSWER"})
_DIAL_REASONS: dict[str, MissReason] = {
    "NOANSWER": "no_answer", "CANCEL": "no_answer", "BUSY": "busy", "CHANUNAVAIL": "unreachable",
    "CONGESTION": "failed",
}
# Q.850 causes of an unanswered leg's end. 0 is Asterisk's cause on an originate timeout (asterisk#963).
_CAUSE_REASONS: dict[int, MissReason] = {
    0: "no_answer", 16: "no_answer", 18: "no_answer", 19: "no_answer", 17: "busy", 21: "rejected",
    1: "unreachable", 3: "unreachable", 20: "unreachable", 27: "unreachable",
}
_ENDPOINT = re.compile(r"^[A-Za-z0-9_\-]+/.+$")
_PHONE = re.compile(r"^\+?[0-9*#]+$")


def decide(state: RouterState, input: RouterInput, now: datetime, config: RouterConfig
           ) -> tuple[RouterState, list[RouterOutput]]:
    work = _Work(state, input.origin, now, input.at or now, config)
    _handle(work, input)
    if work.dispatch_needed:
        _dispatch(work)
    work.prune()
    return work.finish(), work.out


class _Work:
    """The mutable scratch copy of the state and the outputs of one decide call (never escapes it)."""

    def __init__(self, state: RouterState, origin: str, now: datetime, at: datetime, config: RouterConfig) -> None:
        # Recorded copies: what this input touches is known without comparing every entry (recorded.py).
        self.calls = Recorded(state.calls)
        self.channels = Recorded(state.channels)
        self.ended = Recorded(state.ended)
        self.requests = Recorded(state.requests)
        self.dry = Recorded(state.dry)
        self.origin = origin
        self.now = now
        self.at = at
        self.config = config
        self.out: list[RouterOutput] = []
        self.dispatch_needed = False
        self._n = 0

    def finish(self) -> RouterState:
        return RouterState(self.calls, self.channels, self.ended, self.requests, self.dry)

    def next_id(self) -> str:
        value = ids.output_id(self.origin, self._n)
        self._n += 1
        return value

    def command(self, call_id: str | None, operation: Operation, command_id: str | None = None) -> str:
        command_id = command_id or self.next_id()
        self.out.append(AriCommand(
            command_id=command_id, operation=operation,
            expires_at=self.now + timedelta(seconds=self.config.command_ttl_s),
            # One call's commands run in order (answer before addChannel, create before add, ...).
            ordering_key=f"call:{call_id}" if call_id is not None else None,
        ))
        return command_id

    def emit(self, event: RouterOutput) -> None:
        self.out.append(event)

    def reserve(self, call_id: str, owner: str, number: int, queue: QueueConfig | None, *,
                agent_id: str | None = None, level: int = 0, ring_all: bool = False,
                exclude: tuple[str, ...] = ()) -> str:
        # Named after the call and its request count, not the input: unique even if an input is delivered
        # again on top of the state it already changed, and the same when it is re-processed from before.
        request_id = ids.request_id(call_id, number)
        self.out.append(ReserveAgent(
            request_id=request_id, call_id=call_id, queue_id=queue.queue_id if queue else None, agent_id=agent_id,
            skill=queue.required_skill if queue else None, min_level=level, count="all" if ring_all else "one",
            exclude=exclude,
        ))
        self.requests[request_id] = owner
        return request_id

    def release(self, agent_id: str, call_id: str) -> None:
        self.out.append(ReleaseAgent(agent_id, call_id))

    def note(self, kind: str, detail: str) -> None:
        self.out.append(RouterNote(kind, detail))

    def put(self, call: CallState) -> None:
        self.calls[call.call_id] = call

    def drop_request(self, request_id: str | None) -> None:
        if request_id is not None:
            self.requests.pop(request_id, None)

    def prune(self) -> None:
        """Forget ended calls older than tombstone_s (insertion order is end order)."""
        horizon = self.now - timedelta(seconds=self.config.tombstone_s)
        while self.ended:
            call_id, ended = next(iter(self.ended.items()))
            if ended.at > horizon:
                break
            del self.ended[call_id]
            for channel in ended.channels:
                if self.channels.get(channel) == call_id:
                    del self.channels[channel]


def _handle(w: _Work, item: RouterInput) -> None:  # noqa: C901 - the registry of inputs, one line each
    match item:
        case StasisStart():
            _on_stasis_start(w, item)
        case StasisEnd():
            _on_gone(w, item.channel_id, None)
        case ChannelHangupRequest():
            _on_gone(w, item.channel_id, None if item.soft else item.cause)
        case ChannelDestroyed():
            _on_gone(w, item.channel_id, item.cause)
        case DialEvent():
            _on_dial(w, item)
        case ReservationResult():
            _on_reserved(w, item)
        case Deadline():
            _on_deadline(w, item)
        case Snapshot():
            _on_snapshot(w, item)
        case AgentFreed():
            w.dry.clear()
            w.dispatch_needed = True
        case CmsTransfer():
            _on_transfer(w, item)
        case CommandFailed():
            _on_command_failed(w, item)
        case _:
            pass  # ChannelStateChange, Entered/LeftBridge: the router's state does not depend on them


# ---- inbound ------------------------------------------------------------------------------------------------

def _on_stasis_start(w: _Work, ev: StasisStart) -> None:
    role = ev.args[0] if ev.args else "inbound"
    arg = ev.args[1] if len(ev.args) > 1 else None
    if role == "agent":
        _on_agent_answer(w, ev.channel.id)
    elif role == "consult":
        _on_consult_answer(w, ev.channel.id)
    elif role in ("inbound", "extension"):
        _on_inbound(w, ev, role, arg)
    else:
        w.note("unknown_stasis_args", f"channel {ev.channel.id} args {list(ev.args)}")


def _on_inbound(w: _Work, ev: StasisStart, role: str, arg: str | None) -> None:
    cfg = w.config
    channel = ev.channel
    call_id = ids.call_id_for_channel(cfg.pbx_id, channel.id)
    if call_id in w.calls or call_id in w.ended:
        w.note("duplicate", f"StasisStart of caller {channel.id} (call {call_id})")
        return
    number = arg or channel.exten
    queue: QueueConfig | None = None
    extension: str | None = None
    priority: int | None = None
    if role == "extension":
        extension = number
    else:
        route = cfg.dids.get(number) if number else None
        if route is None:
            queue = cfg.queue(cfg.default_queue_id)
        elif route.extension is not None:
            extension = route.extension
            priority = route.priority
        else:
            queue = cfg.queue(route.queue_id)
            priority = route.priority
    w.channels[channel.id] = call_id
    call = CallState(
        call_id=call_id, caller_channel=channel.id, route="queue", phase="waiting", waiting_since=w.at,
        queued_at=w.now, caller_number=channel.caller_number[:64] if channel.caller_number else None,
        caller_name=channel.caller_name[:128] if channel.caller_name else None,
        did=number if role == "inbound" and number and _PHONE.match(number) and len(number) <= 32 else None,
    )
    agent_id = cfg.extensions.get(extension) if extension else None
    if queue is not None:
        call = replace(call, priority=_clamp_priority(priority if priority is not None else queue.priority))
        _enter_queue(w, call, queue, first=True)
    elif agent_id is not None and extension is not None:
        call = replace(call, route="agent", target_agent_id=agent_id, target_extension=extension,
                       priority=_clamp_priority(priority or 0))
        w.command(call_id, Ring(channel_id=channel.id))  # ringback while the agent's phone rings
        _reserve_target(w, call)
    else:
        w.command(call_id, Hangup(channel_id=channel.id, reason="unallocated"))
        w.note("no_route", f"call {call_id}: nothing routes {role} {number!r}")
        _end(w, call, "rejected", "system", None)


def _clamp_priority(value: int) -> int:
    return max(0, min(100, value))


def _to_holding(w: _Work, call: CallState, moh_class: str | None) -> CallState:
    """Put the caller in the call's holding bridge (answering it and making the bridge if needed)."""
    hold = ids.holding_bridge_id(call.call_id)
    if call.caller_bridge == hold:
        return call
    if not call.caller_answered:
        w.command(call.call_id, Answer(channel_id=call.caller_channel))
    if call.caller_bridge is not None:
        w.command(call.call_id, BridgeRemoveChannel(bridge_id=call.caller_bridge, channel_ids=[call.caller_channel]))
    if not call.holding:
        w.command(call.call_id, BridgeCreate(bridge_id=hold, bridge_type="holding", name=call.call_id))
        w.command(call.call_id, MohStart(bridge_id=hold, moh_class=moh_class))
    w.command(call.call_id, BridgeAddChannel(bridge_id=hold, channel_ids=[call.caller_channel]))
    return replace(call, caller_answered=True, holding=True, caller_bridge=hold)


def _enter_queue(w: _Work, call: CallState, queue: QueueConfig, *, first: bool = False,
                 exclude: tuple[str, ...] = ()) -> None:
    """The call (new, transferred or overflowed) waits in `queue`; waiting_since is kept."""
    call = _to_holding(w, call, queue.moh_class)
    w.drop_request(call.reserve_request)
    call = replace(
        call, route="queue", phase="waiting", queue_id=queue.queue_id, queued_at=w.now,
        queue_entry=call.queue_entry if first else call.queue_entry + 1, target_agent_id=None,
        target_extension=None, legs=(), missed=exclude, reserve_request=None, reserve_deadline=None, retry_at=None,
        overflow_due=False, priority=max(call.priority, _clamp_priority(queue.priority)),
    )
    w.emit(CallQueued(
        call_id=call.call_id, at=w.at, queue_id=queue.queue_id, caller_number=call.caller_number,
        caller_name=call.caller_name, did=call.did, priority=call.priority, channel_id=call.caller_channel,
        waiting_since=call.waiting_since,
    ))
    w.put(call)
    w.dispatch_needed = True


# ---- choosing agents ----------------------------------------------------------------------------------------

def _dispatch(w: _Work) -> None:
    """Ask for agents for the waiting calls, best first, unless their queue just had none at their level."""
    now = w.now
    for queue_id in [q for q, mark in w.dry.items() if mark.until <= now]:
        del w.dry[queue_id]
    inflight: dict[str, int] = {}
    candidates: list[CallState] = []
    for call in w.calls.values():
        if call.route != "queue" or call.queue_id is None:
            continue
        if call.reserve_request is not None:
            inflight[call.queue_id] = inflight.get(call.queue_id, 0) + 1
        elif call.phase == "waiting" and not call.legs and not call.overflow_due:
            candidates.append(call)
    candidates.sort(key=lambda c: waiting_order(c.priority, c.waiting_since, c.call_id))
    for call in candidates:
        queue = w.config.queue(call.queue_id)
        if queue is None or inflight.get(queue.queue_id, 0) >= w.config.max_inflight_per_queue:
            continue
        level = effective_level(queue, (now - call.queued_at).total_seconds())
        mark = w.dry.get(queue.queue_id)
        if mark is not None and level >= mark.level:
            wake = mark.until
            relax = next_relaxation(queue, call.queued_at, now)
            if relax is not None and relax < wake:
                wake = relax
            if call.retry_at != wake:
                w.put(replace(call, retry_at=wake))
            continue
        request = w.reserve(call.call_id, call.call_id, call.reserve_count + 1, queue, level=level,
                            ring_all=queue.strategy == "ring_all", exclude=call.missed)
        w.put(replace(call, reserve_request=request, reserve_count=call.reserve_count + 1, reserve_level=level,
                      reserve_deadline=now + timedelta(seconds=w.config.reserve_timeout_s), retry_at=None))
        inflight[queue.queue_id] = inflight.get(queue.queue_id, 0) + 1


def _reserve_target(w: _Work, call: CallState) -> None:
    """A call for one agent (direct, or transferred to its extension) asks for that agent only."""
    assert call.target_agent_id is not None
    request = w.reserve(call.call_id, call.call_id, call.reserve_count + 1, None, agent_id=call.target_agent_id)
    w.put(replace(call, reserve_request=request, reserve_count=call.reserve_count + 1,
                  reserve_deadline=w.now + timedelta(seconds=w.config.reserve_timeout_s)))


def _on_reserved(w: _Work, res: ReservationResult) -> None:
    owner = w.requests.pop(res.request_id, None)
    call = w.calls.get(owner) if owner is not None else None
    if call is not None and call.consult is not None and call.consult.request_id == res.request_id:
        _consult_reserved(w, call, res.agents)
        return
    if call is None or call.reserve_request != res.request_id:
        for agent in res.agents:
            # A repeated answer must not release an agent the call is ringing or talking to now.
            if call is None or not _involved(call, agent.agent_id):
                w.release(agent.agent_id, res.call_id)
        if res.agents:
            w.note("stale_reservation", f"request {res.request_id} for call {res.call_id}")
        return
    call = replace(call, reserve_request=None, reserve_deadline=None)
    if not res.agents:
        if call.route == "agent":
            _target_unavailable(w, call)
            return
        assert call.queue_id is not None
        mark = w.dry.get(call.queue_id)
        level = min(mark.level, call.reserve_level) if mark is not None else call.reserve_level
        w.dry[call.queue_id] = DryMark(level, w.now + timedelta(seconds=w.config.retry_s))
        # The agents skipped for having missed this call may be offered it again on the next try.
        w.put(replace(call, missed=()))
        w.dispatch_needed = True
        return
    queue = w.config.queue(call.queue_id) if call.route == "queue" else None
    ring_all = queue is not None and queue.strategy == "ring_all"
    take = res.agents if ring_all else res.agents[:1]
    for extra in res.agents[len(take):]:
        w.release(extra.agent_id, call.call_id)
    timeout = queue.ring_timeout_s if queue is not None else w.config.direct_ring_timeout_s
    for agent in take:
        call = _offer(w, call, agent, timeout)
    w.put(call)
    if not call.legs:  # every reservation was unusable
        if call.route == "agent":
            _target_unavailable(w, call)
        else:
            w.dispatch_needed = True


def _involved(call: CallState, agent_id: str) -> bool:
    consult_leg = call.consult.leg if call.consult is not None else None
    return call.agent_id == agent_id or any(leg.agent_id == agent_id for leg in call.legs) \
        or (consult_leg is not None and consult_leg.agent_id == agent_id)


def _usable(agent: ReservedAgent) -> bool:
    return ids.is_valid_id(agent.agent_id) and 3 <= len(agent.endpoint) <= 200 and bool(_ENDPOINT.match(agent.endpoint))


def _caller_id(call: CallState) -> str | None:
    if call.caller_number and call.caller_name:
        return f'"{call.caller_name}" <{call.caller_number}>'
    return call.caller_number


def _offer(w: _Work, call: CallState, agent: ReservedAgent, timeout: int) -> CallState:
    if not _usable(agent):
        w.release(agent.agent_id, call.call_id)
        w.note("bad_reservation", f"agent {agent.agent_id!r} endpoint {agent.endpoint!r}")
        return call
    attempt = call.attempts + 1
    leg_id = ids.agent_leg_id(call.call_id, attempt)
    command_id = w.command(call.call_id, Originate(
        channel_id=leg_id, endpoint=agent.endpoint, app=w.config.app, app_args=f"agent,{call.call_id}",
        caller_id=_caller_id(call), timeout_s=timeout, originator=call.caller_channel,
    ))
    w.emit(CallOffered(
        call_id=call.call_id, at=w.at, queue_id=_queue_of(call), agent_id=agent.agent_id,
        agent_channel_id=leg_id, endpoint=agent.endpoint, attempt=attempt,
    ))
    w.channels[leg_id] = call.call_id
    leg = Leg(leg_id, agent.agent_id, agent.endpoint, attempt, w.now,
              w.now + timedelta(seconds=timeout + w.config.ring_grace_s), command_id)
    return replace(call, legs=(*call.legs, leg), attempts=attempt)


def _queue_of(call: CallState) -> str | None:
    return call.queue_id if call.route == "queue" else None


def _target_unavailable(w: _Work, call: CallState) -> None:
    """The agent a call was for is not available or did not answer: back to its queue, else a busy hangup."""
    queue = w.config.queue(call.queue_id)
    if queue is not None:
        _enter_queue(w, call, queue, exclude=(call.target_agent_id,) if call.target_agent_id else ())
        return
    w.command(call.call_id, Hangup(channel_id=call.caller_channel, reason="busy"))
    _end(w, call, "rejected" if call.answered_at is None else "failed", "system", None)


# ---- agent legs ---------------------------------------------------------------------------------------------

def _on_agent_answer(w: _Work, channel_id: str) -> None:
    call_id = w.channels.get(channel_id)
    call = w.calls.get(call_id) if call_id is not None else None
    leg = call.leg(channel_id) if call is not None else None
    if call is not None and call.agent_channel == channel_id:
        w.note("duplicate", f"StasisStart of agent leg {channel_id}, already bridged")
        return
    if call is None or leg is None or call.phase != "waiting":
        # Nobody waits for this leg any more (caller gone, ring timeout, another ring-all leg won). The id names
        # the channel: this hangup is the same whichever input (or repeat of one) asks for it.
        w.command(call_id, Hangup(channel_id=channel_id, reason="normal"), command_id=ids.cleanup_id(channel_id))
        w.note("unwanted_agent_leg", f"agent leg {channel_id} answered (call {call_id})")
        return
    if not call.caller_answered:
        w.command(call.call_id, Answer(channel_id=call.caller_channel))
    if call.caller_bridge is not None:
        w.command(call.call_id, BridgeRemoveChannel(bridge_id=call.caller_bridge, channel_ids=[call.caller_channel]))
    generation = call.bridge_gen + 1
    bridge = ids.mixing_bridge_id(call.call_id, generation)
    w.command(call.call_id, BridgeCreate(bridge_id=bridge, bridge_type="mixing", name=call.call_id))
    w.command(call.call_id, BridgeAddChannel(bridge_id=bridge, channel_ids=[call.caller_channel, channel_id]))
    for other in call.legs:
        if other.channel_id != channel_id:
            w.command(call.call_id, Hangup(channel_id=other.channel_id, reason="answered_elsewhere"))
    w.emit(CallAnswered(
        call_id=call.call_id, at=w.at, queue_id=_queue_of(call), agent_id=leg.agent_id, bridge_id=bridge,
        wait_s=max(0.0, (w.at - call.waiting_since).total_seconds()),
    ))
    w.drop_request(call.reserve_request)
    w.put(replace(
        call, phase="talking", legs=(), caller_answered=True, caller_bridge=bridge, bridge_gen=generation,
        mixing_bridge=bridge, agent_id=leg.agent_id, agent_channel=channel_id,
        answered_at=call.answered_at or w.at, talking_since=w.now, overflow_due=False, missed=(),
        reserve_request=None, reserve_deadline=None, retry_at=None,
    ))


def _on_dial(w: _Work, ev: DialEvent) -> None:
    status = ev.dialstatus.upper()
    if status in _PROGRESS:
        return
    call_id = w.channels.get(ev.peer_id)
    call = w.calls.get(call_id) if call_id is not None else None
    if call is None:
        return
    reason = _DIAL_REASONS.get(status, "failed")
    leg = call.leg(ev.peer_id)
    if leg is not None:
        _leg_failed(w, call, leg, reason, hangup=False)
    elif _ringing_consult(call, ev.peer_id):
        _consult_failed(w, call, reason, hangup=False)


def _ringing_consult(call: CallState, channel_id: str) -> bool:
    consult = call.consult
    return consult is not None and consult.leg is not None and consult.leg.channel_id == channel_id \
        and consult.answered_at is None


def _leg_failed(w: _Work, call: CallState, leg: Leg, reason: MissReason, *, hangup: bool) -> None:
    if hangup:
        w.command(call.call_id, Hangup(channel_id=leg.channel_id, reason="timeout"))
    w.emit(CallAgentMissed(call_id=call.call_id, at=w.at, queue_id=_queue_of(call), agent_id=leg.agent_id,
                           reason=reason))
    missed = call.missed if leg.agent_id in call.missed else (*call.missed, leg.agent_id)
    call = replace(call, legs=tuple(x for x in call.legs if x.channel_id != leg.channel_id), missed=missed)
    w.put(call)
    if call.legs or call.phase != "waiting":
        return
    if call.overflow_due:
        _overflow(w, call)
    elif call.route == "agent":
        _target_unavailable(w, call)
    else:
        w.dispatch_needed = True


def _on_gone(w: _Work, channel_id: str, cause: int | None) -> None:
    """A channel hung up, left Stasis or was destroyed: whichever comes first counts, the rest find nothing."""
    call_id = w.channels.get(channel_id)
    call = w.calls.get(call_id) if call_id is not None else None
    if call is None:
        return
    if channel_id == call.caller_channel:
        _caller_gone(w, call, cause)
        return
    leg = call.leg(channel_id)
    if leg is not None:
        _leg_failed(w, call, leg, _CAUSE_REASONS.get(cause, "failed") if cause is not None else "no_answer",
                    hangup=False)
    elif channel_id == call.agent_channel:
        _agent_gone(w, call, cause)
    elif call.consult is not None and call.consult.leg is not None and call.consult.leg.channel_id == channel_id:
        if call.consult.answered_at is None:
            _consult_failed(w, call, _CAUSE_REASONS.get(cause, "failed") if cause is not None else "no_answer",
                            hangup=False)
        else:
            _consult_back(w, _drop_consult(w, call, "agent", hang_up=False))


def _caller_gone(w: _Work, call: CallState, cause: int | None) -> None:
    if call.phase == "waiting":
        for leg in call.legs:
            w.command(call.call_id, Hangup(channel_id=leg.channel_id, reason="normal"))
        if call.route == "queue" and call.queue_id is not None:
            w.emit(CallAbandoned(
                call_id=call.call_id, at=w.at, queue_id=call.queue_id,
                wait_s=max(0.0, (w.at - call.waiting_since).total_seconds()),
                while_ringing_agent=call.legs[0].agent_id if call.legs else None,
            ))
        _end(w, replace(call, legs=()), "abandoned", "caller", None, cause)
        return
    if call.consult is not None:
        call = _drop_consult(w, call, "system")
    if call.agent_channel is not None:
        w.command(call.call_id, Hangup(channel_id=call.agent_channel, reason="normal"))
    _end(w, call, "completed", "caller", call.agent_id, cause)


def _agent_gone(w: _Work, call: CallState, cause: int | None) -> None:
    if call.phase == "consulting" and call.consult is not None:
        if call.consult.answered_at is not None:
            # The transferring agent hung up during an answered consultation: that completes the transfer.
            _complete_consult(w, call, hang_up_agent=False)
            return
        call = _drop_consult(w, call, "agent")
    w.command(call.call_id, Hangup(channel_id=call.caller_channel, reason="normal"))
    _end(w, call, "completed", "agent", call.agent_id, cause)


def _end(w: _Work, call: CallState, outcome: Outcome, hangup_by: HangupBy, agent_id: str | None,
         cause: int | None = None) -> None:
    """The call is over: its bridges go, `call.ended`, and it becomes a tombstone."""
    w.drop_request(call.reserve_request)
    if call.consult is not None:
        w.drop_request(call.consult.request_id)
    if call.mixing_bridge is not None:
        w.command(call.call_id, BridgeDestroy(bridge_id=call.mixing_bridge))
    if call.holding:
        w.command(call.call_id, BridgeDestroy(bridge_id=ids.holding_bridge_id(call.call_id)))
    talk_s = call.talk_s + (_since(w, call.talking_since) if call.talking_since is not None else 0.0)
    hold_s = call.hold_s + (_since(w, call.hold_since) if call.hold_since is not None else 0.0)
    w.emit(CallEnded(
        call_id=call.call_id, at=w.at, queue_id=call.queue_id, agent_id=agent_id, outcome=outcome,
        hangup_by=hangup_by, talk_s=talk_s, hold_s=hold_s,
        cause=cause if cause is not None and 0 < cause < 128 else None,
    ))
    w.calls.pop(call.call_id, None)
    channels = (call.caller_channel,
                *(ids.agent_leg_id(call.call_id, n) for n in range(1, call.attempts + 1)),
                *(ids.consult_call_id(call.call_id, n) for n in range(1, call.consults + 1)))
    w.ended[call.call_id] = Ended(w.now, channels)


def _since(w: _Work, start: datetime) -> float:
    return max(0.0, (w.now - start).total_seconds())


def _stop_talking(w: _Work, call: CallState) -> CallState:
    talk = call.talk_s + (_since(w, call.talking_since) if call.talking_since is not None else 0.0)
    return replace(call, talk_s=talk, talking_since=None, agent_id=None, agent_channel=None, mixing_bridge=None)


# ---- overflow and timers ------------------------------------------------------------------------------------

def _overflow(w: _Work, call: CallState) -> None:
    queue = w.config.queue(call.queue_id)
    assert queue is not None and call.queue_id is not None
    wait_s = max(0.0, (w.at - call.waiting_since).total_seconds())
    target = w.config.queue(queue.overflow_queue_id) if queue.overflow_action == "queue" else None
    if target is not None and target.queue_id != queue.queue_id:
        w.emit(CallOverflowed(call_id=call.call_id, at=w.at, from_queue_id=queue.queue_id,
                              to_queue_id=target.queue_id, action="queue", wait_s=wait_s))
        _enter_queue(w, call, target)
        return
    w.drop_request(call.reserve_request)
    if queue.overflow_action == "voicemail":
        w.command(call.call_id, VariableSet(channel_id=call.caller_channel, variable="CALLSTREAM_QUEUE",
                                            value=queue.queue_id))
        w.command(call.call_id, Continue(channel_id=call.caller_channel, context=w.config.voicemail_context,
                                         extension=queue.voicemail_extension, priority=1))
        action: Literal["voicemail", "hangup"] = "voicemail"
    else:
        w.command(call.call_id, Hangup(channel_id=call.caller_channel, reason="normal"))
        action = "hangup"
    w.emit(CallOverflowed(call_id=call.call_id, at=w.at, from_queue_id=queue.queue_id, to_queue_id=None,
                          action=action, wait_s=wait_s))
    _end(w, call, "overflowed", "system", None)


def _on_deadline(w: _Work, d: Deadline) -> None:  # noqa: C901 - one branch per timer
    call = w.calls.get(d.call_id)
    if call is None:
        return
    now = w.now
    if d.kind == "ring":
        for leg in call.legs:
            if leg.attempt == d.attempt and leg.ring_deadline <= now:
                _leg_failed(w, call, leg, "no_answer", hangup=True)
                return
    elif d.kind == "consult_ring":
        consult = call.consult
        if consult is not None and consult.number == d.attempt and consult.leg is not None \
                and consult.answered_at is None and consult.leg.ring_deadline <= now:
            _consult_failed(w, call, "no_answer", hangup=True)
    elif d.kind == "max_wait":
        queue = w.config.queue(call.queue_id)
        if call.phase != "waiting" or call.route != "queue" or call.queue_entry != d.attempt \
                or call.overflow_due or queue is None or queue.max_wait_s is None \
                or call.queued_at + timedelta(seconds=queue.max_wait_s) > now:
            return
        if call.legs:  # let the agent ringing now finish ringing; overflow if it does not answer
            w.put(replace(call, overflow_due=True))
        else:
            _overflow(w, call)
    elif d.kind == "stale":
        if call.waiting_since + timedelta(seconds=w.config.max_call_age_s) <= now:
            w.note("stale_call", f"call {call.call_id} open since {call.waiting_since.isoformat()} ({call.phase})")
            # Unlike a snapshot repair, the caller's channel may still be there: it goes too.
            w.command(call.call_id, Hangup(channel_id=call.caller_channel, reason="normal"))
            _repair_end(w, call)
    elif d.kind == "retry":
        if call.wakes == d.attempt and call.retry_at is not None and call.retry_at <= now:
            w.put(replace(call, retry_at=None, wakes=call.wakes + 1))
            w.dispatch_needed = True
    elif d.kind == "reserve":
        if call.reserve_request is not None and call.reserve_count == d.attempt \
                and call.reserve_deadline is not None and call.reserve_deadline <= now:
            w.drop_request(call.reserve_request)
            w.note("reservation_lost", f"call {call.call_id} request {call.reserve_request}")
            call = replace(call, reserve_request=None, reserve_deadline=None)
            if call.route == "agent":
                _reserve_target(w, call)
            else:
                w.put(call)
                w.dispatch_needed = True
    elif d.kind == "consult_reserve":
        consult = call.consult
        if consult is not None and consult.number == d.attempt and consult.request_id is not None \
                and consult.reserve_deadline is not None and consult.reserve_deadline <= now:
            w.note("reservation_lost", f"consultation {consult.consult_id} request {consult.request_id}")
            _consult_back(w, _drop_consult(w, call, "system"))


# ---- repair -------------------------------------------------------------------------------------------------

def _on_snapshot(w: _Work, snap: Snapshot) -> None:
    present = snap.channel_ids
    settled = snap.taken_at - timedelta(seconds=w.config.snapshot_grace_s)
    for call_id in list(w.calls):
        call = w.calls[call_id]
        if call.waiting_since > settled:
            continue  # newer than the snapshot (or the snapshot is an old one delivered late): not judged
        if call.caller_channel not in present:
            _repair_end(w, call)
            continue
        for leg in call.legs:
            current = w.calls.get(call_id)
            if current is not None and current.leg(leg.channel_id) is not None and leg.channel_id not in present \
                    and leg.offered_at <= settled:
                _leg_failed(w, current, leg, "failed", hangup=False)
        current = w.calls.get(call_id)
        if current is None:
            continue
        consult = current.consult
        if consult is not None and consult.leg is not None and consult.leg.channel_id not in present \
                and consult.leg.offered_at <= settled:
            if consult.answered_at is None:
                _consult_failed(w, current, "failed", hangup=False)
            else:
                _consult_back(w, _drop_consult(w, current, "system", hang_up=False))
            current = w.calls.get(call_id)
        if current is not None and current.agent_channel is not None and current.agent_channel not in present:
            _agent_gone(w, current, None)
    # Channels and bridges the router made for calls it no longer has: hang up / destroy (they would leak).
    # Their command ids name the resource, so a snapshot seen twice asks for each clean-up once.
    for channel_id in sorted(present):
        owner = ids.owner_call_id(channel_id, w.config.pbx_id)
        if owner is not None and owner not in w.calls:
            w.command(owner, Hangup(channel_id=channel_id, reason="normal"), command_id=ids.cleanup_id(channel_id))
    for bridge_id in sorted(snap.bridge_ids):
        owner = ids.owner_call_id(bridge_id, w.config.pbx_id)
        if owner is not None and owner not in w.calls:
            w.command(owner, BridgeDestroy(bridge_id=bridge_id), command_id=ids.cleanup_id(bridge_id))


def _repair_end(w: _Work, call: CallState) -> None:
    for leg in call.legs:
        w.command(call.call_id, Hangup(channel_id=leg.channel_id, reason="normal"))
    if call.consult is not None:
        call = _drop_consult(w, call, "system")
    if call.agent_channel is not None:
        w.command(call.call_id, Hangup(channel_id=call.agent_channel, reason="normal"))
    _end(w, replace(call, legs=()), "failed", "system", call.agent_id)


def _on_command_failed(w: _Work, failed: CommandFailed) -> None:
    if failed.op != "originate":
        w.note("command_failed", f"{failed.op} {failed.command_id} status {failed.ari_status}")
        return
    for call in list(w.calls.values()):
        for leg in call.legs:
            if leg.originate_command_id == failed.command_id:
                _leg_failed(w, call, leg, "failed", hangup=False)
                return
        consult = call.consult
        if consult is not None and consult.leg is not None and consult.answered_at is None \
                and consult.leg.originate_command_id == failed.command_id:
            _consult_failed(w, call, "failed", hangup=False)
            return


# ---- transfers ----------------------------------------------------------------------------------------------

def _on_transfer(w: _Work, item: CmsTransfer) -> None:
    command = item.command
    call = w.calls.get(command.call_id)
    if call is None:
        w.note("transfer_unknown_call", f"{command.type} {command.command_id} for call {command.call_id}")
        return
    if command.command_id in call.commands:
        w.note("duplicate", f"{command.type} {command.command_id}")
        return
    if call.agent_id != command.agent_id:
        w.note("transfer_refused", f"{command.command_id}: agent {command.agent_id} is not on call {call.call_id}")
        return
    applied = replace(call, commands=(*call.commands, command.command_id)[-16:])
    if isinstance(command, TransferAttendedFinish):
        if call.phase != "consulting" or call.consult is None:
            w.note("transfer_refused", f"{command.command_id}: no consultation on call {call.call_id}")
        elif command.action == "cancel":
            _consult_back(w, _drop_consult(w, applied, "agent"))
        elif call.consult.answered_at is None:
            w.note("transfer_refused", f"{command.command_id}: the consultation is not answered yet")
        else:
            _complete_consult(w, applied, hang_up_agent=True)
        return
    if call.phase != "talking":
        w.note("transfer_refused", f"{command.command_id}: call {call.call_id} is {call.phase}")
        return
    if (command.to_queue_id is None) == (command.to_extension is None):
        w.note("transfer_refused", f"{command.command_id}: give exactly one of to_queue_id, to_extension")
        return
    if isinstance(command, TransferBlind):
        _blind(w, applied, command)
    else:
        _consult_start(w, applied, command)


def _blind(w: _Work, call: CallState, command: TransferBlind) -> None:
    assert call.agent_id is not None and call.agent_channel is not None and call.mixing_bridge is not None
    from_agent, from_queue = call.agent_id, call.queue_id
    agent_channel, mixing = call.agent_channel, call.mixing_bridge
    queue = w.config.queue(command.to_queue_id)
    extension = command.to_extension
    target_agent = w.config.extensions.get(extension) if extension is not None else None
    if command.to_queue_id is not None and queue is None:
        w.note("transfer_refused", f"{command.command_id}: unknown queue {command.to_queue_id}")
        return
    if target_agent == from_agent:
        w.note("transfer_refused", f"{command.command_id}: agent {from_agent} cannot transfer to itself")
        return
    if queue is None and target_agent is None:
        # Not one of ours: the dialplan takes the caller there, and the call leaves callstream.
        assert extension is not None
        w.command(call.call_id, Continue(channel_id=call.caller_channel, context=w.config.external_context,
                                         extension=extension, priority=1))
        w.command(call.call_id, Hangup(channel_id=agent_channel, reason="normal"))
        w.emit(CallTransferred(call_id=call.call_id, at=w.at, kind="blind_extension", from_agent_id=from_agent,
                               from_queue_id=from_queue, to_extension=extension))
        ended = replace(_stop_talking(w, call), mixing_bridge=mixing)
        _end(w, ended, "completed", "agent", from_agent)
        return
    moh = queue.moh_class if queue is not None else None
    call = _to_holding(w, call, moh)
    w.command(call.call_id, Hangup(channel_id=agent_channel, reason="normal"))
    w.command(call.call_id, BridgeDestroy(bridge_id=mixing))
    call = _stop_talking(w, call)
    if queue is not None:
        w.emit(CallTransferred(call_id=call.call_id, at=w.at, kind="blind_queue", from_agent_id=from_agent,
                               from_queue_id=from_queue, to_queue_id=queue.queue_id))
        _enter_queue(w, call, queue, exclude=(from_agent,))
        return
    w.emit(CallTransferred(call_id=call.call_id, at=w.at, kind="blind_extension", from_agent_id=from_agent,
                           from_queue_id=from_queue, to_extension=extension, to_agent_id=target_agent))
    call = replace(call, route="agent", phase="waiting", target_agent_id=target_agent, target_extension=extension,
                   legs=(), missed=(), retry_at=None, overflow_due=False)
    _reserve_target(w, call)


def _consult_start(w: _Work, call: CallState, command: TransferAttendedStart) -> None:
    assert call.agent_id is not None and call.agent_channel is not None
    from_agent = call.agent_id
    queue = w.config.queue(command.to_queue_id)
    target_agent = w.config.extensions.get(command.to_extension) if command.to_extension is not None else None
    if (command.to_queue_id is not None and queue is None) or (command.to_extension is not None and (
            target_agent is None or target_agent == from_agent)):
        w.note("transfer_refused", f"{command.command_id}: no agent or queue to consult")
        return
    number = call.consults + 1
    consult_id = ids.consult_call_id(call.call_id, number)
    call = _to_holding(w, call, queue.moh_class if queue is not None else None)
    request = w.reserve(consult_id, call.call_id, 1, queue, agent_id=target_agent,
                        level=effective_level(queue, 0.0) if queue is not None else 0, exclude=(from_agent,))
    consult = Consult(consult_id, number, command.to_queue_id, command.to_extension, w.now, request_id=request,
                      reserve_deadline=w.now + timedelta(seconds=w.config.reserve_timeout_s))
    talk = call.talk_s + (_since(w, call.talking_since) if call.talking_since is not None else 0.0)
    w.put(replace(call, phase="consulting", consult=consult, consults=number, talk_s=talk, talking_since=None,
                  hold_since=w.now))


def _consult_reserved(w: _Work, call: CallState, agents: tuple[ReservedAgent, ...]) -> None:
    consult = call.consult
    assert consult is not None and call.agent_channel is not None
    usable = [a for a in agents if _usable(a)]
    for agent in agents:
        if not usable or agent is not usable[0]:
            w.release(agent.agent_id, consult.consult_id)
    if not usable:
        w.note("consult_unavailable", f"consultation {consult.consult_id}: no agent available")
        _consult_back(w, replace(call, consult=replace(consult, request_id=None)))
        return
    agent = usable[0]
    queue = w.config.queue(consult.to_queue_id)
    timeout = queue.ring_timeout_s if queue is not None else w.config.direct_ring_timeout_s
    leg_id = consult.consult_id
    command_id = w.command(call.call_id, Originate(
        channel_id=leg_id, endpoint=agent.endpoint, app=w.config.app, app_args=f"consult,{call.call_id}",
        caller_id=_caller_id(call), timeout_s=timeout, originator=call.agent_channel,
    ))
    w.emit(CallOffered(call_id=consult.consult_id, at=w.at, queue_id=consult.to_queue_id, agent_id=agent.agent_id,
                       agent_channel_id=leg_id, endpoint=agent.endpoint, attempt=1))
    w.channels[leg_id] = call.call_id
    leg = Leg(leg_id, agent.agent_id, agent.endpoint, 1, w.now,
              w.now + timedelta(seconds=timeout + w.config.ring_grace_s), command_id)
    w.put(replace(call, consult=replace(consult, request_id=None, reserve_deadline=None, leg=leg)))


def _on_consult_answer(w: _Work, channel_id: str) -> None:
    call_id = w.channels.get(channel_id)
    call = w.calls.get(call_id) if call_id is not None else None
    if call is not None and (call.agent_channel == channel_id or (
            call.consult is not None and call.consult.leg is not None
            and call.consult.leg.channel_id == channel_id and call.consult.answered_at is not None)):
        w.note("duplicate", f"StasisStart of consult leg {channel_id}, already bridged")
        return
    if call is None or not _ringing_consult(call, channel_id) or call.mixing_bridge is None:
        w.command(call_id, Hangup(channel_id=channel_id, reason="normal"), command_id=ids.cleanup_id(channel_id))
        w.note("unwanted_consult_leg", f"consult leg {channel_id} answered (call {call_id})")
        return
    consult = call.consult
    assert consult is not None and consult.leg is not None
    w.command(call.call_id, BridgeAddChannel(bridge_id=call.mixing_bridge, channel_ids=[channel_id]))
    w.emit(CallAnswered(call_id=consult.consult_id, at=w.at, queue_id=consult.to_queue_id,
                        agent_id=consult.leg.agent_id, bridge_id=call.mixing_bridge,
                        wait_s=_since(w, consult.started_at)))
    w.put(replace(call, consult=replace(consult, answered_at=w.now)))


def _consult_failed(w: _Work, call: CallState, reason: MissReason, *, hangup: bool) -> None:
    consult = call.consult
    assert consult is not None and consult.leg is not None
    if hangup:
        w.command(call.call_id, Hangup(channel_id=consult.leg.channel_id, reason="timeout"))
    w.emit(CallAgentMissed(call_id=consult.consult_id, at=w.at, queue_id=consult.to_queue_id,
                           agent_id=consult.leg.agent_id, reason=reason))
    w.emit(CallEnded(call_id=consult.consult_id, at=w.at, queue_id=consult.to_queue_id, agent_id=None,
                     outcome="failed", hangup_by="system"))
    _consult_back(w, replace(call, consult=None))


def _drop_consult(w: _Work, call: CallState, hangup_by: HangupBy, *, hang_up: bool = True) -> CallState:
    """End the consultation (its own call.ended); the main call is left with the caller on hold."""
    consult = call.consult
    assert consult is not None
    w.drop_request(consult.request_id)
    leg = consult.leg
    if leg is not None:
        if hang_up:
            w.command(call.call_id, Hangup(channel_id=leg.channel_id, reason="normal"))
        if consult.answered_at is None:
            w.emit(CallEnded(call_id=consult.consult_id, at=w.at, queue_id=consult.to_queue_id, agent_id=None,
                             outcome="abandoned", hangup_by=hangup_by))
        else:
            w.emit(CallEnded(call_id=consult.consult_id, at=w.at, queue_id=consult.to_queue_id,
                             agent_id=leg.agent_id, outcome="completed", hangup_by=hangup_by,
                             talk_s=_since(w, consult.answered_at)))
    return replace(call, consult=None)


def _consult_back(w: _Work, call: CallState) -> None:
    """The caller leaves hold and talks with the transferring agent again."""
    if call.consult is not None:
        w.drop_request(call.consult.request_id)
    assert call.mixing_bridge is not None
    if call.caller_bridge is not None and call.caller_bridge != call.mixing_bridge:
        w.command(call.call_id, BridgeRemoveChannel(bridge_id=call.caller_bridge, channel_ids=[call.caller_channel]))
    w.command(call.call_id, BridgeAddChannel(bridge_id=call.mixing_bridge, channel_ids=[call.caller_channel]))
    hold = call.hold_s + (_since(w, call.hold_since) if call.hold_since is not None else 0.0)
    w.put(replace(call, phase="talking", consult=None, caller_bridge=call.mixing_bridge, hold_s=hold,
                  hold_since=None, talking_since=w.now))


def _complete_consult(w: _Work, call: CallState, *, hang_up_agent: bool) -> None:
    consult = call.consult
    assert consult is not None and consult.leg is not None and call.mixing_bridge is not None
    assert consult.answered_at is not None
    leg = consult.leg
    if call.caller_bridge is not None and call.caller_bridge != call.mixing_bridge:
        w.command(call.call_id, BridgeRemoveChannel(bridge_id=call.caller_bridge, channel_ids=[call.caller_channel]))
    w.command(call.call_id, BridgeAddChannel(bridge_id=call.mixing_bridge, channel_ids=[call.caller_channel]))
    if hang_up_agent and call.agent_channel is not None:
        w.command(call.call_id, Hangup(channel_id=call.agent_channel, reason="normal"))
    # Transferred first: the consulted agent adopts the call before its consultation ends.
    w.emit(CallTransferred(call_id=call.call_id, at=w.at, kind="attended", from_agent_id=call.agent_id,
                           from_queue_id=call.queue_id, to_queue_id=consult.to_queue_id,
                           to_extension=consult.to_extension, to_agent_id=leg.agent_id))
    w.emit(CallEnded(call_id=consult.consult_id, at=w.at, queue_id=consult.to_queue_id, agent_id=leg.agent_id,
                     outcome="completed", hangup_by="agent", talk_s=_since(w, consult.answered_at)))
    hold = call.hold_s + (_since(w, call.hold_since) if call.hold_since is not None else 0.0)
    w.put(replace(
        call, phase="talking", consult=None, agent_id=leg.agent_id, agent_channel=leg.channel_id,
        caller_bridge=call.mixing_bridge, queue_id=consult.to_queue_id or call.queue_id, hold_s=hold,
        hold_since=None, talking_since=w.now,
    ))

