"""Skill relaxation and the order of waiting calls: the router's part of choosing.

Choosing *which agent* is Redis's job: the reserve script walks a queue's ready set, scored per strategy by
`callstream_common.availability.strategy_score` (longest-idle, fewest-calls, round-robin, linear, random),
so every router worker gets the same answer atomically. Choosing *when* to ask and *which call first* is
the router's: `waiting_order`, and `effective_level` for the level a call asks for after its wait.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from callstream_common.availability import skill_threshold
from callstream_router.config import QueueConfig


def effective_level(queue: QueueConfig, waited_s: float) -> int:
    """The skill level a call asks for after waiting `waited_s` in the queue: one less per relax_after_s,
    never below 1 (availability's `skill_threshold`: relaxation widens the levels, never drops the skill);
    0 when the queue requires no skill."""
    if queue.required_skill is None:
        return 0
    relax = queue.relax_after_s
    steps = int(max(0.0, waited_s) // relax) if relax is not None and relax > 0 else 0
    return skill_threshold(max(queue.min_skill_level, 0), steps)


def next_relaxation(queue: QueueConfig, queued_at: datetime, now: datetime) -> datetime | None:
    """When the call's required level drops next, or None if it cannot drop any more."""
    relax = queue.relax_after_s
    waited = (now - queued_at).total_seconds()
    if queue.required_skill is None or relax is None or relax <= 0 or effective_level(queue, waited) <= 1:
        return None
    steps = math.floor(max(0.0, waited) / relax) + 1
    return queued_at + timedelta(seconds=steps * relax)


def waiting_order(priority: int, waiting_since: datetime, call_id: str) -> tuple[int, datetime, str]:
    """Sort key of waiting calls: higher priority first, then the longest wait, then the id (a total order)."""
    return (-priority, waiting_since, call_id)
