"""The raw counts behind every period figure, and the time buckets they are kept in.

Everything is an integer (durations in milliseconds): sums of integers do not depend on the order they were
added in, so a state folded from the topics in any interleaving of partitions has exactly the same counts as
the live one (restart correctness, docs/metrics.md). Averages and percentages are computed from these counts
only when a snapshot is built.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

MINUTE_MS = 60_000
# SQL interval rows, and the buckets "today" is summed from. Every time zone in use today is a whole number of
# quarter hours from UTC, so these boundaries are also local quarter hours and local midnight is one of them.
INTERVAL_MS = 15 * MINUTE_MS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def to_ms(at: datetime) -> int:
    """Milliseconds since the epoch, in exact integer arithmetic (no float rounding)."""
    return (at - _EPOCH) // _ONE_MS


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def minute_of(ms: int) -> int:
    return ms - ms % MINUTE_MS


def interval_of(ms: int) -> int:
    return ms - ms % INTERVAL_MS


@dataclass(slots=True)
class Counters:
    """What happened in one bucket (a minute or a 15-minute interval) of one board."""

    # Queue legs, by their outcome (counted at the outcome's time): offered = answered + abandoned +
    # short_abandoned + overflowed.
    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    answer_wait_ms: int = 0  # sum of the answered legs' waits (ASA)
    abandoned: int = 0  # not short: waited at least short_abandon_s
    abandoned_in_sl: int = 0  # the part of `abandoned` that gave up within the SL threshold
    short_abandoned: int = 0
    overflowed: int = 0  # left the board's queues unanswered: to voicemail, hung up, or to a queue elsewhere
    # Calls handled (answered, then ended), counted when they end; talk + hold of the whole call.
    handled: int = 0
    handle_ms: int = 0
    # Wrap-ups, counted when the agent leaves wrap-up.
    wrapups: int = 0
    wrapup_ms: int = 0
    # Agent time (occupancy): on_call and wrap_up are busy; available, reserved and ringing are idle.
    busy_ms: int = 0
    idle_ms: int = 0

    def add(self, other: Counters) -> None:
        for name in COUNTER_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTER_FIELDS}

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in COUNTER_FIELDS)


COUNTER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Counters))


def total(buckets: dict[int, Counters], since_ms: int) -> Counters:
    """The sum of the buckets that start at or after `since_ms`."""
    result = Counters()
    for start, counters in buckets.items():
        if start >= since_ms:
            result.add(counters)
    return result
