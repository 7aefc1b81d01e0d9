"""The decider's Redis intents run against the availability store (callstream_common.availability).

ReserveAgent -> `reserve` (one agent of a queue), `reserve_all` (ring-all) or `reserve_agent` (a named agent),
answered as a ReservationResult that the processor feeds back at once. The decider already relaxed the level
by the call's wait, so it is passed as min_level with relax_levels 0. ReleaseAgent -> `release`, a
compare-and-set on the call the agent holds, for reservations no call event announced (outputs.py).
"""

from __future__ import annotations

from datetime import datetime

from callstream_common import metrics
from callstream_common.availability import Availability, Reservation

from callstream_router.inputs import ReservationResult, ReservedAgent
from callstream_router.outputs import ReleaseAgent, ReserveAgent


async def reserve(store: Availability, pbx_id: str, intent: ReserveAgent, now: datetime) -> ReservationResult:
    taken: list[Reservation]
    if intent.agent_id is not None:
        kind = "agent"
        one = await store.reserve_agent(pbx_id, intent.agent_id, intent.call_id, now, request_id=intent.request_id)
        taken = [one] if one is not None else []
    elif intent.queue_id is None:
        kind, taken = "none", []
    elif intent.count == "all":
        kind = "ring_all"
        taken = await store.reserve_all(pbx_id, intent.queue_id, intent.call_id, now,
                                        required_skill=intent.skill, min_level=intent.min_level,
                                        relax_levels=0, exclude=intent.exclude,
                                        request_id=intent.request_id)
    else:
        kind = "queue"
        first = await store.reserve(pbx_id, intent.queue_id, intent.call_id, now, required_skill=intent.skill,
                                    min_level=intent.min_level, relax_levels=0, exclude=intent.exclude,
                                        request_id=intent.request_id)
        taken = [first] if first is not None else []
    metrics.ROUTER_RESERVATIONS.labels(kind, "taken" if taken else "none").inc()
    return ReservationResult(intent.request_id, intent.call_id,
                             tuple(ReservedAgent(r.agent_id, r.endpoint) for r in taken))


async def release(store: Availability, intent: ReleaseAgent, now: datetime) -> None:
    await store.release(intent.agent_id, intent.call_id, now=now)
