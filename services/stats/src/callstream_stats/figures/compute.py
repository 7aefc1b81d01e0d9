"""A board's snapshot at a given time, from the folded state. Pure: `now` is an argument.

The formulas are written out in docs/metrics.md; the names below follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from callstream_stats.board import AbandonPolicy, BoardSettings, BoardSnapshot, Now, Period, PeriodName
from callstream_stats.figures.counters import MINUTE_MS, Counters, from_ms, minute_of, to_ms, total
from callstream_stats.figures.fold import BUSY_STATES, IDLE_STATES, StatsState
from callstream_stats.figures.scopes import Board

PERIODS: tuple[PeriodName, ...] = ("today", "60m", "15m")
_ROLLING_MINUTES: dict[PeriodName, int] = {"60m": 60, "15m": 15}


@dataclass(frozen=True)
class Policy:
    """The tenant-wide parameters of the figures (the per-queue SL threshold comes from the configuration)."""

    short_abandon_s: int
    abandon_policy: AbandonPolicy
    time_zone: str


def today_start_ms(now_ms: int, time_zone: str) -> int:
    """The last local midnight at or before `now_ms`, in `time_zone` (DST days are 23 or 25 hours long)."""
    zone = ZoneInfo(time_zone)
    local = from_ms(now_ms).astimezone(zone)
    midnight = datetime.combine(local.date(), time(0), tzinfo=zone)
    # In a zone whose DST change skips midnight, 00:00 does not exist; with fold=0 it takes the offset before
    # the change, which is exactly the instant of the jump: the day starts there.
    return to_ms(midnight)


def window_starts(now_ms: int, time_zone: str) -> dict[PeriodName, int]:
    """Where each period starts. Rolling windows are whole minutes: the current one and the 14 (59) before."""
    starts: dict[PeriodName, int] = {"today": today_start_ms(now_ms, time_zone)}
    for name, minutes in _ROLLING_MINUTES.items():
        starts[name] = minute_of(now_ms) - (minutes - 1) * MINUTE_MS
    return starts


# Per board: the open (not yet closed) agent time inside each period, busy then idle, in PERIODS order.
OpenTime = dict[str, list[int]]


def open_agent_time(state: StatsState, now_ms: int, starts: dict[PeriodName, int],
                    scopes: set[str] | None = None) -> OpenTime:
    """Per board (all, or those in `scopes`): Σ over its agents in a busy or idle state of the time from
    max(since, period start) to now. One pass over the agents for all boards of a publish round: an agent
    counts on several boards, and this loop is the costliest part of a round (2,000 agents: a few ms)."""
    bounds = [starts[name] for name in PERIODS]
    width = len(bounds)
    totals: OpenTime = {}
    for agent in state.agents.values():
        if agent.state in BUSY_STATES:
            offset = 0
        elif agent.state in IDLE_STATES:
            offset = width
        else:
            continue
        since = agent.since_ms
        spans = [max(0, now_ms - (since if since > start else start)) for start in bounds]
        for scope in agent.scopes:
            if scopes is not None and scope not in scopes:
                continue
            sums = totals.get(scope)
            if sums is None:
                sums = totals[scope] = [0] * (2 * width)
            for i in range(width):
                sums[offset + i] += spans[i]
    return totals


def period_counters(state: StatsState, scope: str, name: PeriodName, start_ms: int) -> Counters:
    """Closed facts of a period: today from the 15-minute buckets, rolling windows from the minute buckets."""
    buckets = state.intervals if name == "today" else state.minutes
    return total(buckets.get(scope, {}), start_ms)


def sl_pct(c: Counters, policy: AbandonPolicy) -> float | None:
    """Service level: answered within T over the legs that count for it (short abandons never do)."""
    if policy == "exclude":
        denominator = c.answered + c.overflowed
    elif policy == "count_as_failed":
        denominator = c.answered + c.abandoned + c.overflowed
    else:  # exclude_within_threshold
        denominator = c.answered + (c.abandoned - c.abandoned_in_sl) + c.overflowed
    return _pct(c.answered_in_sl, denominator)


def period(c: Counters, policy: AbandonPolicy) -> Period:
    return Period(
        offered=c.offered,
        answered=c.answered,
        abandoned=c.abandoned,
        short_abandoned=c.short_abandoned,
        answered_in_sl=c.answered_in_sl,
        sl_pct=sl_pct(c, policy),
        abandon_pct=_pct(c.abandoned, c.offered - c.short_abandoned),
        asa_s=_avg_s(c.answer_wait_ms, c.answered),
        aht_s=_avg_s(c.handle_ms + c.wrapup_ms, c.handled),
        avg_wrapup_s=_avg_s(c.wrapup_ms, c.wrapups),
        occupancy_pct=_pct(c.busy_ms, c.busy_ms + c.idle_ms),
    )


def board_periods(state: StatsState, scope: str, policy: AbandonPolicy, starts: dict[PeriodName, int],
                  open_time: OpenTime) -> dict[PeriodName, Period]:
    sums = open_time.get(scope)
    result: dict[PeriodName, Period] = {}
    for i, name in enumerate(PERIODS):
        counters = period_counters(state, scope, name, starts[name])
        if sums is not None:
            counters.busy_ms += sums[i]
            counters.idle_ms += sums[len(PERIODS) + i]
        result[name] = period(counters, policy)
    return result


def board_now(state: StatsState, scope: str) -> Now:
    waiting = state.waiting.get(scope, {})
    oldest = min(waiting.values()) if waiting else None
    return Now(
        waiting=len(waiting),
        oldest_waiting_since=from_ms(oldest) if oldest is not None else None,
        agents={s: n for s, n in sorted(state.agent_states.get(scope, {}).items()) if n > 0},
        paused_reasons={r: n for r, n in sorted(state.paused_reasons.get(scope, {}).items()) if n > 0},
    )


def snapshot(state: StatsState, board: Board, *, tenant: str, policy: Policy, now_ms: int, seq: int,
             starts: dict[PeriodName, int] | None = None,
             open_time: OpenTime | None = None, oldest_event_ms: int | None = None) -> BoardSnapshot:
    """The board at `now_ms`. `starts` and `open_time` may be passed in when many boards are built at once."""
    starts = starts if starts is not None else window_starts(now_ms, policy.time_zone)
    open_time = open_time if open_time is not None else open_agent_time(state, now_ms, starts, {board.scope})
    last = state.last_event_ms.get(board.scope)
    return BoardSnapshot(
        tenant=tenant,
        scope=board.scope,
        kind=board.kind,
        title=board.title,
        seq=seq,
        updated_at=from_ms(now_ms),
        last_event_at=from_ms(last) if last is not None else None,
        oldest_event_at=from_ms(oldest_event_ms) if oldest_event_ms is not None else None,
        settings=BoardSettings(sl_threshold_s=board.sl_threshold_s, short_abandon_s=policy.short_abandon_s,
                               abandon_policy=policy.abandon_policy, time_zone=policy.time_zone),
        now=board_now(state, board.scope),
        periods=board_periods(state, board.scope, policy.abandon_policy, starts, open_time),
    )


def _pct(numerator: int, denominator: int) -> float | None:
    if denominator <= 0:
        return None
    return round(min(100.0, max(0.0, 100.0 * numerator / denominator)), 2)


def _avg_s(total_ms: int, count: int) -> float | None:
    if count <= 0:
        return None
    return round(max(0, total_ms) / count / 1000, 2)


__all__ = ["PERIODS", "OpenTime", "Policy", "board_now", "board_periods", "open_agent_time", "period",
           "period_counters", "sl_pct", "snapshot", "today_start_ms", "window_starts"]
