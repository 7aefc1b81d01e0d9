"""The strategies' scores and the skill threshold of availability.py: pure, no Redis."""

from __future__ import annotations

import random

import pytest

from callstream_common.availability import (
    QueueRule,
    ScoreInputs,
    Strategy,
    ready_scores,
    skill_threshold,
    strategy_score,
)


def inputs(since: int = 0, calls: int = 0, offered: int = 0, position: int = 0, draw: float = 0.0,
           level: int = 0) -> ScoreInputs:
    return ScoreInputs(available_since_ms=since, calls_today=calls, last_offered_ms=offered, position=position,
                       draw=draw, skill_level=level)


def order(strategy: Strategy, agents: dict[str, ScoreInputs]) -> list[str]:
    """Agents in the order a ready set gives them: by score, equal scores by agent id."""
    return sorted(agents, key=lambda a: (strategy_score(strategy, agents[a]), a))


def test_longest_idle_offers_the_earliest_available_first() -> None:
    agents = {"a": inputs(since=3_000), "b": inputs(since=1_000), "c": inputs(since=2_000, calls=0)}
    assert order(Strategy.LONGEST_IDLE, agents) == ["b", "c", "a"]


def test_ring_all_lists_agents_longest_idle_first() -> None:
    agents = {"a": inputs(since=3_000, position=1), "b": inputs(since=1_000, position=9)}
    assert order(Strategy.RING_ALL, agents) == ["b", "a"]


NOW_MS = 1_798_000_000_123  # late 2026, in epoch milliseconds


def test_fewest_calls_orders_by_calls_then_by_idle_time() -> None:
    agents = {
        "a": inputs(since=NOW_MS - 60_000, calls=5), "b": inputs(since=NOW_MS, calls=0),
        "c": inputs(since=NOW_MS - 1, calls=2), "d": inputs(since=NOW_MS - 2, calls=2),
        "e": inputs(since=NOW_MS - 86_400_000, calls=999),
    }
    assert order(Strategy.FEWEST_CALLS, agents) == ["b", "d", "c", "a", "e"]


def test_skills_based_orders_by_level_then_by_idle_time() -> None:
    agents = {
        "a": inputs(since=NOW_MS, level=5), "b": inputs(since=NOW_MS - 1, level=5),
        "c": inputs(since=NOW_MS - 86_400_000, level=3), "d": inputs(since=NOW_MS - 99_000_000, level=0),
    }
    assert order(Strategy.SKILLS_BASED, agents) == ["b", "a", "c", "d"]


def test_a_skills_based_rule_names_its_skill() -> None:
    with pytest.raises(ValueError, match="skill"):
        QueueRule(Strategy.SKILLS_BASED)


def test_round_robin_offers_the_never_offered_then_the_least_recently_offered() -> None:
    agents = {"a": inputs(offered=2_000), "b": inputs(offered=0), "c": inputs(offered=1_000)}
    assert order(Strategy.ROUND_ROBIN, agents) == ["b", "c", "a"]


def test_linear_follows_the_position() -> None:
    agents = {"a": inputs(position=2, since=1), "b": inputs(position=3, since=0), "c": inputs(position=1, since=2)}
    assert order(Strategy.LINEAR, agents) == ["c", "a", "b"]


def test_random_follows_the_draw_and_a_seeded_generator_makes_it_reproducible() -> None:
    def draws(seed: int) -> dict[str, ScoreInputs]:
        rng = random.Random(seed)
        return {name: inputs(draw=rng.random()) for name in ["a", "b", "c", "d", "e", "f"]}

    assert order(Strategy.RANDOM, draws(1)) == order(Strategy.RANDOM, draws(1))
    lowest_draw_first = sorted(draws(1), key=lambda a: draws(1)[a].draw)
    assert order(Strategy.RANDOM, draws(1)) == lowest_draw_first != sorted(lowest_draw_first)
    assert order(Strategy.RANDOM, draws(2)) != order(Strategy.RANDOM, draws(1))


def test_equal_scores_are_left_to_the_agent_id() -> None:
    same = inputs(since=5, calls=1, offered=7, position=2, draw=0.5)
    for strategy in Strategy:
        assert order(strategy, {"zed": same, "amy": same, "kim": same}) == ["amy", "kim", "zed"]


@pytest.mark.parametrize("strategy", [Strategy.LONGEST_IDLE, Strategy.FEWEST_CALLS, Strategy.SKILLS_BASED])
def test_one_millisecond_of_idle_time_still_orders_two_agents(strategy: Strategy) -> None:
    # Redis scores are doubles: the idle-time part must keep its milliseconds next to a large primary key.
    for calls, level in [(0, 5), (3, 2), (2_000, 0)]:
        earlier = strategy_score(strategy, inputs(since=NOW_MS, calls=calls, level=level))
        later = strategy_score(strategy, inputs(since=NOW_MS + 1, calls=calls, level=level))
        assert earlier < later
    assert strategy_score(Strategy.LONGEST_IDLE, inputs(since=NOW_MS)) == NOW_MS


def test_ready_scores_gives_each_queue_its_own_strategy_and_position() -> None:
    queues = {
        "idle": QueueRule(Strategy.LONGEST_IDLE),
        "few": QueueRule(Strategy.FEWEST_CALLS),
        "rr": QueueRule(Strategy.ROUND_ROBIN),
        "lin": QueueRule(Strategy.LINEAR, position=4),
        "rand": QueueRule(Strategy.RANDOM),
        "fr": QueueRule(Strategy.SKILLS_BASED, skill="fr"),
        "de": QueueRule(Strategy.SKILLS_BASED, skill="de"),
    }
    scores = ready_scores(queues, {"fr": 4}, available_since_ms=1_000, calls_today=3, last_offered_ms=500,
                          draw=0.25)
    assert scores == {"idle": 1_000.0, "few": 3e10 + 1.0, "rr": 500.0, "lin": 4.0, "rand": 0.25,
                      "fr": 2e10 + 1.0, "de": 6e10 + 1.0}
    assert ready_scores({}, {}, available_since_ms=1, calls_today=0, last_offered_ms=0, draw=0.0) == {}


@pytest.mark.parametrize(("min_level", "relax", "threshold"), [
    (4, 0, 4), (4, 1, 3), (4, 3, 1), (4, 9, 1), (0, 0, 1), (5, 2, 3),
])
def test_skill_threshold_relaxes_by_levels_but_never_below_one(min_level: int, relax: int, threshold: int) -> None:
    assert skill_threshold(min_level, relax) == threshold


def test_negative_levels_are_refused() -> None:
    with pytest.raises(ValueError):
        skill_threshold(3, -1)
    with pytest.raises(ValueError):
        skill_threshold(-1, 0)
