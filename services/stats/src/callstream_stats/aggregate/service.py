"""The aggregator: one consumer over every partition of `calls` and `agents` of one tenant.

Start: migrations, configuration, then the state is rebuilt by reading the topics from `replay_lookback_h`
before today's midnight (or from the beginning). Nothing is published until the replay reached the ends the
topics had at start, so a TV never sees a half-rebuilt board; the stored snapshots stay on screen meanwhile.

Then three loops share one event loop (the fold is synchronous, so they never see a half-folded event):
- consume: decode, fold, commit (callstream_common's ConsumeLoop: dead letters with a reason, retries). The
  committed offsets only feed lag monitoring: a restart rebuilds from the topics, not from them.
- publish: every `publish_interval_s` the boards the fold marked dirty, every `refresh_interval_s` all of
  them; one Redis pipeline per round.
- intervals: every `interval_flush_s` the 15-minute rows that changed, upserted with absolute values.
Effects are idempotent (whole snapshots, absolute rows), so at-least-once delivery is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from callstream_common import metrics
from callstream_common.codec import Message
from callstream_common.kafka.admin import ensure_topics, plan_topics, topic_partitions
from callstream_common.kafka.consumer import TRANSIENT_ERRORS, ConsumeLoop, Record, consumer_options
from callstream_common.kafka.producer import Producer
from callstream_common.messages.agents import AgentStateChanged
from callstream_common.messages.calls import CallEvent
from callstream_common.redis_store import create_redis
from callstream_common.site import CONFIG_COMPONENT, CONFIG_MIGRATIONS, load_config
from callstream_common.sql import apply_migrations, create_pool, load_migrations
from callstream_common.sql.migrations_runner import COMMON_MIGRATIONS
from callstream_common.topics import TopicName, spec, topic_name
from callstream_stats.aggregate import intervals, publisher
from callstream_stats.board import BoardSnapshot
from callstream_stats.figures.compute import Policy, open_agent_time, snapshot, today_start_ms, window_starts
from callstream_stats.figures.counters import to_ms
from callstream_stats.figures.fold import StatsState, fold_agent, fold_call, new_state, prune
from callstream_stats.figures.scopes import build_scopes
from callstream_stats.settings import StatsSettings

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
_SOURCES = (TopicName.CALLS, TopicName.AGENTS)


class Aggregator:
    """Run with `await run()`, end with `stop()`. `clock` (seconds since the epoch) is the `now` of the
    figures; tests pass a fixed one to compare two aggregators' snapshots exactly."""

    def __init__(self, settings: StatsSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._stopped = asyncio.Event()
        self.caught_up = asyncio.Event()
        self.state: StatsState | None = None
        self.policy: Policy | None = None
        self._seqs: dict[str, int] = {}
        self._trusted_from_ms = 0
        self.rows_written = 0  # interval rows upserted since start (tests and logs)
        # Per partition, the offset up to which every record is folded (or dead-lettered): the consume loop's
        # commits. The consumer's own position is no measure: it moves when a batch is fetched, before it is folded.
        self._done: dict[TopicPartition, int] = {}

    def stop(self) -> None:
        self._stopped.set()

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def run(self) -> None:
        s = self.settings
        async with AsyncExitStack() as stack:
            pool = await create_pool(s)
            stack.push_async_callback(pool.close)
            async with pool.acquire() as conn:
                for component, folder in ((("common", COMMON_MIGRATIONS), (CONFIG_COMPONENT, CONFIG_MIGRATIONS),
                                           (intervals.COMPONENT, intervals.MIGRATIONS))):
                    await apply_migrations(conn, component, load_migrations(folder), service=s.service)
                config = await load_config(conn, s.tenant)
            redis = create_redis(s)
            stack.push_async_callback(redis.aclose)
            scopes = build_scopes(config, s.default_sl_threshold_s)
            self.policy = Policy(s.short_abandon_s, s.abandon_policy, s.time_zone or config.tenant.timezone)
            self.state = state = new_state(scopes, s.short_abandon_s)
            self._seqs = await publisher.stored_seqs(redis, s.tenant, sorted(scopes.boards))

            names = {topic_name(t, s.topic_prefix): t for t in _SOURCES}
            await ensure_topics(s.kafka_bootstrap, plan_topics(
                s.topic_prefix, pbx_partitions=s.pbx_partitions, tenant_partitions=s.tenant_partitions,
                specs=[spec(t) for t in _SOURCES]))
            producer = Producer(s.kafka_bootstrap, service=s.service, client_id=s.producer_id)
            await producer.start()
            stack.push_async_callback(producer.stop)
            consumer = AIOKafkaConsumer(**consumer_options(
                s.kafka_bootstrap, topic_name("stats-aggregator", s.topic_prefix), s.producer_id, s.batch_size))
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            ends = await self._assign_and_seek(consumer, list(names))

            loop = ConsumeLoop(_CommitTracking(consumer, self._done), producer, topics=names,
                               handler=self._handle, service=s.service, batch_size=s.batch_size)
            started = time.monotonic()
            consume = asyncio.create_task(loop.run(), name="consume")
            try:
                await self._await_replay(ends, consume)
                metrics.STATS_REPLAY_SECONDS.set(time.monotonic() - started)
                log.info("state rebuilt from the topics", extra={
                    "seconds": round(time.monotonic() - started, 3), "boards": len(scopes.boards),
                    "agents": len(state.agents), "calls": len(state.calls)})
                self.caught_up.set()
                metrics.STATS_CAUGHT_UP.set(1)
                await self._serve(pool, redis, consume)
                # Stopping: the reader first, then what it folded last is published and written.
                loop.stop()
                await asyncio.gather(consume, return_exceptions=True)
                await self.publish_round(redis, everything=False)
                await self.flush_intervals(pool)
            finally:
                loop.stop()
                await asyncio.gather(consume, return_exceptions=True)
                metrics.STATS_CAUGHT_UP.set(0)

    # ---- start-up ------------------------------------------------------------------------------------------

    async def _assign_and_seek(self, consumer: AIOKafkaConsumer, names: list[str]) -> dict[TopicPartition, int]:
        """Take every partition, seek to where the rebuild starts; returns the ends to catch up with."""
        counts = await topic_partitions(self.settings.kafka_bootstrap, names)
        partitions = [TopicPartition(name, p) for name in names for p in range(counts[name])]
        consumer.assign(partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        lookback = self.settings.replay_lookback_h
        assert self.policy is not None
        if lookback is None:
            await consumer.seek_to_beginning(*partitions)
            for tp in partitions:
                self._done[tp] = await consumer.position(tp)
            return ends
        midnight = today_start_ms(self.now_ms(), self.policy.time_zone)
        # Rows of intervals before today's midnight (at start) are left as they are: the lookback gives the
        # state of agents at midnight, but not of everything before it.
        self._trusted_from_ms = midnight
        replay_from = midnight - int(lookback * HOUR_MS)
        found = await consumer.offsets_for_times({tp: replay_from for tp in partitions})
        for tp in partitions:
            position = found.get(tp)
            self._done[tp] = position.offset if position is not None else ends[tp]
            consumer.seek(tp, self._done[tp])
        return ends

    async def _await_replay(self, ends: dict[TopicPartition, int], consume: asyncio.Task[None]) -> None:
        """Until every partition is folded up to its end at start (or stop, or the consumer failed)."""
        state = self.state
        assert state is not None
        while not self._stopped.is_set():
            if consume.done():
                consume.result()  # a failed consumer fails the service
                return
            if all(self._done.get(tp, 0) >= end for tp, end in ends.items()):
                return
            prune(state, self.now_ms())  # a long replay must not hold every minute of the lookback
            await _wait(self._stopped, 0.05)

    # ---- serving -------------------------------------------------------------------------------------------

    async def _serve(self, pool: Any, redis: Any, consume: asyncio.Task[None]) -> None:
        s = self.settings
        state, policy = self.state, self.policy
        assert state is not None and policy is not None
        next_refresh = next_flush = 0.0
        while not self._stopped.is_set():
            if consume.done():
                consume.result()
                return
            tick = time.monotonic()
            refresh = tick >= next_refresh
            if refresh:
                next_refresh = tick + s.refresh_interval_s
                prune(state, self.now_ms())
            try:
                await self.publish_round(redis, everything=refresh)
            except TRANSIENT_ERRORS as exc:
                # Redis away: the figures keep folding; everything is published again once it is back.
                log.warning("publishing failed, retrying with every board: %r", exc)
                next_refresh = 0.0
            if tick >= next_flush:
                next_flush = tick + s.interval_flush_s
                try:
                    await self.flush_intervals(pool)
                except TRANSIENT_ERRORS as exc:
                    log.warning("interval rows not written, retrying: %r", exc)
            await _wait(self._stopped, s.publish_interval_s)

    def build_snapshots(self, scopes: list[str], now_ms: int) -> list[BoardSnapshot]:
        state, policy = self.state, self.policy
        assert state is not None and policy is not None
        starts = window_starts(now_ms, policy.time_zone)
        open_time = open_agent_time(state, now_ms, starts, set(scopes))
        built = []
        for scope in scopes:
            seq = self._seqs.get(scope, -1) + 1
            self._seqs[scope] = seq
            built.append(snapshot(state, state.scopes.boards[scope], tenant=self.settings.tenant, policy=policy,
                                  now_ms=now_ms, seq=seq, starts=starts, open_time=open_time,
                                  oldest_event_ms=state.pending_oldest_ms.pop(scope, None)))
        return built

    async def publish_round(self, redis: Any, *, everything: bool) -> int:
        state = self.state
        assert state is not None
        boards = state.scopes.boards
        chosen = sorted(boards) if everything else sorted(scope for scope in state.dirty if scope in boards)
        state.dirty.clear()
        if not chosen:
            return 0
        started = time.perf_counter()
        now_ms = self.now_ms()
        snapshots = self.build_snapshots(chosen, now_ms)
        count = await publisher.publish(redis, self.settings.tenant, snapshots)
        metrics.STATS_PUBLISH_SECONDS.observe(time.perf_counter() - started)
        wall_ms = int(time.time() * 1000)
        for snap in snapshots:
            if snap.oldest_event_at is not None:
                metrics.STATS_EVENT_TO_PUBLISH.observe(max(0, wall_ms - to_ms(snap.oldest_event_at)) / 1000)
        return count

    async def flush_intervals(self, pool: Any) -> int:
        state = self.state
        assert state is not None
        rows = []
        for scope, start in sorted(state.dirty_intervals):
            counters = state.intervals.get(scope, {}).get(start)
            if counters is not None and start >= self._trusted_from_ms and scope in state.scopes.boards:
                rows.append((scope, start, counters))
        state.dirty_intervals.clear()
        try:
            written = await intervals.write_intervals(pool, self.settings.tenant, rows)
        except BaseException:
            # Not written: keep them for the next flush (absolute values, so a later write is as good).
            state.dirty_intervals.update((scope, start) for scope, start, _ in rows)
            raise
        self.rows_written += written
        return written

    # ---- the handler -----------------------------------------------------------------------------------------

    async def _handle(self, message: Message, record: Record) -> None:
        state = self.state
        assert state is not None
        body = message.body
        if isinstance(body, CallEvent):
            fold_call(state, body, message.message_id)
        elif isinstance(body, AgentStateChanged):
            fold_agent(state, body)
        else:
            return  # log-ins, log-outs, skills, reassignments: no figure of their own
        metrics.STATS_EVENTS_FOLDED.labels(message.type).inc()


class _CommitTracking:
    """The consumer as the consume loop sees it: its commits (made after each partition's batch is folded and
    dead letters are sent) are also recorded in `done`."""

    def __init__(self, consumer: AIOKafkaConsumer, done: dict[TopicPartition, int]) -> None:
        self._consumer = consumer
        self._done = done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self._consumer.commit(offsets)
        self._done.update(offsets)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
