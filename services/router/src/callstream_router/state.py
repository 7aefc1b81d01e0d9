"""The router's state for one PBX: its calls in progress, which channel belongs to which call, and memory.

Frozen dataclasses; the service persists them (e.g. `pydantic.TypeAdapter(RouterState)`) in its faust table.
Timers are fields here (ring deadlines, the queue entry time, retry times); `due_deadlines` lists those due.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from callstream_router.config import RouterConfig
from callstream_router.inputs import Deadline

Phase = Literal["waiting", "talking", "consulting"]
Route = Literal["queue", "agent"]


@dataclass(frozen=True)
class Leg:
    """An originated agent leg that has not answered yet."""

    channel_id: str
    agent_id: str
    endpoint: str
    attempt: int
    offered_at: datetime
    ring_deadline: datetime
    originate_command_id: str


@dataclass(frozen=True)
class Consult:
    """The consultation of an attended transfer: a call of its own, agent A to the target."""

    consult_id: str
    number: int
    to_queue_id: str | None
    to_extension: str | None
    started_at: datetime
    request_id: str | None = None
    reserve_deadline: datetime | None = None
    leg: Leg | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True)
class CallState:
    call_id: str
    caller_channel: str
    route: Route
    phase: Phase
    waiting_since: datetime  # PBX time: the start of the wait that counts for SLA and priority
    queued_at: datetime  # router time: entry into the current queue (max wait, relaxation)
    queue_id: str | None = None  # the current (or last) queue
    target_agent_id: str | None = None  # route "agent": the agent behind the dialled extension
    target_extension: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    did: str | None = None
    priority: int = 0
    queue_entry: int = 1
    caller_answered: bool = False
    holding: bool = False  # the holding bridge exists
    caller_bridge: str | None = None  # the bridge the caller is in
    legs: tuple[Leg, ...] = ()
    attempts: int = 0
    missed: tuple[str, ...] = ()  # agents that missed this call, skipped by the next reservation
    reserve_request: str | None = None
    reserve_count: int = 0
    reserve_level: int = 0
    reserve_deadline: datetime | None = None
    retry_at: datetime | None = None
    wakes: int = 0
    overflow_due: bool = False
    bridge_gen: int = 0
    mixing_bridge: str | None = None
    agent_id: str | None = None
    agent_channel: str | None = None
    answered_at: datetime | None = None  # PBX time of the first answer
    talking_since: datetime | None = None
    talk_s: float = 0.0
    hold_since: datetime | None = None
    hold_s: float = 0.0
    consult: Consult | None = None
    consults: int = 0
    commands: tuple[str, ...] = ()  # CMS command ids applied to this call: a command sent twice acts once

    def leg(self, channel_id: str) -> Leg | None:
        for leg in self.legs:
            if leg.channel_id == channel_id:
                return leg
        return None


@dataclass(frozen=True)
class Ended:
    at: datetime
    channels: tuple[str, ...]


@dataclass(frozen=True)
class DryMark:
    """A queue answered "no agent" at `level`: calls needing that level or more wait until `until`."""

    level: int
    until: datetime


@dataclass(frozen=True)
class RouterState:
    calls: dict[str, CallState] = field(default_factory=dict)
    # Every channel the router knows (callers, agent and consult legs, old legs) -> its call id.
    channels: dict[str, str] = field(default_factory=dict)
    # Ended calls, oldest first, kept tombstone_s so their late events are recognised.
    ended: dict[str, Ended] = field(default_factory=dict)
    # Reservations asked and not answered: request id -> call id.
    requests: dict[str, str] = field(default_factory=dict)
    dry: dict[str, DryMark] = field(default_factory=dict)


def due_deadlines(state: RouterState, now: datetime, config: RouterConfig) -> list[Deadline]:
    """The timers due at `now`, as inputs for `decide`; the service calls it on a periodic tick."""
    due: list[Deadline] = []
    for call in state.calls.values():
        if call.waiting_since + timedelta(seconds=config.max_call_age_s) <= now:
            due.append(Deadline(call.call_id, "stale", 1))
            continue  # it is ended whole; its other timers no longer matter
        for leg in call.legs:
            if leg.ring_deadline <= now:
                due.append(Deadline(call.call_id, "ring", leg.attempt))
        consult = call.consult
        if consult is not None:
            if consult.leg is not None and consult.answered_at is None and consult.leg.ring_deadline <= now:
                due.append(Deadline(call.call_id, "consult_ring", consult.number))
            if consult.request_id is not None and consult.reserve_deadline is not None \
                    and consult.reserve_deadline <= now:
                due.append(Deadline(call.call_id, "consult_reserve", consult.number))
        if call.reserve_request is not None and call.reserve_deadline is not None and call.reserve_deadline <= now:
            due.append(Deadline(call.call_id, "reserve", call.reserve_count))
        if call.phase != "waiting" or call.route != "queue":
            continue
        queue = config.queue(call.queue_id)
        if queue is not None and queue.max_wait_s is not None and not call.overflow_due \
                and call.queued_at + timedelta(seconds=queue.max_wait_s) <= now:
            due.append(Deadline(call.call_id, "max_wait", call.queue_entry))
        if call.retry_at is not None and call.retry_at <= now:
            due.append(Deadline(call.call_id, "retry", call.wakes))
    return due
