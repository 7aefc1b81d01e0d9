"""Agents' availability in Redis, shared by agent-state (which moves agents between states) and the router
(which reserves them for calls). docs/acd.md, "Availability in Redis", gives the design; this module is it.

Layout (names built in redis_store.py):
- `agent_key`: one hash per agent: state, pbx_id, endpoint, call_id, reason, since (ms), reserved_at (ms),
  skills (JSON skill -> level), queues (JSON queue -> rule), last_offered (ms), calls_today, calls_day, draw,
  ver.
- `ready_key(pbx, queue)`: sorted set of the agents available for the queue on the PBX, scored by the queue's
  strategy (`strategy_score`), lowest first. Equal scores are ordered by agent id (a sorted set orders
  members of equal score lexically), which is the documented tie-break; fewest-calls and skills-based fold
  the idle time into the score first, since their scores tie often.
- `pbx_agents_key(pbx)`: set of the agents assigned to the PBX, whatever their state.
- `call_agents_key`: hash, call id -> the agents whose hash holds that call.

Invariants, each kept by running every write as one Lua script (Redis runs a script alone, from its first
command to its last, so no other client sees or acts on a half-done step):
1. **One call per agent.** `reserve` checks "available, on this PBX" and writes "reserved for call X" in the
   same script, so however many router workers reserve at once, an agent is taken by one call only; a
   second reservation sees `reserved` and moves on.
2. **Ready sets mirror the hashes.** An agent is in `ready_key(p, q)` only while its hash says available on
   PBX p with q among its queues. Every script that changes a state, a PBX or the queues moves the
   memberships in the same script. The hash is the truth: `reserve` drops a member whose hash disagrees.
3. **Every transition is a compare-and-set** on the state, and for a call's end on the call id, so a late
   or replayed input (a missed-call release arriving after the agent took another call, a retried command)
   changes nothing and reports the state it found instead.
4. **A call never holds agents for nobody.** The call index lists the agents whose hash holds each call; a
   reservation for a call that already holds reserved or ringing agents returns those (a router that
   re-processes an input after a crash gets the same agent back). To get another agent, release first.
5. **Scores come from one read.** Scores are computed here in Python (pure, unit-tested) from a read of the
   hash; the script that puts the agent into the ready sets applies them only if the hash's `ver` has not
   moved since that read, else the read and computation are redone.
6. **Every script ends.** A script that loops blocks every client of that Redis and cannot be killed once
   it has written, so every loop is bounded: the reserve walk looks at each member of the set at most once.

The scripts also reach keys they find while running (the agents met in a ready set), so a tenant's keys must
live on one Redis node (a single primary, possibly with replicas or Sentinel); Redis Cluster would need the
tenant in a hash tag.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from callstream_common.messages.agents import AgentState
from callstream_common.redis_store import (
    agent_key,
    agent_key_prefix,
    call_agents_key,
    pbx_agents_key,
    pbx_agents_key_prefix,
    ready_key,
    ready_key_prefix,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# States in which the agent's hash carries the call it is busy with.
CALL_STATES = frozenset({AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP})
SKILL_LEVELS = range(1, 6)  # as messages.common.SkillLevel; 0 stands for "does not have the skill"


class Strategy(StrEnum):
    """How a queue orders its available agents (lowest score rings first)."""

    LONGEST_IDLE = "longest_idle"  # available the longest first
    FEWEST_CALLS = "fewest_calls"  # fewest calls answered today first, then longest idle
    ROUND_ROBIN = "round_robin"  # offered a call the longest ago first (never offered: first of all)
    LINEAR = "linear"  # by configured position
    RANDOM = "random"  # by a draw made when the agent became available
    RING_ALL = "ring_all"  # every eligible agent at once (`reserve_all`); listed longest-idle first
    SKILLS_BASED = "skills_based"  # highest level in the queue's skill first, then longest idle


@dataclass(frozen=True)
class QueueRule:
    """What the availability store needs of one queue an agent serves."""

    strategy: Strategy
    position: int = 0  # linear queues only: the agent's place in the queue's order, lowest first
    skill: str | None = None  # skills-based queues only: the skill whose level orders the agents

    def __post_init__(self) -> None:
        if self.strategy == Strategy.SKILLS_BASED and not self.skill:
            raise ValueError("a skills-based queue needs the skill that orders its agents")


@dataclass(frozen=True)
class ScoreInputs:
    """What an agent's score in a queue's ready set is computed from, as of becoming available."""

    available_since_ms: int
    calls_today: int
    last_offered_ms: int  # 0 when never offered a call
    position: int
    draw: float  # in [0, 1)
    skill_level: int = 0  # in the queue's skill (skills-based); 0 without it


# Weight of the primary key when a score also orders by idle time: epoch seconds (~1.8e9) stay below it, and
# calls * 1e10 + seconds keeps millisecond precision in a double up to thousands of calls a day.
_PRIMARY = 1e10


def strategy_score(strategy: Strategy, inputs: ScoreInputs) -> float:
    """The agent's score in a ready set ordered by `strategy`: lower is offered first."""
    idle_s = inputs.available_since_ms / 1000
    match strategy:
        case Strategy.LONGEST_IDLE | Strategy.RING_ALL:
            return float(inputs.available_since_ms)
        case Strategy.FEWEST_CALLS:
            return inputs.calls_today * _PRIMARY + idle_s
        case Strategy.SKILLS_BASED:
            return (SKILL_LEVELS.stop - inputs.skill_level) * _PRIMARY + idle_s
        case Strategy.ROUND_ROBIN:
            return float(inputs.last_offered_ms)
        case Strategy.LINEAR:
            return float(inputs.position)
        case Strategy.RANDOM:
            return inputs.draw


def ready_scores(
    queues: Mapping[str, QueueRule], skills: Mapping[str, int], *, available_since_ms: int, calls_today: int,
    last_offered_ms: int, draw: float,
) -> dict[str, float]:
    """The agent's score in the ready set of each of its queues."""
    return {
        queue_id: strategy_score(rule.strategy, ScoreInputs(
            available_since_ms=available_since_ms, calls_today=calls_today, last_offered_ms=last_offered_ms,
            position=rule.position, draw=draw, skill_level=skills.get(rule.skill, 0) if rule.skill else 0,
        ))
        for queue_id, rule in queues.items()
    }


def skill_threshold(min_level: int, relax_levels: int) -> int:
    """The lowest skill level a call accepts once its wait has earned `relax_levels` of relaxation.

    Never below 1: relaxation widens the levels accepted but never drops the skill itself (a French queue
    does not relax to agents who speak no French); a router that wants anyone passes no required skill.
    """
    if min_level < 0 or relax_levels < 0:
        raise ValueError(f"levels must be >= 0: min_level={min_level}, relax_levels={relax_levels}")
    return max(min_level - relax_levels, 1)


@dataclass(frozen=True)
class Reservation:
    agent_id: str
    endpoint: str
    already_held: bool  # the call held this agent before this call of reserve (a replay)


@dataclass(frozen=True)
class Transition:
    """The outcome of a compare-and-set: whether it applied, and what it found (None: unknown agent)."""

    applied: bool
    previous: AgentState | None
    previous_call_id: str | None


@dataclass(frozen=True)
class AgentSnapshot:
    agent_id: str
    pbx_id: str
    endpoint: str
    state: AgentState
    call_id: str | None
    reason: str | None
    since: datetime  # when the current state began
    reserved_at: datetime | None  # when the agent got its current call
    last_offered: datetime | None
    calls_today: int  # answered calls on the day of `calls_day` (the store's time zone)
    calls_day: str | None
    skills: Mapping[str, int]
    queues: Mapping[str, QueueRule]
    ready_in: frozenset[str]  # the queues whose ready set holds the agent (all of them iff available)


@dataclass(frozen=True)
class QueueCounts:
    ready: int  # size of the queue's ready set on the PBX
    by_state: Mapping[AgentState, int]  # the PBX's agents serving the queue, per state


class AvailabilityConflict(RuntimeError):
    """An agent's hash kept changing between the read and the write; raised after `max_attempts`."""


@cache
def _lua(name: str) -> str:
    lua = resources.files("callstream_common") / "lua"
    return (lua / "common.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


def _ms(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"a time zone-aware datetime is required, got {at!r}")
    return (at - _EPOCH) // _MS


def _at(ms: str) -> datetime | None:
    return _EPOCH + int(ms) * _MS if ms not in ("", "0") else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _check_id(what: str, value: str) -> None:
    # The call index joins agent ids with spaces; ids never contain any (messages.common.Id).
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"invalid {what}: {value!r}")


class Availability:
    """The availability store of one tenant, over a redis-py asyncio client.

    `rng` makes the random strategy's draws (seed one for reproducible tests); `tz` is the time zone whose
    midnight resets the calls counted for fewest-calls; `max_attempts` bounds the retries of a write whose
    read went stale (invariant 5), which only happens when two writers touch one agent at the same instant.
    Building it does no I/O: scripts are sent to Redis by SHA, and loaded on the first NOSCRIPT.
    """

    def __init__(
        self, client: aioredis.Redis, tenant: str, *, rng: random.Random | None = None, tz: tzinfo = UTC,
        max_attempts: int = 8,
    ) -> None:
        self._client = client
        self._tenant = tenant
        self._rng = rng or random.Random()
        self._tz = tz
        self._max_attempts = max_attempts
        self._names = json.dumps({
            "agent_prefix": agent_key_prefix(tenant),
            "ready_prefix": ready_key_prefix(tenant),
            "pbx_agents_prefix": pbx_agents_key_prefix(tenant),
            "call_agents": call_agents_key(tenant),
        })
        self._upsert = client.register_script(_lua("upsert"))
        self._transition = client.register_script(_lua("transition"))
        self._reserve = client.register_script(_lua("reserve"))
        self._reserve_agent = client.register_script(_lua("reserve_agent"))
        self._remove = client.register_script(_lua("remove"))
        self._read = client.register_script(_lua("read"))
        self._counts = client.register_script(_lua("counts"))

    async def _run(self, script: AsyncScript, keys: Sequence[str], args: Mapping[str, Any]) -> Any:
        return await script(keys=list(keys), args=[self._names, json.dumps(args)])

    async def _fields(self, agent_id: str) -> dict[str, str] | None:
        raw: dict[bytes | str, bytes | str] = await self._client.hgetall(agent_key(self._tenant, agent_id))
        return {_text(k): _text(v) for k, v in raw.items()} or None

    def _day(self, now: datetime) -> str:
        return now.astimezone(self._tz).date().isoformat()

    def _scores(self, fields: Mapping[str, str], queues: Mapping[str, QueueRule], skills: Mapping[str, int], *,
                since_ms: int, draw: float, now: datetime) -> dict[str, str]:
        calls_today = int(fields["calls_today"]) if fields["calls_day"] == self._day(now) else 0
        scores = ready_scores(queues, skills, available_since_ms=since_ms, calls_today=calls_today,
                              last_offered_ms=int(fields["last_offered"]), draw=draw)
        # repr() keeps every digit of a float; Lua's own number formatting keeps 14.
        return {queue_id: repr(score) for queue_id, score in scores.items()}

    async def upsert_agent(
        self, agent_id: str, pbx_id: str, endpoint: str, skills: Mapping[str, int],
        queues: Mapping[str, QueueRule], *, now: datetime,
    ) -> AgentState:
        """Create the agent (logged out) or replace its configuration; return its state.

        An available agent keeps its place: it moves to the ready sets of its new queues (and PBX) with scores
        from its unchanged availability time and draw. A reassignment to another PBX keeps a call in progress.
        """
        agent = agent_key(self._tenant, agent_id)
        for queue_id in queues:
            ready_key(self._tenant, pbx_id, queue_id)  # validates both ids
        _check_id("endpoint", endpoint)
        for skill, level in skills.items():
            if level not in SKILL_LEVELS:
                raise ValueError(f"skill {skill!r}: level {level} is not in 1..5")
        queues_json = json.dumps({q: _rule_json(r) for q, r in sorted(queues.items())})
        for _ in range(self._max_attempts):
            fields = await self._fields(agent_id)
            scores = None
            if fields is not None and fields["state"] == AgentState.AVAILABLE:
                scores = self._scores(fields, queues, skills, since_ms=int(fields["since"]),
                                      draw=float(fields["draw"]), now=now)
            code, previous = await self._run(self._upsert, [agent], {
                "agent_id": agent_id, "pbx_id": pbx_id, "endpoint": endpoint,
                "skills": json.dumps(dict(sorted(skills.items()))), "queues": queues_json,
                "expect_ver": fields["ver"] if fields else None, "scores": scores, "now": str(_ms(now)),
            })
            if code == 1:
                return AgentState(_text(previous)) if previous else AgentState.LOGGED_OUT
        raise AvailabilityConflict(f"agent {agent_id}: kept changing during upsert")

    async def make_available(
        self, agent_id: str, now: datetime, expected: Collection[AgentState]
    ) -> Transition:
        """Available from `now` (the longest-idle score), if the agent is in one of the `expected` states."""
        return await self.set_state(agent_id, AgentState.AVAILABLE, now=now, expected_states=expected)

    async def set_state(
        self, agent_id: str, new_state: AgentState, *, now: datetime, expected_states: Collection[AgentState],
        expected_call_id: str | None = None, reason: str | None = None, call_id: str | None = None,
    ) -> Transition:
        """Compare-and-set: move to `new_state` only if the agent is in one of `expected_states` and, when
        `expected_call_id` is given, holds that call.

        The call id afterwards is `call_id` if given, else the current one for the states that carry a call
        (reserved, ringing, on_call, wrap_up), else none. Entering on_call counts a call for fewest-calls.
        Reserved is reached only through `reserve`; logged-out agents are forgotten with `remove`.
        """
        agent = agent_key(self._tenant, agent_id)
        if new_state == AgentState.RESERVED:
            raise ValueError("agents are reserved by reserve(), which walks the ready set")
        if not expected_states:
            raise ValueError("expected_states must not be empty")
        if new_state in CALL_STATES and call_id is None and expected_call_id is None:
            raise ValueError(f"{new_state} needs the call: give call_id or expected_call_id")
        if new_state not in CALL_STATES and call_id is not None:
            raise ValueError(f"{new_state} carries no call")
        if reason is not None and new_state != AgentState.PAUSED:
            raise ValueError("a reason goes with paused only")
        for value in (call_id, expected_call_id):
            if value is not None:
                _check_id("call id", value)
        for _ in range(self._max_attempts):
            args: dict[str, Any] = {
                "agent_id": agent_id, "expect_states": sorted(str(s) for s in expected_states),
                "expect_call_id": expected_call_id, "state": new_state.value, "call_id": call_id,
                "reason": reason, "now": str(_ms(now)), "day": self._day(now),
                "expect_ver": None, "scores": None, "draw": None,
            }
            if new_state == AgentState.AVAILABLE:
                fields = await self._fields(agent_id)
                if fields is None:
                    return Transition(False, None, None)
                draw = self._rng.random()
                args |= {"expect_ver": fields["ver"], "draw": repr(draw), "scores": self._scores(
                    fields, _rules(fields["queues"]), json.loads(fields["skills"]), since_ms=_ms(now), draw=draw,
                    now=now)}
            code, previous, previous_call = await self._run(self._transition, [agent], args)
            if code != -1:
                return Transition(code == 1, AgentState(_text(previous)) if previous else None,
                                  _text(previous_call) or None)
        raise AvailabilityConflict(f"agent {agent_id}: kept changing while being made available")

    async def release(
        self, agent_id: str, call_id: str, to_state: AgentState = AgentState.AVAILABLE, *, now: datetime,
        reason: str | None = None,
    ) -> Transition:
        """End the agent's part in `call_id`: to available, or paused (e.g. after too many missed calls).

        Applies only while the agent still holds that call, so a late or replayed release for an older call
        leaves the agent's newer call alone.
        """
        if to_state not in (AgentState.AVAILABLE, AgentState.PAUSED):
            raise ValueError(f"a release goes to available or paused, not {to_state}")
        return await self.set_state(agent_id, to_state, now=now, expected_states=CALL_STATES,
                                    expected_call_id=call_id, reason=reason)

    async def reserve(
        self, pbx_id: str, queue_id: str, call_id: str, now: datetime, *, required_skill: str | None = None,
        min_level: int = 1, relax_levels: int = 0, exclude: Collection[str] = (), request_id: str | None = None,
    ) -> Reservation | None:
        """Reserve the first eligible agent of the queue on the PBX in the queue's order, or None.

        Eligible: available on that PBX, not in `exclude` (e.g. the agents that just missed this call) and,
        with `required_skill`, at level >= `skill_threshold(min_level, relax_levels)`. A repeated request
        (same `request_id`, default: the call id) whose agent is still reserved or ringing for the call gets
        that agent back instead: the caller re-processing an input after a crash. Each attempt of a call
        needs its own request id, or the agent that missed the previous one would come back.
        """
        taken = await self._reserve_some(pbx_id, queue_id, call_id, now, required_skill, min_level,
                                         relax_levels, limit=1, exclude=exclude, request_id=request_id)
        return taken[0] if taken else None

    async def reserve_all(
        self, pbx_id: str, queue_id: str, call_id: str, now: datetime, *, required_skill: str | None = None,
        min_level: int = 1, relax_levels: int = 0, limit: int | None = None, exclude: Collection[str] = (),
        request_id: str | None = None,
    ) -> list[Reservation]:
        """Ring-all: reserve every eligible agent of the queue on the PBX (at most `limit`), in the queue's
        order. The first to answer keeps the call; the router releases the others."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        return await self._reserve_some(pbx_id, queue_id, call_id, now, required_skill, min_level,
                                        relax_levels, limit=limit or 0, exclude=exclude, request_id=request_id)

    async def reserve_agent(self, pbx_id: str, agent_id: str, call_id: str, now: datetime, *,
                            request_id: str | None = None) -> Reservation | None:
        """Reserve one named agent (a direct call, a transfer to its extension) if it is available on the PBX,
        whatever its queues; None otherwise. Idempotent per request like `reserve`."""
        _check_id("call id", call_id)
        reply = await self._run(self._reserve_agent, [agent_key(self._tenant, agent_id)], {
            "pbx_id": pbx_id, "agent_id": agent_id, "call_id": call_id, "now": str(_ms(now)),
            "request_id": request_id or call_id,
        })
        if len(reply) < 3:
            return None
        return Reservation(_text(reply[1]), _text(reply[2]), reply[0] == 1)

    async def _reserve_some(
        self, pbx_id: str, queue_id: str, call_id: str, now: datetime, required_skill: str | None,
        min_level: int, relax_levels: int, *, limit: int, exclude: Collection[str] = (),
        request_id: str | None = None,
    ) -> list[Reservation]:
        _check_id("call id", call_id)
        threshold = skill_threshold(min_level, relax_levels)
        reply = await self._run(self._reserve, [ready_key(self._tenant, pbx_id, queue_id)], {
            "pbx_id": pbx_id, "call_id": call_id, "now": str(_ms(now)), "skill": required_skill,
            "threshold": str(threshold), "limit": str(limit), "exclude": sorted(exclude),
            "request_id": request_id or call_id,
        })
        already_held = reply[0] == 1
        return [Reservation(_text(reply[i]), _text(reply[i + 1]), already_held) for i in range(1, len(reply), 2)]

    async def remove(
        self, agent_id: str, *, expected_states: Collection[AgentState] | None = None
    ) -> Transition:
        """Logout: forget the agent (out of every set and index, hash deleted), if it is in one of
        `expected_states` when given. A later reserve can no longer find it."""
        code, previous, previous_call = await self._run(
            self._remove, [agent_key(self._tenant, agent_id)],
            {"agent_id": agent_id,
             "expect_states": sorted(str(s) for s in expected_states) if expected_states is not None else None},
        )
        return Transition(code == 1, AgentState(_text(previous)) if previous else None,
                          _text(previous_call) or None)

    async def snapshot(self, pbx_id: str) -> list[AgentSnapshot]:
        """Every agent of the PBX as of one instant, by agent id (for the stats service and for repair)."""
        reply = await self._run(self._read, [pbx_agents_key(self._tenant, pbx_id)], {"agent_ids": None})
        return sorted((_snapshot(entry) for entry in reply), key=lambda a: a.agent_id)

    async def get(self, agent_id: str) -> AgentSnapshot | None:
        reply = await self._run(self._read, [agent_key(self._tenant, agent_id)], {"agent_ids": [agent_id]})
        return _snapshot(reply[0]) if reply else None

    async def counts(self, pbx_id: str, queue_id: str) -> QueueCounts:
        reply = await self._run(
            self._counts, [pbx_agents_key(self._tenant, pbx_id), ready_key(self._tenant, pbx_id, queue_id)],
            {"queue_id": queue_id},
        )
        by_state = {AgentState(_text(reply[i])): int(reply[i + 1]) for i in range(1, len(reply), 2)}
        return QueueCounts(ready=int(reply[0]), by_state=by_state)


def _rule_json(rule: QueueRule) -> dict[str, Any]:
    return {"strategy": rule.strategy.value, "position": rule.position, "skill": rule.skill}


def _rules(queues_json: str) -> dict[str, QueueRule]:
    return {q: QueueRule(Strategy(r["strategy"]), int(r["position"]), r["skill"])
            for q, r in json.loads(queues_json).items()}


def _snapshot(entry: Sequence[Any]) -> AgentSnapshot:
    agent_id, raw, ready_in = entry
    f = {_text(raw[i]): _text(raw[i + 1]) for i in range(0, len(raw), 2)}
    since = _at(f["since"])
    return AgentSnapshot(
        agent_id=_text(agent_id),
        pbx_id=f["pbx_id"],
        endpoint=f["endpoint"],
        state=AgentState(f["state"]),
        call_id=f["call_id"] or None,
        reason=f["reason"] or None,
        since=since if since is not None else _EPOCH,
        reserved_at=_at(f["reserved_at"]),
        last_offered=_at(f["last_offered"]),
        calls_today=int(f["calls_today"]),
        calls_day=f["calls_day"] or None,
        skills=json.loads(f["skills"]),
        queues=_rules(f["queues"]),
        ready_in=frozenset(_text(q) for q in ready_in),
    )
