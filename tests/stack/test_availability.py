"""The availability store (libs/common availability.py) against the real Redis of the local stack."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from callstream_common.availability import (
    Availability,
    QueueRule,
    Reservation,
    Strategy,
)
from callstream_common.messages.agents import AgentState
from callstream_common.redis_store import agent_key, call_agents_key, pbx_agents_key, ready_key, tenant_pattern
from callstream_common.settings import ServiceSettings

from conftest import Stack

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PBX, OTHER_PBX, QUEUE = "pbx1", "pbx2", "sales"
LOGGED_OUT = {AgentState.LOGGED_OUT}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def store(settings: ServiceSettings, redis_client: aioredis.Redis) -> AsyncIterator[Availability]:
    yield Availability(redis_client, settings.tenant, rng=random.Random(7))
    leftovers = [k async for k in redis_client.scan_iter(match=tenant_pattern(settings.tenant))]
    if leftovers:
        await redis_client.delete(*leftovers)


async def add_agent(
    store: Availability, agent_id: str, *, available_at: float | None = 0.0, pbx: str = PBX,
    queues: Mapping[str, QueueRule] | None = None, skills: Mapping[str, int] | None = None,
) -> None:
    """Configure an agent and, unless `available_at` is None, make it available at that second."""
    await store.upsert_agent(agent_id, pbx, f"PJSIP/{agent_id}", skills or {},
                             queues if queues is not None else {QUEUE: QueueRule(Strategy.LONGEST_IDLE)}, now=T0)
    if available_at is not None:
        assert (await store.make_available(agent_id, at(available_at), LOGGED_OUT)).applied


async def drain(store: Availability, queue: str = QUEUE, pbx: str = PBX) -> list[str]:
    """Reserve agents of the queue one call at a time until none is left; their ids in reservation order."""
    order: list[str] = []
    for n in range(100):
        taken = await store.reserve(pbx, queue, f"drain-{n}", at(1000))
        if taken is None:
            return order
        order.append(taken.agent_id)
    raise AssertionError("the queue never ran dry")


async def take_call(store: Availability, agent_id: str, call_id: str, when: datetime) -> None:
    """An available agent answers a call and goes back to available: one more call answered that day."""
    assert (await store.set_state(agent_id, AgentState.ON_CALL, now=when, call_id=call_id,
                                  expected_states={AgentState.AVAILABLE})).applied
    assert (await store.release(agent_id, call_id, now=when)).applied


# Order by strategy ---------------------------------------------------------------------------------------------

async def test_longest_idle_offers_the_agent_available_longest_and_ties_go_by_id(store: Availability) -> None:
    for agent_id, second in [("carol", 3), ("alice", 5), ("bob", 1), ("dave", 3)]:
        await add_agent(store, agent_id, available_at=second)
    assert await drain(store) == ["bob", "carol", "dave", "alice"]


async def test_fewest_calls_counts_answered_calls_of_the_day_only(store: Availability) -> None:
    rule = {QUEUE: QueueRule(Strategy.FEWEST_CALLS)}
    for agent_id in ["ann", "ben", "cid", "dee"]:
        await add_agent(store, agent_id, queues=rule)
    for n in range(3):  # yesterday's calls do not count once she becomes available today
        await take_call(store, "ann", f"y{n}", T0 - timedelta(days=1))
    assert (await store.set_state("ann", AgentState.PAUSED, now=at(0),
                                  expected_states={AgentState.AVAILABLE})).applied
    assert (await store.make_available("ann", at(1), {AgentState.PAUSED})).applied
    for agent_id, calls in [("ben", 2), ("cid", 1), ("dee", 3)]:
        for n in range(calls):
            await take_call(store, agent_id, f"{agent_id}{n}", at(10 + n))
    assert [(a.agent_id, a.calls_today) for a in await store.snapshot(PBX)] == [
        ("ann", 3), ("ben", 2), ("cid", 1), ("dee", 3)]
    assert await drain(store) == ["ann", "cid", "ben", "dee"]


async def test_round_robin_offers_the_agent_offered_longest_ago_and_never_offered_first(
    store: Availability,
) -> None:
    rule = {QUEUE: QueueRule(Strategy.ROUND_ROBIN)}
    for agent_id in ["a1", "a2", "a3"]:
        await add_agent(store, agent_id, queues=rule)
    for agent_id, second in [("a1", 10), ("a2", 20)]:  # offered and missed: back to available
        taken = await store.reserve(PBX, QUEUE, f"call-{second}", at(second))
        assert taken is not None and taken.agent_id == agent_id  # never offered, ties by id
        assert (await store.release(agent_id, f"call-{second}", now=at(second + 1))).applied
    await add_agent(store, "a0", queues=rule, available_at=50)
    assert await drain(store) == ["a0", "a3", "a1", "a2"]


async def test_linear_follows_the_configured_position(store: Availability) -> None:
    for agent_id, position, second in [("x", 3, 1), ("y", 1, 2), ("z", 2, 3)]:
        await add_agent(store, agent_id, available_at=second,
                        queues={QUEUE: QueueRule(Strategy.LINEAR, position=position)})
    assert await drain(store) == ["y", "z", "x"]


async def test_random_follows_the_draw_made_when_the_agent_became_available(
    settings: ServiceSettings, redis_client: aioredis.Redis, store: Availability,
) -> None:
    seeded = Availability(redis_client, settings.tenant, rng=random.Random(2024))
    reference = random.Random(2024)
    agents = [f"r{n:02d}" for n in range(12)]
    draws = {}
    for agent_id in agents:
        await add_agent(seeded, agent_id, available_at=None, queues={QUEUE: QueueRule(Strategy.RANDOM)})
    for agent_id in agents:
        assert (await seeded.make_available(agent_id, at(1), LOGGED_OUT)).applied
        draws[agent_id] = reference.random()
    expected = sorted(agents, key=lambda a: draws[a])
    assert expected != agents  # the draws do reorder them, so the check below can fail
    assert await drain(seeded) == expected


async def test_skills_based_offers_the_highest_level_first(store: Availability) -> None:
    rule = {QUEUE: QueueRule(Strategy.SKILLS_BASED, skill="fr")}
    for agent_id, skills, second in [("lo", {"fr": 2}, 1), ("hi-late", {"fr": 5}, 3), ("hi-early", {"fr": 5}, 2),
                                     ("mid", {"fr": 3, "de": 5}, 0)]:
        await add_agent(store, agent_id, available_at=second, skills=skills, queues=rule)
    assert await drain(store) == ["hi-early", "hi-late", "mid", "lo"]


async def test_each_queue_orders_the_same_agents_by_its_own_strategy(store: Availability) -> None:
    queues = {"idle": QueueRule(Strategy.LONGEST_IDLE), "lin": QueueRule(Strategy.LINEAR)}
    await add_agent(store, "early", available_at=1, queues={**queues, "lin": QueueRule(Strategy.LINEAR, 9)})
    await add_agent(store, "late", available_at=2, queues={**queues, "lin": QueueRule(Strategy.LINEAR, 1)})
    first = await store.reserve(PBX, "lin", "c1", at(5))
    assert first is not None and first.agent_id == "late"
    # Reserved through one queue, it left the other's ready set too.
    assert await drain(store, queue="idle") == ["early"]


# Eligibility ------------------------------------------------------------------------------------------------

async def test_skill_threshold_and_relaxation(store: Availability) -> None:
    for agent_id, skills, second in [
        ("none", {}, 1), ("lvl1", {"fr": 1}, 2), ("lvl3", {"fr": 3, "de": 5}, 3), ("lvl5", {"fr": 5}, 4),
    ]:
        await add_agent(store, agent_id, available_at=second, skills=skills)
    strict = await store.reserve(PBX, QUEUE, "c1", at(9), required_skill="fr", min_level=4)
    assert strict is not None and strict.agent_id == "lvl5"
    assert await store.reserve(PBX, QUEUE, "c2", at(9), required_skill="fr", min_level=4) is None
    # Waiting longer relaxes the level: 4 - 1 = 3.
    relaxed = await store.reserve(PBX, QUEUE, "c2", at(9), required_skill="fr", min_level=4, relax_levels=1)
    assert relaxed is not None and relaxed.agent_id == "lvl3"
    # However relaxed, an agent without the skill is not taken for it.
    fully = await store.reserve(PBX, QUEUE, "c3", at(9), required_skill="fr", min_level=4, relax_levels=9)
    assert fully is not None and fully.agent_id == "lvl1"
    assert await store.reserve(PBX, QUEUE, "c4", at(9), required_skill="fr", min_level=4,
                               relax_levels=9) is None
    # The ineligible agent stayed in the ready set and is taken by a call without a skill rule.
    anyone = await store.reserve(PBX, QUEUE, "c4", at(9))
    assert anyone is not None and anyone.agent_id == "none"


async def test_paused_reserved_ringing_and_other_pbx_agents_are_never_picked(store: Availability) -> None:
    await add_agent(store, "paused", available_at=1)
    await add_agent(store, "busy", available_at=2)
    await add_agent(store, "ringing", available_at=3)
    await add_agent(store, "elsewhere", available_at=4, pbx=OTHER_PBX)
    await add_agent(store, "free", available_at=50)
    assert (await store.set_state("paused", AgentState.PAUSED, now=at(5), reason="lunch",
                                  expected_states={AgentState.AVAILABLE})).applied
    busy = await store.reserve(PBX, QUEUE, "call-busy", at(6))
    assert busy is not None and busy.agent_id == "busy"
    ringing = await store.reserve(PBX, QUEUE, "call-ringing", at(6))
    assert ringing is not None and ringing.agent_id == "ringing"
    assert (await store.set_state("ringing", AgentState.RINGING, now=at(7), expected_call_id="call-ringing",
                                  expected_states={AgentState.RESERVED})).applied
    taken = await store.reserve(PBX, QUEUE, "c1", at(8))
    assert taken == Reservation("free", "PJSIP/free", already_held=False)
    assert await store.reserve(PBX, QUEUE, "c2", at(8)) is None
    other = await store.reserve(OTHER_PBX, QUEUE, "c2", at(8))
    assert other is not None and other.agent_id == "elsewhere"


async def test_the_hash_is_the_truth_and_a_stale_ready_member_is_dropped(
    settings: ServiceSettings, redis_client: aioredis.Redis, store: Availability,
) -> None:
    # Planted in pbx1's ready set below: logged out; available but on pbx2; no hash at all.
    await add_agent(store, "ghost", available_at=None)
    await add_agent(store, "moved", available_at=1, pbx=OTHER_PBX)
    await add_agent(store, "real", available_at=5)
    ready = ready_key(settings.tenant, PBX, QUEUE)
    await redis_client.zadd(ready, {"ghost": 0, "moved": 1, "gone": 2})
    taken = await store.reserve(PBX, QUEUE, "c1", at(9))
    assert taken is not None and taken.agent_id == "real"
    assert await redis_client.zcard(ready) == 0
    moved = await store.get("moved")
    assert moved is not None and (moved.state, moved.ready_in) == (AgentState.AVAILABLE, frozenset({QUEUE}))
    ghost = await store.get("ghost")
    assert ghost is not None and ghost.state == AgentState.LOGGED_OUT


async def test_ring_all_takes_a_member_its_hash_does_not_list_once_and_ends(
    settings: ServiceSettings, redis_client: aioredis.Redis, store: Availability,
) -> None:
    await add_agent(store, "listed", available_at=2)
    await add_agent(store, "unlisted", available_at=None, queues={"other": QueueRule(Strategy.LONGEST_IDLE)})
    assert (await store.make_available("unlisted", at(1), LOGGED_OUT)).applied
    ready = ready_key(settings.tenant, PBX, QUEUE)
    await redis_client.zadd(ready, {"unlisted": 0})  # in the set although its hash lists no such queue
    rang = await store.reserve_all(PBX, QUEUE, "c1", at(5))
    assert [r.agent_id for r in rang] == ["unlisted", "listed"]
    assert await redis_client.zcard(ready) == 0


# Compare-and-set ---------------------------------------------------------------------------------------------

async def test_release_applies_only_for_the_call_the_agent_holds(store: Availability) -> None:
    await add_agent(store, "amy", available_at=1)
    assert (await store.reserve(PBX, QUEUE, "call-1", at(2))) is not None
    wrong = await store.release("amy", "call-0", now=at(3))
    assert (wrong.applied, wrong.previous, wrong.previous_call_id) == (False, AgentState.RESERVED, "call-1")
    amy = await store.get("amy")
    assert amy is not None and (amy.state, amy.call_id, amy.ready_in) == (AgentState.RESERVED, "call-1", frozenset())
    missed = await store.release("amy", "call-1", AgentState.PAUSED, now=at(4), reason="missed")
    assert (missed.applied, missed.previous) == (True, AgentState.RESERVED)
    # A replay of the same release finds no call-1 any more and changes nothing.
    assert not (await store.release("amy", "call-1", now=at(5))).applied
    amy = await store.get("amy")
    assert amy is not None and (amy.state, amy.reason, amy.call_id) == (AgentState.PAUSED, "missed", None)


async def test_a_late_release_does_not_touch_the_agents_next_call(store: Availability) -> None:
    await add_agent(store, "bo", available_at=1)
    assert await store.reserve(PBX, QUEUE, "call-1", at(2)) is not None
    assert (await store.release("bo", "call-1", now=at(3))).applied
    assert await store.reserve(PBX, QUEUE, "call-2", at(4)) is not None
    assert (await store.set_state("bo", AgentState.RINGING, now=at(5), expected_states={AgentState.RESERVED},
                                  expected_call_id="call-2")).applied
    late = await store.release("bo", "call-1", now=at(6))  # e.g. a redelivered missed-call input
    assert (late.applied, late.previous, late.previous_call_id) == (False, AgentState.RINGING, "call-2")
    bo = await store.get("bo")
    assert bo is not None and (bo.state, bo.call_id) == (AgentState.RINGING, "call-2")


async def test_set_state_is_a_compare_and_set_on_the_state(store: Availability) -> None:
    await add_agent(store, "cy", available_at=None)
    refused = await store.set_state("cy", AgentState.PAUSED, now=at(1), reason="break",
                                    expected_states={AgentState.AVAILABLE})
    assert (refused.applied, refused.previous) == (False, AgentState.LOGGED_OUT)
    assert (await store.make_available("cy", at(2), LOGGED_OUT)).applied
    assert not (await store.make_available("cy", at(3), LOGGED_OUT)).applied  # a replayed login
    cy = await store.get("cy")
    assert cy is not None and (cy.state, cy.since, cy.ready_in) == (AgentState.AVAILABLE, at(2), frozenset({QUEUE}))
    unknown = await store.set_state("nobody", AgentState.PAUSED, now=at(4), expected_states=LOGGED_OUT)
    assert unknown == (await store.make_available("nobody", at(4), LOGGED_OUT))
    assert (unknown.applied, unknown.previous) == (False, None)
    with pytest.raises(ValueError, match="reserve"):
        await store.set_state("cy", AgentState.RESERVED, now=at(5), call_id="c",
                              expected_states={AgentState.AVAILABLE})
    with pytest.raises(ValueError, match="needs the call"):
        await store.set_state("cy", AgentState.RINGING, now=at(5), expected_states={AgentState.AVAILABLE})
    with pytest.raises(ValueError, match="carries no call"):
        await store.set_state("cy", AgentState.PAUSED, now=at(5), call_id="c", expected_states={AgentState.AVAILABLE})


async def test_call_states_keep_the_call_and_on_call_is_counted_once(store: Availability) -> None:
    await add_agent(store, "dan", available_at=1)
    assert await store.reserve(PBX, QUEUE, "c1", at(2)) is not None
    for state, expected in [(AgentState.RINGING, AgentState.RESERVED), (AgentState.ON_CALL, AgentState.RINGING),
                            (AgentState.WRAP_UP, AgentState.ON_CALL)]:
        assert (await store.set_state("dan", state, now=at(3), expected_states={expected},
                                      expected_call_id="c1")).applied
    dan = await store.get("dan")
    assert dan is not None
    assert (dan.state, dan.call_id, dan.reserved_at, dan.calls_today) == (AgentState.WRAP_UP, "c1", at(2), 1)
    assert (await store.make_available("dan", at(9), {AgentState.WRAP_UP})).applied
    dan = await store.get("dan")
    assert dan is not None and (dan.call_id, dan.reserved_at, dan.last_offered) == (None, None, at(2))


# Concurrency -------------------------------------------------------------------------------------------------

async def test_concurrent_reservations_never_share_an_agent(store: Availability, settings: ServiceSettings,
                                                            stack: Stack) -> None:
    agents = [f"ag{n:02d}" for n in range(20)]
    for n, agent_id in enumerate(agents):
        await add_agent(store, agent_id, available_at=n)
    # Five routers, each with its own connections, and 50 calls arriving at once.
    clients = [aioredis.Redis.from_url(stack.redis_url) for _ in range(5)]
    try:
        routers = [Availability(client, settings.tenant) for client in clients]
        results = await asyncio.gather(*(
            routers[n % len(routers)].reserve(PBX, QUEUE, f"call-{n:02d}", at(100)) for n in range(50)
        ))
    finally:
        for client in clients:
            await client.aclose()
    won = {f"call-{n:02d}": r.agent_id for n, r in enumerate(results) if r is not None}
    assert len(won) == 20
    assert sorted(won.values()) == agents
    assert sum(r is None for r in results) == 30
    held = {a.agent_id: a.call_id for a in await store.snapshot(PBX)}
    assert held == {agent_id: call_id for call_id, agent_id in won.items()}


async def test_concurrent_ring_all_and_single_reservations_never_share_an_agent(
    store: Availability, settings: ServiceSettings, stack: Stack,
) -> None:
    for n in range(30):
        await add_agent(store, f"ag{n:02d}", available_at=n)
    clients = [aioredis.Redis.from_url(stack.redis_url) for _ in range(4)]
    try:
        routers = [Availability(client, settings.tenant) for client in clients]
        singles = [routers[n % 4].reserve(PBX, QUEUE, f"one-{n}", at(100)) for n in range(20)]
        alls = [routers[n % 4].reserve_all(PBX, QUEUE, f"all-{n}", at(100), limit=4) for n in range(5)]
        results = await asyncio.gather(*singles, *alls)
    finally:
        for client in clients:
            await client.aclose()
    taken: list[str] = []
    for result in results:
        if isinstance(result, Reservation):
            taken.append(result.agent_id)
        elif isinstance(result, list):
            assert len(result) <= 4
            taken.extend(r.agent_id for r in result)
    assert len(taken) == 30 and len(set(taken)) == 30


# Ring-all, replays, logout -----------------------------------------------------------------------------------

async def test_ring_all_reserves_every_eligible_agent_and_the_losers_are_released(store: Availability) -> None:
    for agent_id, skills, second in [("r1", {"fr": 2}, 3), ("r2", {"fr": 4}, 1), ("r3", {}, 2),
                                     ("r4", {"fr": 5}, 4)]:
        await add_agent(store, agent_id, available_at=second, skills=skills)
    await add_agent(store, "r5", available_at=0, pbx=OTHER_PBX, skills={"fr": 5})
    rang = await store.reserve_all(PBX, QUEUE, "c1", at(9), required_skill="fr", min_level=2)
    assert [r.agent_id for r in rang] == ["r2", "r1", "r4"] and not any(r.already_held for r in rang)
    replay = await store.reserve_all(PBX, QUEUE, "c1", at(9), required_skill="fr", min_level=2)
    assert {r.agent_id for r in replay} == {"r1", "r2", "r4"} and all(r.already_held for r in replay)
    # r4 answers; the router releases the others.
    assert (await store.set_state("r4", AgentState.ON_CALL, now=at(10), expected_call_id="c1",
                                  expected_states={AgentState.RESERVED, AgentState.RINGING})).applied
    for loser in ["r1", "r2"]:
        assert (await store.release(loser, "c1", now=at(10))).applied
    states = {a.agent_id: a.state for a in await store.snapshot(PBX)}
    assert states == {"r1": AgentState.AVAILABLE, "r2": AgentState.AVAILABLE, "r3": AgentState.AVAILABLE,
                      "r4": AgentState.ON_CALL}
    assert await store.reserve_all(PBX, QUEUE, "c2", at(11), required_skill="fr", min_level=5) == []


async def test_a_replayed_reservation_returns_the_agent_the_call_holds(
    settings: ServiceSettings, redis_client: aioredis.Redis, store: Availability,
) -> None:
    await add_agent(store, "first", available_at=1)
    await add_agent(store, "second", available_at=2)
    taken = await store.reserve(PBX, QUEUE, "c1", at(5))
    assert taken == Reservation("first", "PJSIP/first", already_held=False)
    assert await store.reserve(PBX, QUEUE, "c1", at(6)) == Reservation("first", "PJSIP/first", already_held=True)
    assert await redis_client.hget(call_agents_key(settings.tenant), "c1") == b"first"
    # Missed: released, and the next reservation of the same call gets the next agent.
    assert (await store.release("first", "c1", now=at(7))).applied
    assert await redis_client.hget(call_agents_key(settings.tenant), "c1") is None
    nxt = await store.reserve(PBX, QUEUE, "c1", at(8))
    assert nxt == Reservation("second", "PJSIP/second", already_held=False)


async def test_the_next_attempt_of_a_call_never_gets_back_the_agent_still_ringing_for_it(
    settings: ServiceSettings, redis_client: aioredis.Redis, store: Availability,
) -> None:
    """The router's second request of a call (after a miss) is no replay of the first: the agent that missed
    stays ringing for the call until agent-state releases it, and must not be offered the call again."""
    await add_agent(store, "first", available_at=1)
    await add_agent(store, "second", available_at=2)
    assert await store.reserve(PBX, QUEUE, "c1", at(5), request_id="rq:c1:1") == Reservation(
        "first", "PJSIP/first", already_held=False)
    assert (await store.set_state("first", AgentState.RINGING, now=at(5), call_id="c1",
                                  expected_states={AgentState.RESERVED}, expected_call_id="c1")).applied
    # The same request again (the router re-processing after a crash): the same agent, ringing or not.
    again = await store.reserve(PBX, QUEUE, "c1", at(6), request_id="rq:c1:1")
    assert again == Reservation("first", "PJSIP/first", already_held=True)
    # The next attempt, before agent-state has released "first": another agent, never "first".
    nxt = await store.reserve(PBX, QUEUE, "c1", at(7), request_id="rq:c1:2")
    assert nxt == Reservation("second", "PJSIP/second", already_held=False)
    assert await store.reserve(PBX, QUEUE, "c1", at(8), request_id="rq:c1:3") is None
    assert await store.reserve_agent(PBX, "first", "c1", at(8), request_id="rq:c1:4") is None
    snapshot = {a.agent_id: (a.state, a.call_id) for a in await store.snapshot(PBX)}
    assert snapshot == {"first": (AgentState.RINGING, "c1"), "second": (AgentState.RESERVED, "c1")}


async def test_remove_on_logout_forgets_the_agent_everywhere(
    settings: ServiceSettings, redis_client: aioredis.Redis, store: Availability,
) -> None:
    await add_agent(store, "leaver", available_at=1, queues={QUEUE: QueueRule(Strategy.LONGEST_IDLE),
                                                             "support": QueueRule(Strategy.LINEAR)})
    await add_agent(store, "stayer", available_at=2)
    refused = await store.remove("leaver", expected_states={AgentState.PAUSED})
    assert (refused.applied, refused.previous) == (False, AgentState.AVAILABLE)
    assert (await store.remove("leaver")).applied
    assert not (await store.remove("leaver")).applied
    assert await store.get("leaver") is None
    assert [a.agent_id for a in await store.snapshot(PBX)] == ["stayer"]
    assert await redis_client.exists(agent_key(settings.tenant, "leaver")) == 0
    assert await redis_client.exists(ready_key(settings.tenant, PBX, "support")) == 0
    assert await drain(store) == ["stayer"]


async def test_remove_during_a_call_clears_the_call_index(
    settings: ServiceSettings, redis_client: aioredis.Redis, store: Availability,
) -> None:
    await add_agent(store, "eve", available_at=1)
    assert await store.reserve(PBX, QUEUE, "c1", at(2)) is not None
    assert (await store.remove("eve")).previous_call_id == "c1"
    assert await redis_client.hlen(call_agents_key(settings.tenant)) == 0


# Snapshot, counts, configuration -----------------------------------------------------------------------------

async def test_snapshot_lists_the_agents_of_one_pbx_with_their_states(store: Availability) -> None:
    await add_agent(store, "a-avail", available_at=1, skills={"fr": 2})
    await add_agent(store, "b-paused", available_at=2)
    await add_agent(store, "c-reserved", available_at=3)
    await add_agent(store, "d-out", available_at=None)
    await add_agent(store, "e-other", available_at=4, pbx=OTHER_PBX)
    await store.set_state("b-paused", AgentState.PAUSED, now=at(5), reason="lunch",
                          expected_states={AgentState.AVAILABLE})
    first = await store.reserve(PBX, QUEUE, "c1", at(6))
    assert first is not None and first.agent_id == "a-avail"
    assert (await store.release("a-avail", "c1", now=at(7))).applied
    second = await store.reserve(PBX, QUEUE, "c3", at(8))
    assert second is not None and second.agent_id == "c-reserved"
    snap = {a.agent_id: a for a in await store.snapshot(PBX)}
    assert list(snap) == ["a-avail", "b-paused", "c-reserved", "d-out"]
    assert [(a.state, a.call_id, a.reason, a.ready_in) for a in snap.values()] == [
        (AgentState.AVAILABLE, None, None, frozenset({QUEUE})),
        (AgentState.PAUSED, None, "lunch", frozenset()),
        (AgentState.RESERVED, "c3", None, frozenset()),
        (AgentState.LOGGED_OUT, None, None, frozenset()),
    ]
    avail = snap["a-avail"]
    assert (avail.pbx_id, avail.endpoint, avail.skills) == (PBX, "PJSIP/a-avail", {"fr": 2})
    assert (avail.since, avail.last_offered) == (at(7), at(6))
    assert snap["c-reserved"].reserved_at == at(8)
    assert [a.agent_id for a in await store.snapshot(OTHER_PBX)] == ["e-other"]


async def test_counts_per_queue_and_state(store: Availability) -> None:
    await add_agent(store, "a", available_at=1)
    await add_agent(store, "b", available_at=2)
    await add_agent(store, "c", available_at=None)
    await add_agent(store, "d", available_at=3, queues={"other": QueueRule(Strategy.LONGEST_IDLE)})
    await store.reserve(PBX, QUEUE, "c1", at(4))
    counts = await store.counts(PBX, QUEUE)
    assert counts.ready == 1
    assert counts.by_state == {AgentState.AVAILABLE: 1, AgentState.RESERVED: 1, AgentState.LOGGED_OUT: 1}


async def test_upsert_moves_an_available_agent_between_queues_and_pbxs_keeping_its_place(
    settings: ServiceSettings, redis_client: aioredis.Redis, store: Availability,
) -> None:
    await add_agent(store, "mover", available_at=1)
    await add_agent(store, "local", available_at=2, pbx=OTHER_PBX)
    queues = {QUEUE: QueueRule(Strategy.LONGEST_IDLE), "vip": QueueRule(Strategy.LINEAR, 4)}
    previous = await store.upsert_agent("mover", OTHER_PBX, "PJSIP/mover-2", {"fr": 3}, queues, now=at(50))
    assert previous == AgentState.AVAILABLE
    assert await redis_client.exists(ready_key(settings.tenant, PBX, QUEUE)) == 0
    since_ms = at(1).timestamp() * 1000
    assert await redis_client.zscore(ready_key(settings.tenant, OTHER_PBX, QUEUE), "mover") == since_ms
    assert await redis_client.zscore(ready_key(settings.tenant, OTHER_PBX, "vip"), "mover") == 4.0
    assert await redis_client.smembers(pbx_agents_key(settings.tenant, PBX)) == set()
    assert await store.snapshot(PBX) == []
    # It became available before "local", and keeps that place on its new PBX.
    assert await drain(store, pbx=OTHER_PBX) == ["mover", "local"]
    mover = await store.get("mover")
    assert mover is not None and (mover.endpoint, mover.skills) == ("PJSIP/mover-2", {"fr": 3})


async def test_the_keys_the_scripts_write_are_the_keys_redis_store_builds(
    settings: ServiceSettings, redis_client: aioredis.Redis, store: Availability,
) -> None:
    await add_agent(store, "k1", available_at=1)
    await store.reserve(PBX, QUEUE, "call-with:colon", at(2))
    await add_agent(store, "k2", available_at=3)
    tenant = settings.tenant
    expected = {agent_key(tenant, "k1"), agent_key(tenant, "k2"), ready_key(tenant, PBX, QUEUE),
                pbx_agents_key(tenant, PBX), call_agents_key(tenant)}
    found = {k.decode() async for k in redis_client.scan_iter(match=tenant_pattern(tenant))}
    assert found == expected
    assert await redis_client.zrange(ready_key(tenant, PBX, QUEUE), 0, -1) == [b"k2"]
    assert await redis_client.hget(call_agents_key(tenant), "call-with:colon") == b"k1"


# The router's two extra reservations ----------------------------------------------------------------------------

async def test_reserve_skips_the_excluded_agents_and_leaves_them_ready(store: Availability) -> None:
    await add_agent(store, "a1", available_at=0)
    await add_agent(store, "a2", available_at=5)
    taken = await store.reserve(PBX, QUEUE, "c1", at(10), exclude=["a1"])
    assert taken is not None and taken.agent_id == "a2"
    # a1 was skipped, not dropped: another call still gets it, and the excluded call gets nobody more.
    assert await store.reserve_all(PBX, QUEUE, "c2", at(10), exclude=["a1"]) == []
    again = await store.reserve(PBX, QUEUE, "c3", at(10))
    assert again is not None and again.agent_id == "a1"


async def test_reserve_agent_takes_that_agent_only_if_available_and_is_idempotent(store: Availability) -> None:
    await add_agent(store, "a1", available_at=0)
    await add_agent(store, "a2", available_at=None)  # logged out
    assert await store.reserve_agent(PBX, "a2", "c1", at(1)) is None
    assert await store.reserve_agent(OTHER_PBX, "a1", "c1", at(1)) is None
    taken = await store.reserve_agent(PBX, "a1", "c1", at(1))
    assert taken == Reservation("a1", "PJSIP/a1", False)
    assert await store.reserve_agent(PBX, "a1", "c1", at(2)) == Reservation("a1", "PJSIP/a1", True)
    assert await store.reserve_agent(PBX, "a1", "c2", at(2)) is None  # one call per agent
    assert await store.reserve(PBX, QUEUE, "c3", at(2)) is None  # out of the ready set too
    assert (await store.release("a1", "c1", now=at(3))).applied
    assert (await store.reserve(PBX, QUEUE, "c3", at(4))) is not None
