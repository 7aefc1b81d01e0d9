"""The stats figures against hand-computed scenarios (docs/metrics.md): pure, no Kafka.

The main scenario, t0 = 2026-03-10 10:00:00 UTC, queues q1 (department d1, T = 20 s) and q2 (d2, T = 30 s),
short abandons under 5 s; agent a1 (floor 1) serves q1, a2 (floor 2) serves q2:

| call | queue | what (seconds after t0)                                           | counts for q1        |
|------|-------|-------------------------------------------------------------------|----------------------|
| c1   | q1    | queued 0, answered by a1 at 10 (wait 10), ended 70 (talk 55+hold 5)| answered in SL       |
| c2   | q1    | queued 20, abandoned 23 (3 s)                                     | short abandon        |
| c3   | q1    | queued 30, abandoned 45 (15 s)                                    | abandoned within T   |
| c4   | q1    | queued 40, abandoned 80 (40 s)                                    | abandoned after T    |
| c5   | q1    | queued 50, answered by a2 at 85 (35 s), ended 145 (talk 60)       | answered, not in SL  |
| c6   | q1→q2 | queued 60, overflowed to q2 at 120, answered by a2 at 150 (30 s in q2), | flowed out           |
|      |       | ended 200 (talk 50)                                               |                      |
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callstream_common.messages.agents import AgentState, AgentStateChanged
from callstream_common.messages.calls import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallTransferred,
)
from callstream_common.site.model import AgentConfig, Queue, SiteConfig, Tenant
from callstream_stats.board import AbandonPolicy, BoardSnapshot
from callstream_stats.figures.compute import Policy, snapshot, today_start_ms, window_starts
from callstream_stats.figures.counters import INTERVAL_MS, from_ms, to_ms
from callstream_stats.figures.fold import StatsState, fold_agent, fold_call, new_state
from callstream_stats.figures.scopes import build_scopes

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
_ids = itertools.count()


def at(seconds: float, base: datetime = T0) -> datetime:
    return base + timedelta(seconds=seconds)


def site(time_zone: str = "UTC") -> SiteConfig:
    return SiteConfig(
        tenant=Tenant(id="acme", name="Acme", timezone=time_zone),
        pbxs={},
        queues={
            "q1": Queue(id="q1", department="d1", sl_threshold_s=20, required_skill="s1"),
            "q2": Queue(id="q2", department="d2", sl_threshold_s=30, required_skill="s2"),
        },
        dids={},
        agents={
            "a1": AgentConfig(id="a1", name="A1", extension="1001", endpoint="pbx1-1001", pbx="pbx1", floor=1,
                              skills={"s1": 3}),
            "a2": AgentConfig(id="a2", name="A2", extension="1002", endpoint="pbx1-1002", pbx="pbx1", floor=2,
                              skills={"s2": 3}),
        },
    )


def fresh(time_zone: str = "UTC", short_abandon_s: int = 5) -> StatsState:
    return new_state(build_scopes(site(time_zone)), short_abandon_s)


# ---- event builders: (kind, body, message id) so that a test can replay the very same messages ------------------

Item = tuple[str, Any, str]


def queued(call: str, queue: str, t: float, waiting_since: float | None = None, base: datetime = T0) -> Item:
    since = at(waiting_since if waiting_since is not None else t, base)
    return ("call", CallQueued(call_id=call, at=at(t, base), queue_id=queue, channel_id=f"ch-{call}",
                               waiting_since=since), f"m{next(_ids)}")


def offered(call: str, queue: str, agent: str, t: float, base: datetime = T0) -> Item:
    return ("call", CallOffered(call_id=call, at=at(t, base), queue_id=queue, agent_id=agent,
                                agent_channel_id=f"leg-{call}", endpoint="PJSIP/x", attempt=1), f"m{next(_ids)}")


def answered(call: str, queue: str, agent: str, t: float, base: datetime = T0) -> Item:
    return ("call", CallAnswered(call_id=call, at=at(t, base), queue_id=queue, agent_id=agent, bridge_id=f"b-{call}",
                                 wait_s=0), f"m{next(_ids)}")


def abandoned(call: str, queue: str, t: float, base: datetime = T0) -> Item:
    return ("call", CallAbandoned(call_id=call, at=at(t, base), queue_id=queue, wait_s=0), f"m{next(_ids)}")


def overflowed(call: str, source: str, target: str | None, t: float, base: datetime = T0) -> Item:
    return ("call", CallOverflowed(call_id=call, at=at(t, base), from_queue_id=source, to_queue_id=target,
                                   action="queue" if target else "voicemail", wait_s=0), f"m{next(_ids)}")


def transferred(call: str, source: str, agent: str, target: str, t: float, base: datetime = T0) -> Item:
    return ("call", CallTransferred(call_id=call, at=at(t, base), kind="blind_queue", from_agent_id=agent,
                                    from_queue_id=source, to_queue_id=target), f"m{next(_ids)}")


def ended(call: str, queue: str | None, agent: str | None, t: float, talk: float = 0, hold: float = 0,
          base: datetime = T0) -> Item:
    outcome = "completed" if agent else "abandoned"
    return ("call", CallEnded(call_id=call, at=at(t, base), queue_id=queue, agent_id=agent, outcome=outcome,
                              hangup_by="caller", talk_s=talk, hold_s=hold), f"m{next(_ids)}")


def state(agent: str, new: AgentState, previous: AgentState, t: float, call: str | None = None,
          reason: str | None = None, base: datetime = T0) -> Item:
    return ("agent", AgentStateChanged(agent_id=agent, at=at(t, base), state=new, previous_state=previous,
                                       call_id=call, pause_reason=reason), f"m{next(_ids)}")


def fold(target: StatsState, items: list[Item]) -> StatsState:
    for kind, body, message_id in items:
        if kind == "call":
            assert isinstance(body, CallEvent)
            fold_call(target, body, message_id)
        else:
            fold_agent(target, body)
    return target


def board(target: StatsState, scope: str, now: datetime, policy: AbandonPolicy = "count_as_failed",
          time_zone: str = "UTC") -> BoardSnapshot:
    return snapshot(target, target.scopes.boards[scope], tenant="acme", policy=Policy(5, policy, time_zone),
                    now_ms=to_ms(now), seq=0)


A, R, RG, ON, WR, P, OUT = (AgentState.AVAILABLE, AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL,
                            AgentState.WRAP_UP, AgentState.PAUSED, AgentState.LOGGED_OUT)


def scenario() -> list[Item]:
    """The calls of the module docstring, then the agents' side, as `calls` and `agents` would hold them."""
    calls = [
        queued("c1", "q1", 0), offered("c1", "q1", "a1", 5), answered("c1", "q1", "a1", 10),
        ended("c1", "q1", "a1", 70, talk=55, hold=5),
        queued("c2", "q1", 20), abandoned("c2", "q1", 23), ended("c2", "q1", None, 23),
        queued("c3", "q1", 30), abandoned("c3", "q1", 45), ended("c3", "q1", None, 45),
        queued("c4", "q1", 40), abandoned("c4", "q1", 80), ended("c4", "q1", None, 80),
        queued("c5", "q1", 50), answered("c5", "q1", "a2", 85), ended("c5", "q1", "a2", 145, talk=60),
        queued("c6", "q1", 60), overflowed("c6", "q1", "q2", 120), queued("c6", "q2", 120, waiting_since=60),
        answered("c6", "q2", "a2", 150), ended("c6", "q2", "a2", 200, talk=50),
    ]
    agents = [
        state("a1", A, OUT, -60), state("a1", RG, A, 5, "c1"), state("a1", ON, RG, 10, "c1"),
        state("a1", WR, ON, 70, "c1"), state("a1", A, WR, 80),
        state("a2", A, OUT, -60), state("a2", ON, A, 85, "c5"), state("a2", WR, ON, 145, "c5"),
        state("a2", ON, WR, 150, "c6"), state("a2", WR, ON, 200, "c6"), state("a2", A, WR, 210),
    ]
    return calls + agents


# ---- the counts and the service level ------------------------------------------------------------------------------

def test_queue_counts_abandons_inside_and_outside_the_threshold_and_short_abandons() -> None:
    q1 = board(fold(fresh(), scenario()), "queue/q1", at(300)).periods["today"]
    assert (q1.offered, q1.answered, q1.answered_in_sl) == (6, 2, 1)
    assert (q1.abandoned, q1.short_abandoned) == (2, 1)
    assert q1.asa_s == 22.5  # (10 + 35) / 2
    assert q1.abandon_pct == 40.0  # 2 / (6 - 1 short)


@pytest.mark.parametrize(("policy", "expected"), [
    ("count_as_failed", 20.0),  # 1 / (2 answered + 2 abandoned + 1 flowed out)
    ("exclude", 33.33),  # 1 / (2 answered + 1 flowed out)
    ("exclude_within_threshold", 25.0),  # 1 / (2 answered + 1 abandoned after T + 1 flowed out)
])
def test_service_level_by_abandon_policy(policy: AbandonPolicy, expected: float) -> None:
    assert board(fold(fresh(), scenario()), "queue/q1", at(300), policy).periods["today"].sl_pct == expected


def test_overflow_counts_on_the_boards_the_call_leaves_and_once_on_those_it_stays_on() -> None:
    state_ = fold(fresh(), scenario())
    q2 = board(state_, "queue/q2", at(300)).periods["today"]
    assert (q2.offered, q2.answered, q2.answered_in_sl, q2.asa_s) == (1, 1, 1, 30.0)  # measured from q2's entry
    d1 = board(state_, "department/d1", at(300)).periods["today"]
    assert d1.offered == 6  # q2 is in another department: d1 counts the flow-out
    tenant = board(state_, "tenant/all", at(300)).periods["today"]
    # c6 counted once on the tenant, where it ended (answered in q2 within q2's threshold).
    assert (tenant.offered, tenant.answered, tenant.answered_in_sl, tenant.abandoned) == (6, 3, 2, 2)
    assert tenant.sl_pct == 40.0  # 2 / (3 + 2)


def test_handle_time_wrapup_and_occupancy() -> None:
    state_ = fold(fresh(), scenario())
    q1 = board(state_, "queue/q1", at(300)).periods["today"]
    # c1 60 s + c5 60 s handled on q1; wrap-ups a1 10 s (c1), a2 5 s (c5) joined to q1 through the answer.
    assert q1.aht_s == 67.5 and q1.avg_wrapup_s == 7.5
    tenant = board(state_, "tenant/all", at(300)).periods["today"]
    assert tenant.aht_s == 65.0  # (60 + 60 + 50 + 10 + 5 + 10) / 3
    assert tenant.avg_wrapup_s == 8.33
    # a1: busy 70 (on_call 60, wrap-up 10), idle 65 + 5 + 220 (open); a2: busy 125, idle 145 + 90 (open).
    assert tenant.occupancy_pct == round(100 * 195 / 720, 2)
    floor1 = board(state_, "floor/1", at(300)).periods["today"]
    assert floor1.occupancy_pct == round(100 * 70 / 360, 2)
    assert (floor1.offered, floor1.answered, floor1.abandoned) == (1, 1, 0)  # a floor sees what it answered
    assert board(state_, "queue/q2", at(300)).periods["today"].occupancy_pct == round(100 * 125 / 360, 2)


def test_now_waiting_and_agents_by_state() -> None:
    state_ = fold(fresh(), [item for item in scenario() if item[1].at <= at(100)])
    q1 = board(state_, "queue/q1", at(100)).now
    assert q1.waiting == 1 and q1.oldest_waiting_since == at(60)  # c6
    tenant = board(state_, "tenant/all", at(100)).now
    assert tenant.agents == {"available": 1, "on_call": 1}
    fold(state_, [state("a1", P, A, 101, reason="lunch")])
    tenant = board(state_, "tenant/all", at(102)).now
    assert tenant.agents == {"on_call": 1, "paused": 1} and tenant.paused_reasons == {"lunch": 1}
    assert board(state_, "queue/q2", at(102)).now.agents == {"on_call": 1}  # a2 only serves q2


def test_each_board_keeps_the_oldest_event_folded_in_since_its_last_snapshot() -> None:
    """A late event older than the board's newest (agent-state lagging behind the router) still counts from
    its own time: the snapshot's oldest_event_at, the base of the latency measures."""
    state_ = fresh()
    fold(state_, [queued("c1", "q1", 10), state("a1", A, OUT, 4)])  # the agent's event arrives late
    assert state_.pending_oldest_ms["tenant/all"] == to_ms(at(4))
    assert state_.last_event_ms["tenant/all"] == to_ms(at(10))
    # The publisher takes the pending oldest with the snapshot; the next events start a new span.
    oldest = state_.pending_oldest_ms.pop("tenant/all")
    snap = snapshot(state_, state_.scopes.boards["tenant/all"], tenant="acme", policy=Policy(5, "exclude", "UTC"),
                    now_ms=to_ms(at(11)), seq=1, oldest_event_ms=oldest)
    assert snap.oldest_event_at == at(4) and snap.last_event_at == at(10)
    fold(state_, [answered("c1", "q1", "a1", 12)])
    assert state_.pending_oldest_ms["tenant/all"] == to_ms(at(12))


def test_empty_figures_are_null_not_zero() -> None:
    today = board(fresh(), "tenant/all", at(0)).periods["today"]
    assert today.offered == 0
    assert (today.sl_pct, today.abandon_pct, today.asa_s, today.aht_s, today.occupancy_pct) == (None,) * 5


def test_blind_transfer_to_a_queue_is_a_new_leg_and_the_call_is_handled_once() -> None:
    items = [
        queued("c1", "q1", 0), answered("c1", "q1", "a1", 5),
        transferred("c1", "q1", "a1", "q2", 65), queued("c1", "q2", 65, waiting_since=0),
        answered("c1", "q2", "a2", 75), ended("c1", "q2", "a2", 135, talk=120),
        state("a1", ON, A, 5, "c1"), state("a1", WR, ON, 65, "c1"), state("a1", A, WR, 71),
        state("a2", ON, A, 75, "c1"), state("a2", WR, ON, 135, "c1"), state("a2", A, WR, 145),
    ]
    state_ = fold(fresh(), items)
    q1 = board(state_, "queue/q1", at(300)).periods["today"]
    q2 = board(state_, "queue/q2", at(300)).periods["today"]
    assert (q1.offered, q1.answered, q1.asa_s) == (1, 1, 5.0)
    assert (q2.offered, q2.answered, q2.asa_s) == (1, 1, 10.0)  # wait measured from entering q2, not waiting_since
    assert q1.aht_s is None and q1.avg_wrapup_s == 6.0  # the call ended in q2; a1's wrap-up is q1's
    assert q2.aht_s == 130.0  # 120 talk + a2's 10 s wrap-up
    tenant = board(state_, "tenant/all", at(300)).periods["today"]
    assert (tenant.offered, tenant.answered) == (2, 2)  # one per queue it was offered to
    assert tenant.aht_s == 136.0  # (120 + 6 + 10) / 1 handled


# ---- time: interval boundaries, rolling windows, today in the tenant's zone ----------------------------------------

def test_a_call_spanning_a_15_minute_boundary_counts_in_the_interval_of_its_outcome() -> None:
    base = datetime(2026, 3, 10, 10, 14, 50, tzinfo=UTC)
    state_ = fold(fresh(), [
        queued("c1", "q1", 0, base=base), answered("c1", "q1", "a1", 20, base=base),
        state("a1", A, OUT, -20, base=base), state("a1", ON, A, 20, "c1", base=base),
        state("a1", A, ON, 60, base=base),  # on_call 10:15:10 .. 10:15:50
    ])
    rows = state_.intervals["queue/q1"]
    first, second = to_ms(datetime(2026, 3, 10, 10, 0, tzinfo=UTC)), to_ms(datetime(2026, 3, 10, 10, 15, tzinfo=UTC))
    assert second - first == INTERVAL_MS
    assert rows[second].answered == 1 and rows[second].answer_wait_ms == 20_000
    # The agent's idle time is split at the boundary: 10:14:30 .. 10:15:00 and 10:15:00 .. 10:15:10.
    assert rows[first].answered == 0 and rows[first].idle_ms == 30_000
    assert rows[second].idle_ms == 10_000 and rows[second].busy_ms == 40_000


def test_rolling_windows_are_whole_minutes() -> None:
    state_ = fold(fresh(), [queued("c1", "q1", 0), answered("c1", "q1", "a1", 10)])  # answered 10:00:10
    at_1014 = board(state_, "queue/q1", datetime(2026, 3, 10, 10, 14, 59, tzinfo=UTC)).periods
    assert at_1014["15m"].answered == 1 and at_1014["60m"].answered == 1
    at_1015 = board(state_, "queue/q1", datetime(2026, 3, 10, 10, 15, 0, tzinfo=UTC)).periods
    assert at_1015["15m"].answered == 0 and at_1015["60m"].answered == 1 and at_1015["today"].answered == 1
    assert board(state_, "queue/q1", datetime(2026, 3, 10, 11, 0, tzinfo=UTC)).periods["60m"].answered == 0


def test_open_agent_time_is_clipped_to_each_window() -> None:
    state_ = fold(fresh(), [state("a1", A, OUT, 0), state("a1", ON, A, 600, "c9")])  # idle 10:00-10:10, busy on
    periods = board(state_, "floor/1", datetime(2026, 3, 10, 10, 20, tzinfo=UTC)).periods
    # 15m window = 10:06 .. 10:20: idle 4 min, busy 10 min.
    assert periods["15m"].occupancy_pct == round(100 * 10 / 14, 2)
    assert periods["today"].occupancy_pct == 50.0  # 10 min idle, 10 min busy


def test_today_starts_at_the_tenants_midnight() -> None:
    zone = "America/New_York"  # EDT (UTC-4) since 2026-03-08
    now = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)  # 23:30 on March 9 in New York
    assert from_ms(today_start_ms(to_ms(now), zone)) == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)
    # The day DST started was 23 hours long: its midnight was still EST (UTC-5).
    assert from_ms(today_start_ms(to_ms(datetime(2026, 3, 8, 12, tzinfo=UTC)), zone)) == \
        datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    state_ = fold(fresh(zone), [
        queued("c1", "q1", 0, base=datetime(2026, 3, 9, 3, 59, tzinfo=UTC)),  # 23:59 on March 8, local
        answered("c1", "q1", "a1", 5, base=datetime(2026, 3, 9, 3, 59, tzinfo=UTC)),
        queued("c2", "q1", 0, base=datetime(2026, 3, 9, 4, 10, tzinfo=UTC)),  # 00:10 on March 9, local
        answered("c2", "q1", "a1", 5, base=datetime(2026, 3, 9, 4, 10, tzinfo=UTC)),
    ])
    assert board(state_, "queue/q1", now, time_zone=zone).periods["today"].answered == 1
    # In UTC it is already March 10, and both answers were on March 9.
    assert board(state_, "queue/q1", now, time_zone="UTC").periods["today"].answered == 0
    assert window_starts(to_ms(now), zone)["15m"] == to_ms(datetime(2026, 3, 10, 3, 16, tzinfo=UTC))


# ---- redelivery ----------------------------------------------------------------------------------------------------

def test_redelivered_events_change_nothing() -> None:
    items = scenario()
    once = fold(fresh(), items)
    # At-least-once upstream: a batch seen again after a crash, in the same order, after later events.
    twice = fold(fold(fresh(), items), items[:10] + items[-5:])
    for scope in once.scopes.boards:
        assert _figures(board(once, scope, at(300))) == _figures(board(twice, scope, at(300)))


def _figures(snap: BoardSnapshot) -> dict[str, Any]:
    return snap.model_dump(include={"now", "periods", "last_event_at"})
