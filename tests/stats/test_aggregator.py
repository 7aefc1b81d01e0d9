"""The stats aggregator over the real stack: events on the test's `calls` and `agents` topics become board
snapshots in Redis and on the pub/sub channel, and 15-minute rows in SQL; a restart rebuilds the same figures
as a full replay of the topics.

The aggregator runs in-process with a fixed clock (`now` of the figures) so that two aggregators' snapshots
can be compared exactly: occupancy and rolling windows move with `now`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from callstream_common.codec import encode, new_envelope
from callstream_common.kafka.admin import ensure_topics, plan_topics
from callstream_common.kafka.dlq import H_REASON
from callstream_common.kafka.producer import Producer
from callstream_common.messages.agents import AgentState, AgentStateChanged
from callstream_common.messages.base import Body
from callstream_common.messages.calls import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOverflowed,
    CallQueued,
)
from callstream_common.redis_store import board_channel, board_key, boards_index_key
from callstream_common.settings import ServiceSettings
from callstream_common.site import parse_site
from callstream_common.topics import TopicName, topic_name
from callstream_stats.aggregate.service import Aggregator
from callstream_stats.settings import StatsSettings
from helpers import until
from site_db import load_site_into

ZONE = "Europe/Berlin"
A, ON, WR, OUT = AgentState.AVAILABLE, AgentState.ON_CALL, AgentState.WRAP_UP, AgentState.LOGGED_OUT


def site(tenant: str) -> dict[str, Any]:
    return {
        "tenant": {"id": tenant, "name": "Stats test", "timezone": ZONE},
        "pjsip": {"password_secret": "test-secret-0123"},
        "pbxs": [{"id": "pbx1", "ari_url": "http://127.0.0.1:8088", "entity_id": "02:00:00:00:00:01"},
                 {"id": "pbx2", "ari_url": "http://127.0.0.1:8089", "entity_id": "02:00:00:00:00:02"}],
        "queues": [{"id": "q1", "department": "d1", "sl_threshold_s": 20, "required_skill": "s1"},
                   {"id": "q2", "department": "d2", "sl_threshold_s": 30, "required_skill": "s2"}],
        "agents": [{"id": "a1", "name": "A1", "extension": "1001", "pbx": "pbx1", "floor": 1, "skills": {"s1": 3}},
                   {"id": "a2", "name": "A2", "extension": "1002", "pbx": "pbx2", "floor": 2, "skills": {"s2": 3}}],
    }


@pytest.fixture
async def stats_settings(settings: ServiceSettings, empty_database: str) -> StatsSettings:
    await load_site_into(empty_database, parse_site(site(settings.tenant)))
    await ensure_topics(settings.kafka_bootstrap, plan_topics(
        settings.topic_prefix, pbx_partitions=settings.pbx_partitions, tenant_partitions=settings.tenant_partitions))
    return StatsSettings(
        service="stats", instance="pytest", tenant=settings.tenant, topic_prefix=settings.topic_prefix,
        kafka_bootstrap=settings.kafka_bootstrap, pbx_partitions=settings.pbx_partitions,
        tenant_partitions=settings.tenant_partitions, pg_dsn=empty_database,
        redis_url=settings.redis_url.get_secret_value(), publish_interval_s=0.02, refresh_interval_s=0.5,
        interval_flush_s=0.1,
    )


@pytest.fixture
async def producer(settings: ServiceSettings) -> AsyncIterator[Producer]:
    async with Producer(settings.kafka_bootstrap, service="test", client_id="stats-test") as made:
        yield made


def base_time() -> datetime:
    """A few minutes ago, but never before today's midnight in the tenant's zone (the figures' `today`)."""
    from zoneinfo import ZoneInfo

    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo(ZONE))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    return max(now - timedelta(minutes=5), midnight + timedelta(seconds=1)).replace(microsecond=0)


def scenario(t0: datetime) -> list[tuple[str, Body]]:
    """(pbx, event): calls and agents of two PBXs, as tests/unit/test_stats_figures.py's scenario, trimmed."""
    def t(s: float) -> datetime:
        return t0 + timedelta(seconds=s)

    return [
        ("pbx1", AgentStateChanged(agent_id="a1", at=t(-60), state=A, previous_state=OUT)),
        ("pbx2", AgentStateChanged(agent_id="a2", at=t(-60), state=A, previous_state=OUT)),
        ("pbx1", CallQueued(call_id="c1", at=t(0), queue_id="q1", channel_id="ch1", waiting_since=t(0))),
        ("pbx1", CallAnswered(call_id="c1", at=t(10), queue_id="q1", agent_id="a1", bridge_id="b1", wait_s=10)),
        ("pbx1", AgentStateChanged(agent_id="a1", at=t(10), state=ON, previous_state=A, call_id="c1")),
        ("pbx1", CallQueued(call_id="c2", at=t(20), queue_id="q1", channel_id="ch2", waiting_since=t(20))),
        ("pbx1", CallAbandoned(call_id="c2", at=t(23), queue_id="q1", wait_s=3)),  # short
        ("pbx1", CallQueued(call_id="c3", at=t(30), queue_id="q1", channel_id="ch3", waiting_since=t(30))),
        ("pbx1", CallAbandoned(call_id="c3", at=t(45), queue_id="q1", wait_s=15)),  # within T
        ("pbx2", CallQueued(call_id="c6", at=t(60), queue_id="q1", channel_id="ch6", waiting_since=t(60))),
        ("pbx1", CallEnded(call_id="c1", at=t(70), queue_id="q1", agent_id="a1", outcome="completed",
                           hangup_by="caller", talk_s=55, hold_s=5)),
        ("pbx1", AgentStateChanged(agent_id="a1", at=t(70), state=WR, previous_state=ON, call_id="c1")),
        ("pbx1", AgentStateChanged(agent_id="a1", at=t(80), state=A, previous_state=WR)),
        ("pbx2", CallOverflowed(call_id="c6", at=t(120), from_queue_id="q1", to_queue_id="q2", action="queue",
                                wait_s=60)),
        ("pbx2", CallQueued(call_id="c6", at=t(120), queue_id="q2", channel_id="ch6", waiting_since=t(60))),
        ("pbx2", CallAnswered(call_id="c6", at=t(150), queue_id="q2", agent_id="a2", bridge_id="b6", wait_s=90)),
        ("pbx2", AgentStateChanged(agent_id="a2", at=t(150), state=ON, previous_state=A, call_id="c6")),
        ("pbx2", CallEnded(call_id="c6", at=t(200), queue_id="q2", agent_id="a2", outcome="completed",
                           hangup_by="agent", talk_s=50)),
        ("pbx2", AgentStateChanged(agent_id="a2", at=t(200), state=WR, previous_state=ON, call_id="c6")),
        ("pbx2", AgentStateChanged(agent_id="a2", at=t(210), state=A, previous_state=WR)),
    ]


def at_of(body: Body) -> datetime:
    when = getattr(body, "at")
    assert isinstance(when, datetime)
    return when


async def produce(producer: Producer, s: StatsSettings, events: list[tuple[str, Body]]) -> None:
    for pbx, body in events:
        message = new_envelope(body, tenant=s.tenant, producer="test", pbx_id=pbx)
        headers, value = encode(message)
        await producer.send_raw(topic_name(body.TOPIC, s.topic_prefix), key=pbx, value=value, headers=headers)


async def stored(redis: aioredis.Redis, s: StatsSettings, scope: str) -> dict[str, Any] | None:
    raw = await redis.get(board_key(s.tenant, scope))
    return None if raw is None else dict(json.loads(raw))


def figures(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {name: snapshot[name] for name in ("now", "periods", "last_event_at", "settings", "title")}


class Running:
    def __init__(self, s: StatsSettings, clock: Callable[[], float]) -> None:
        self.aggregator = Aggregator(s, clock=clock)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Aggregator:
        self.task = asyncio.create_task(self.aggregator.run())
        await until(lambda: self.aggregator.caught_up.is_set() or self.task is None or self.task.done(),
                    timeout=30, what="the aggregator's replay")
        if self.task.done():
            self.task.result()
        return self.aggregator

    async def __aexit__(self, *exc: object) -> None:
        self.aggregator.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout=15)


async def test_events_become_snapshots_channel_messages_and_interval_rows(
        stats_settings: StatsSettings, producer: Producer, redis_client: aioredis.Redis) -> None:
    s = stats_settings
    t0 = base_time()
    fixed_now = (t0 + timedelta(seconds=300)).timestamp()
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(board_channel(s.tenant))
    try:
        async with Running(s, lambda: fixed_now):
            # An undecodable record is dead-lettered with its reason; the events after it are folded.
            await producer.send_raw(topic_name(TopicName.CALLS, s.topic_prefix), key="pbx1", value=b"{}",
                                    headers=[("type", b"call.queued")])
            await produce(producer, s, scenario(t0))

            async def q1_final() -> dict[str, Any] | None:
                # Complete once both topics are folded to their last event: c6's flow-out (calls) and a1's
                # wrap-up (agents) are the last facts of q1.
                snap = await stored(redis_client, s, "queue/q1")
                if snap is None:
                    return None
                today = snap["periods"]["today"]
                return snap if (today["offered"], today["aht_s"]) == (4, 70.0) else None

            q1 = await until(q1_final, timeout=20, what="queue/q1 with all of its events")
            today = q1["periods"]["today"]
            # offered: c1 answered, c2 short, c3 abandoned within T, c6 flowed out to q2 (another department).
            assert (today["offered"], today["answered"], today["answered_in_sl"]) == (4, 1, 1)
            assert (today["abandoned"], today["short_abandoned"]) == (1, 1)
            assert today["sl_pct"] == round(100 / 3, 2)  # count_as_failed: 1 / (1 + 1 abandoned + 1 flowed out)
            assert today["aht_s"] == 70.0  # 55 talk + 5 hold + 10 wrap-up
            assert q1["settings"] == {"sl_threshold_s": 20, "short_abandon_s": 5, "abandon_policy": "count_as_failed",
                                      "time_zone": ZONE}
            tenant = await until(lambda: stored(redis_client, s, "tenant/all"))
            assert tenant["title"] == "Stats test"
            assert await redis_client.hget(boards_index_key(s.tenant), "floor/2") == b"Floor 2"

            # The channel carries the JSON the key was set to (the channel was subscribed before the start, so
            # it saw every publication), with seq increasing per board.
            seen: list[dict[str, Any]] = []

            async def q1_on_channel() -> dict[str, Any] | None:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None:
                    seen.append(json.loads(message["data"]))
                matching = [m for m in seen if m["scope"] == "queue/q1" and m["seq"] == q1["seq"]]
                return matching[0] if matching else None

            published = await until(q1_on_channel, timeout=10, what="queue/q1 on the channel")
            assert figures(published) == figures(q1)
            seqs = [m["seq"] for m in seen if m["scope"] == "queue/q1"]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

            dlq = await dead_letters(s)
            assert len(dlq) == 1 and dlq[0].startswith("undecodable")

            async def complete_rows() -> list[dict[str, Any]] | None:
                found = await interval_rows(s, "queue/q1")
                return found if sum(r["offered"] for r in found) == 4 else None

            rows = await until(complete_rows, timeout=10, what="interval rows")
            assert sum(r["handled"] for r in rows) == 1 and sum(r["answered"] for r in rows) == 1
        # Written again by a restarted aggregator (a replay of the same topics): the same rows, counted once.
        async with Running(s, lambda: fixed_now) as again:
            await until(lambda: again.rows_written > 0, timeout=10, what="the restart's interval rows")
            assert await interval_rows(s, "queue/q1") == rows
    finally:
        await pubsub.aclose()


async def test_restart_gives_the_figures_of_a_full_replay(
        stats_settings: StatsSettings, producer: Producer, redis_client: aioredis.Redis) -> None:
    s = stats_settings
    t0 = base_time()
    fixed_now = (t0 + timedelta(seconds=300)).timestamp()
    events = scenario(t0)
    scopes = ["tenant/all", "department/d1", "department/d2", "queue/q1", "queue/q2", "floor/1", "floor/2"]

    async def settled(newest: datetime) -> bool:
        tenant = await stored(redis_client, s, "tenant/all")
        return bool(tenant and tenant["last_event_at"] and datetime.fromisoformat(tenant["last_event_at"]) >= newest)

    async def complete() -> bool:
        """Every event of both topics folded: the last call (c6 ended) and the last wrap-up (a2's) are in."""
        tenant = await stored(redis_client, s, "tenant/all")
        if tenant is None:
            return False
        today = tenant["periods"]["today"]
        # handled c1 (60 s) and c6 (50 s), wrap-ups 10 s each: (60 + 50 + 10 + 10) / 2
        return (today["offered"], today["aht_s"], tenant["now"]["agents"]) == (4, 65.0, {"available": 2})

    # The live run: half of the events, published, then the rest while it runs.
    async with Running(s, lambda: fixed_now):
        await produce(producer, s, events[:9])
        await until(lambda: settled(at_of(events[8][1])), timeout=20, what="the first half")
        await produce(producer, s, events[9:])
        await until(complete, timeout=20, what="every event")
    # Published after the last fold: the state the live run ended with.
    live = {scope: snap for scope in scopes if (snap := await stored(redis_client, s, scope)) is not None}
    assert set(live) == set(scopes)

    # A restart replays the topics from before today's midnight; a rebuild from the very beginning is the
    # full replay. Both must show exactly the live figures, with sequence numbers that go on increasing.
    for lookback in (24.0, None):
        restarted = s.model_copy(update={"replay_lookback_h": lookback})
        async with Running(restarted, lambda: fixed_now):
            async def republished() -> dict[str, dict[str, Any]] | None:
                boards = {scope: await stored(redis_client, s, scope) for scope in live}
                newer = all(b is not None and b["seq"] > live[scope]["seq"] for scope, b in boards.items())
                return boards if newer else None  # type: ignore[return-value]

            replayed = await until(republished, timeout=20, what="the restarted aggregator's snapshots")
        for scope, snap in live.items():
            assert figures(replayed[scope]) == figures(snap), scope
        live = {scope: await stored(redis_client, s, scope) for scope in live}


async def interval_rows(s: StatsSettings, scope: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(s.pg_dsn.get_secret_value())
    try:
        rows = await conn.fetch("SELECT * FROM stats_intervals WHERE tenant = $1 AND scope = $2 "
                                "ORDER BY interval_start", s.tenant, scope)
    finally:
        await conn.close()
    return [{k: v for k, v in dict(r).items() if k != "updated_at"} for r in rows]


async def dead_letters(s: StatsSettings) -> list[str]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic_name(TopicName.CALLS, s.topic_prefix) + ".dlq",
                                bootstrap_servers=s.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return [dict(r.headers)[H_REASON].decode() for records in batches.values() for r in records]
    finally:
        await consumer.stop()
