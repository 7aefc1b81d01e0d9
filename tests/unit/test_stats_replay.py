"""Restart correctness of the fold, as properties: the figures do not depend on how the partitions of `calls`
and `agents` interleave (a replay reads them in another order than the live run), nor on redelivered events.
Within one call or one agent the order is kept, as Kafka keeps it within a partition."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_stats_figures import (
    A,
    ON,
    OUT,
    RG,
    WR,
    Item,
    P,
    abandoned,
    answered,
    at,
    board,
    ended,
    fold,
    fresh,
    overflowed,
    queued,
    state,
)

from callstream_common.messages.agents import AgentState

call_spec = st.tuples(
    st.sampled_from(["q1", "q2"]),
    st.integers(0, 1800),  # queued at
    st.sampled_from(["answered", "abandoned", "overflow_queue", "overflow_voicemail", "waiting"]),
    st.integers(0, 90),  # wait
    st.integers(1, 300),  # talk
    st.sampled_from(["a1", "a2"]),
)
agent_steps = st.lists(st.tuples(st.sampled_from([A, RG, ON, WR, P, OUT]), st.integers(1, 400)), max_size=12)


def calls_of(specs: list[tuple[str, int, str, int, int, str]]) -> tuple[list[list[Item]], list[tuple[str, str]]]:
    entities: list[list[Item]] = []
    answers: list[tuple[str, str]] = []
    for n, (queue, start, outcome, wait, talk, agent) in enumerate(specs):
        call = f"c{n}"
        items = [queued(call, queue, start)]
        end = start + wait
        if outcome == "answered":
            items += [answered(call, queue, agent, end), ended(call, queue, agent, end + talk, talk=talk)]
            answers.append((agent, call))
        elif outcome == "abandoned":
            items += [abandoned(call, queue, end), ended(call, queue, None, end)]
        elif outcome == "overflow_queue":
            other = "q2" if queue == "q1" else "q1"
            items += [overflowed(call, queue, other, end), queued(call, other, end, waiting_since=start),
                      answered(call, other, agent, end + 5), ended(call, other, agent, end + 5 + talk, talk=talk)]
            answers.append((agent, call))
        elif outcome == "overflow_voicemail":
            items += [overflowed(call, queue, None, end), ended(call, queue, None, end)]
        entities.append(items)
    return entities, answers


def agent_of(agent: str, steps: list[tuple[AgentState, int]], answers: list[tuple[str, str]]) -> list[Item]:
    items: list[Item] = []
    t, previous = -100, OUT
    calls = [call for who, call in answers if who == agent] or ["cx"]
    for i, (new, dt) in enumerate(steps):
        t += dt
        call = calls[i % len(calls)] if new in (RG, ON, WR) else None
        items.append(state(agent, new, previous, t, call=call, reason="break" if new == P else None))
        previous = new
    return items


def interleave(entities: list[list[Item]], rnd: random.Random) -> list[Item]:
    """A random merge that keeps each entity's own order."""
    queues = [list(items) for items in entities if items]
    merged: list[Item] = []
    while queues:
        chosen = rnd.randrange(len(queues))
        merged.append(queues[chosen].pop(0))
        if not queues[chosen]:
            queues.pop(chosen)
    return merged


def figures(items: list[Item], now_s: int) -> dict[str, Any]:
    state_ = fold(fresh(), items)
    return {scope: board(state_, scope, at(now_s)).model_dump(include={"now", "periods", "last_event_at"})
            for scope in state_.scopes.boards}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(call_spec, max_size=10), agent_steps, agent_steps, st.randoms(use_true_random=False),
       st.integers(0, 3600))
def test_any_interleaving_of_the_partitions_gives_the_same_figures(
        specs: list[Any], steps1: list[Any], steps2: list[Any], rnd: random.Random, now_s: int) -> None:
    calls, answers = calls_of(specs)
    entities = [*calls, agent_of("a1", steps1, answers), agent_of("a2", steps2, answers)]
    live = [item for items in entities for item in items]  # topic by topic: one possible order
    live.sort(key=lambda item: item[1].at)  # the live run: roughly in time order
    assert figures(interleave(entities, rnd), now_s) == figures(live, now_s)


@settings(max_examples=40, deadline=None)
@given(st.lists(call_spec, max_size=8), agent_steps, st.randoms(use_true_random=False))
def test_a_redelivered_stretch_changes_nothing(specs: list[Any], steps: list[Any], rnd: random.Random) -> None:
    calls, answers = calls_of(specs)
    items = interleave([*calls, agent_of("a1", steps, answers)], rnd)
    start = rnd.randrange(len(items) + 1)
    end = rnd.randrange(start, len(items) + 1)
    assert figures(items + items[start:end], 3000) == figures(items, 3000)
