"""The one factory of callstream's stream processors (router, agent-state, stats, dialer).

Processing guarantee: at-least-once, with idempotent effects. Chosen over faust's exactly-once because
(1) exactly-once covers only Kafka-to-Kafka effects (tables and output topics), while ours are mostly SQL,
Redis and ARI commands, which must be idempotent anyway (upserts with stored positions, deterministic command
ids the gateway de-duplicates); and (2) under exactly-once a downstream reader (read_committed) sees outputs
only when the transaction commits, every `broker_commit_interval` (seconds), which would put seconds into the
routing path whose target is tens of milliseconds. Offsets are acked only after an event's handler returns
and committed every `broker_commit_interval`, so a crash replays at most that window, harmlessly.

Codec: the catalogue's topics move raw bytes (key and value serializer "raw", see source_topic) and `decoded()` turns each event into an
envelope with the project's Codec (headers + value, validated by the pydantic models, upcast when old).
What does not decode is dead-lettered to `<topic>.dlq` with the reason, and the stream carries on.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any, cast

import faust
from faust import web
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT, StreamT, TopicT
from faust.transport.consumer import CONSUMER_FETCHING
from faust.types.tuples import ack_lock
from mode.utils.times import want_seconds
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from callstream_common import metrics
from callstream_common.codec import Codec, DecodeError, Message
from callstream_common.envelope import Headers
from callstream_common.kafka.admin import PlannedTopic, ensure_topics
from callstream_common.kafka.changelog_hold import ChangelogHold
from callstream_common.kafka.delivery_order import DeliveryOrder, Verdict
from callstream_common.kafka.dlq import dead_letter
from callstream_common.kafka.pass_over import InOrderAcks, PassOverRule, Wanted
from callstream_common.kafka.unacknowledged import Unacknowledged
from callstream_common.settings import SESSION_TIMEOUT_S, ServiceSettings
from callstream_common.stall_watch import STALL_WATCH_ENV, StallWatch
from callstream_common.topics import TopicName, spec, topic_name

log = logging.getLogger(__name__)


class _IdempotentProducer(faust_aiokafka.Producer):
    """faust enables idempotence only inside transactions; we want it always (no duplicates on retry). Also
    tracks what faust hands over without waiting (the tables' changelog writes) until it is acknowledged, so that
    no offset is committed before them (unacknowledged.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unacknowledged = Unacknowledged()

    def _settings_extra(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}

    def send_soon(self, fut: Any) -> None:
        hold: ChangelogHold | None = getattr(self.app, "changelog_hold", None)
        if hold is not None and hold.capture(fut):
            return  # a table write of an input whose own records are not acknowledged yet (changelog_hold.py)
        self.send_now(fut)

    def send_now(self, fut: Any) -> None:
        self.unacknowledged.track(fut)
        super().send_soon(fut)


class _Children:
    """Metric children by metric and label values: `.labels()` on every record costs a lock and a lookup."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def __call__(self, family: Any, *labels: str) -> Any:
        child = self._cache.get((family, labels))
        if child is None:
            child = self._cache[(family, labels)] = family.labels(*labels)
        return child


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's aiokafka consumer, run on the worker's own event loop instead of a thread of its own.

    faust runs the consumer in a thread with a second event loop and hands every call and every fetched batch
    across through method queues and `call_soon_threadsafe`: two self-pipe wake-ups per fetch and the GIL passed
    back and forth between two busy threads (~1,300 futex calls a second in the router under bench-routing's
    load, and the thread's loop a third of the router's CPU). aiokafka is an asyncio library made for the
    worker's loop; here "the thread" is that loop: `call_thread` awaits the call, the rebalance callbacks are
    called directly, and no thread is started (docs/acd.md "Session 8").

    Also applies the app's `fetch_batching` (min bytes, max wait ms) to the aiokafka consumer faust creates (faust
    fixes fetch.min.bytes at 1: every record that arrives ends a fetch, and the next fetch is another request —
    hundreds a second per worker under load, CPU for the worker and the broker alike)."""

    def __init__(self, consumer: Any, *, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)
        self._metric_children = _Children()  # not `_children`: a mode Service's own (its child services)
        self._serving: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """mode's ServiceThread.start without the thread: `_serve` (start, run until stopped, shut down) is a task
        of the loop, and start returns once it is up (or raises what start-up raised)."""
        assert not self._thread_started.is_set()
        self._thread_started.set()
        self._thread_running = self.parent_loop.create_future()
        self._serving = asyncio.ensure_future(self._serve())
        # What `_serve` raises has reached start() (or the app, as a crash) already: retrieved here, so that it
        # is not logged again as a task exception nobody retrieved.
        self._serving.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            if not self.should_stop:
                await self._thread_running
        finally:
            self._thread_running = None

    async def on_thread_started(self) -> None:
        pass  # no method queue: calls are awaited in place (call_thread)

    async def call_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # As mode's method queue does: `fun` may be a coroutine function or a plain one (aiokafka's subscribe).
        result = fun(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def cast_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        result = fun(*args, **kwargs)
        if inspect.isawaitable(result):
            self.add_future(result)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.consumer.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
        await self.consumer.on_partitions_assigned(assigned, generation_id)

    async def _gather_remaining_tasks(self) -> None:
        pass  # mode cancels every task of the thread's loop here: this loop is the worker's, its tasks are not ours

    async def _fetch_records(self, consumer: Any, active_partitions: Any, timeout: float | None = None,
                             max_records: int | None = None) -> Any:
        """faust's fetch, timed per record (see metrics.FETCH_DELAY): with the worker's intake and handler times
        it tells where a record waited."""
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        now = time.time()
        service = getattr(self.app, "service_name", "")
        for tp, batch in (records or {}).items():
            if batch:
                histogram = self._metric_children(metrics.FETCH_DELAY, service, tp.topic)
                for record in batch:
                    histogram.observe(max(0.0, now - record.timestamp / 1000))
        return records

    def fetch_only(self, changelogs: Collection[str], paused: Collection[tuple[str, int]]) -> None:
        """The assigned partitions of the `changelogs` topics in `paused` are not fetched, the others are (see
        _Consumer._fetch_as_paused). aiokafka's partitions are named tuples, equal to the (topic, partition)
        pairs."""
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            if tp.topic not in changelogs:
                continue
            if tp in paused:
                consumer.pause(tp)
            else:
                consumer.resume(tp)

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        batching = getattr(self.app, "fetch_batching", None)
        if batching is not None:
            consumer._fetch_min_bytes, consumer._fetch_max_wait_ms = batching  # read by its start()
        return consumer


REBALANCE_POLL_S = 0.01  # how often the delivery loop looks whether a rebalance it waits for is over


class _Consumer(faust_aiokafka.Consumer):
    """A consumer that never commits past a record no handler processed, and hands records to the streams in
    offset order. faust has four ways to lose a record, all closed here (the end-to-end run with a killed
    agent-state worker lost commands and call events through them, docs/acd.md "Session 6"):

    - at the end of a rebalance faust resumes the flow, which empties every stream's buffer, while its delivery
      loop may already be handing over records of the newly assigned partitions (a worker's start after a
      failover: hundreds of records dropped unprocessed, the ones after them processed first):
      `_drain_messages` holds stream records until the rebalance is over;
    - that loop skips over a jump in a partition's offsets and later counts the skipped offsets as processed:
      `_drain_messages` seeks back instead and holds the later records (delivery_order.py);
    - a stream skips the records it takes from its buffer while the group's generation changes or the flow is
      suspended (faust streams.py) and *acks* them, unprocessed: `ack` refuses those;
    - it commits a run of acked offsets even when the record *at* the committed offset is missing (its check
      tolerates one hole, `min(acked) - committed > 1`, off by one since the committed offset became the next
      one to read): `_new_offset` refuses.

    A hole left by a refused ack stops the partition's commits at the record before it, and GapHealer seeks back
    so that the record is delivered again (effects are idempotent: at-least-once)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._order = DeliveryOrder()
        self._passed: InOrderAcks[Any] = InOrderAcks()  # records passed over here (pass_over.py)

    def ack(self, message: Any) -> bool:
        if message.generation_id != self.app.consumer_generation_id or not self.app.flow_control.is_active():
            # What a stream skipped, unprocessed: done with as far as the bookkeeping goes (a rebalance waits
            # for the unacked messages), but its offset is not marked safe to commit.
            with ack_lock:
                message.acked = True
                self._unacked_messages.discard(message)
            return False
        acked: bool = super().ack(message)
        return acked

    def release_passed(self, message: Any) -> None:
        """`message`, delivered to a stream, is acked: the records passed over behind it that waited for it
        (pass_over.py) are acked now. Told by _PassedOverRelease: faust's compiled stream iterator acks without
        calling `ack`."""
        for held in self._passed.done(message.tp, message.offset):
            super().ack(held)

    def pause_partitions(self, tps: Any) -> None:
        super().pause_partitions(tps)
        self._fetch_as_paused()

    def resume_partitions(self, tps: Any) -> None:
        super().resume_partitions(tps)
        self._fetch_as_paused()

    def _fetch_as_paused(self) -> None:
        """faust pauses a partition in its own bookkeeping only: aiokafka goes on fetching it. A table's changelog
        partition is paused outside recovery, and the worker writes it all the time, so aiokafka fetched the
        worker's own writes, which then sat in its buffer unconsumed — and a fetched partition nobody consumes
        holds every fetch from the broker for aiokafka's prefetch backoff (0.1 s): the first offers of every
        bench-routing run waited 50-100 ms in the fetch (docs/acd.md "Session 7"). The changelog partitions faust
        pauses are now paused in aiokafka too; the stream partitions keep faust's own flow control. (aiokafka runs
        on this loop, see _ConsumerThread: no hand-over to another thread.)"""
        thread = self._thread
        if not isinstance(thread, _ConsumerThread):
            return
        changelogs = frozenset(self.app.tables.changelog_topics)
        paused = frozenset((tp.topic, tp.partition) for tp in self._paused_partitions if tp.topic in changelogs)
        thread.fetch_only(changelogs, paused)

    async def perform_seek(self) -> None:
        """faust's seek of every assigned partition to its committed offset (which sets each one's read offset:
        the committed one, or None without a commit), told to the delivery order."""
        await super().perform_seek()
        for tp in self.assignment():
            self._order.restart_at(tp, self._read_offset[tp])
            self._passed.reset(tp)

    async def seek(self, partition: Any, offset: int) -> None:
        await super().seek(partition, offset)
        self._order.restart_at(partition, offset)
        self._passed.reset(partition)

    async def _drain_messages(self, fetcher: Any) -> None:
        """faust's delivery loop (run by its Fetcher), handing records to the streams strictly in offset order
        per partition (delivery_order.py): a jump seeks back instead of being skipped over."""
        callback = self.callback
        fetcher_stopped = fetcher._stopped.is_set
        order = self._order
        acks_enabled_for = self.app.topics.acks_enabled_for
        rules: dict[str, PassOverRule] = getattr(self.app, "pass_over_rules", {})
        passed = self._passed
        since_yield = 0
        try:
            while not (self._stopped.is_set() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany can return at once, again and again
                if self.should_stop:
                    break
                async for tp, message in batch:
                    since_yield += 1
                    if since_yield > 100:
                        await asyncio.sleep(0)
                        since_yield = 0
                    # Table changelogs (read at recovery) are compacted: holes in their offsets are normal there.
                    acking = acks_enabled_for(message.topic)
                    if acking and self.app.rebalancing:
                        # The rebalance ends with faust resuming the flow, which empties every stream's buffer:
                        # a record handed over before that would be dropped unprocessed (and the ones after it
                        # processed first). Hold it until the rebalance is over (the seek to the committed
                        # offsets meanwhile may make it one to skip: judged after).
                        await self._rebalanced()
                    verdict = order.judge(tp, message.offset) if acking else Verdict.DELIVER
                    if verdict is Verdict.SEEK_BACK:
                        await self._seek_back(tp, order.expected(tp), message.offset)
                    if verdict is not Verdict.DELIVER:
                        continue
                    rule = rules.get(message.topic) if acking else None
                    # aiokafka's headers: a tuple of (name, value) pairs.
                    if rule is not None and rule.wanted.passes_over(cast(Headers, message.headers or ())):
                        self._read_offset[tp] = message.offset
                        order.delivered(tp, message.offset)
                        rule.passed(tp.partition, message.offset)
                        if passed.passed_over(tp, message):
                            super().ack(message)
                        continue
                    delivery = callback(message)
                    outcome = await self.wait_first(delivery, self.suspend_flow.wait())
                    if delivery in outcome.done:
                        self._read_offset[tp] = message.offset
                        order.delivered(tp, message.offset)
                        passed.delivered(tp, message.offset)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
            log.info("Broker stopped consumer, shutting down...")
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
            log.info("Consumer shutting down for user cancel.")
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _rebalanced(self) -> None:
        while self.app.rebalancing and not self.should_stop:
            await asyncio.sleep(REBALANCE_POLL_S)

    async def _seek_back(self, tp: Any, expected: int | None, arrived: int) -> None:
        assert expected is not None
        starts = await self.earliest_offsets(tp)
        start = starts.get(tp) or 0
        if start > expected:
            # Deleted by retention before this worker read them: nothing can bring them back. The partition counts
            # from the log's start, for delivery and for commits (else GapHealer would seek back forever).
            log.error("records deleted by retention before they were read: resuming from the log's start",
                      extra={"partition": f"{tp.topic}:{tp.partition}", "expected": expected, "log_start": start})
            await self.seek(tp, start)
            self._committed_offset[tp] = start
            return
        metrics.STREAM_GAPS_HEALED.labels(getattr(self.app, "service_name", ""), tp.topic).inc()
        log.warning("records skipped by the fetch: reading them again before any later one", extra={
            "partition": f"{tp.topic}:{tp.partition}", "expected": expected, "arrived": arrived})
        await super().seek(tp, expected)

    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _handle_attached(self, commit_offsets: Any) -> None:
        """Before offsets are committed: the app's commit barriers (effects still pending for handled events),
        then the acknowledgement of every table write made so far (faust's own flush may give up first)."""
        for barrier in getattr(self.app, "commit_barriers", ()):
            await barrier()
        unacknowledged = getattr(self.app.producer, "unacknowledged", None)
        if unacknowledged is not None:
            try:
                await unacknowledged.settle()
            except RuntimeError as exc:
                # What faust does when an attached record fails: the consumer crashes, nothing is committed.
                raise ProducerSendError(str(exc)) from exc
        await super()._handle_attached(commit_offsets)

    def _new_offset(self, tp: Any) -> int | None:
        committed = self._committed_offset[tp]
        if head_gap(committed, self._acked[tp]):
            return None
        offset: int | None = super()._new_offset(tp)
        return offset


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _IdempotentProducer


class CallstreamApp(faust.App):
    """faust.App whose producer is idempotent with acks=all and whose consumer never commits past a hole."""

    # (fetch.min.bytes, fetch.max.wait.ms) for the worker's consumer; None keeps faust's (1 byte: no wait).
    fetch_batching: tuple[int, int] | None = None
    service_name: str = ""  # the service label of the metrics measured outside a stream (the fetch)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Awaited before every offset commit: a handler that returns before its effects are made (records
        # not yet acknowledged) registers here what waits for them, so no offset is committed past them.
        self.commit_barriers: list[Callable[[], Awaitable[None]]] = []
        # Set by a worker whose handlers do not wait for their records before writing tables (agent-state).
        self.changelog_hold: ChangelogHold | None = None
        # topic -> what its one stream passes over, judged by the consumer before delivery (pass_over.py).
        self.pass_over_rules: dict[str, PassOverRule] = {}

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return _Transport(self.conf.broker_producer, self)


def log_end_of(app: faust.App) -> Callable[[str, int], Awaitable[int]]:
    """The broker's end offset of a partition, asked through the app's consumer (for sql.positions.apply_batch)."""
    async def log_end(topic: str, partition: int) -> int:
        tp = TP(topic, partition)
        ends = await app.consumer.highwaters(tp)
        return int(ends[tp])
    return log_end


def create_app(
    settings: ServiceSettings,
    *,
    store: str = "memory://",
    web_port: int | None = None,
    fetch_batching: tuple[int, int] | None = None,
    **overrides: Any,
) -> CallstreamApp:
    """A faust app for `settings.service`; tables use `store` (rocksdb:// where state is large)."""
    app_id = topic_name(settings.service, settings.topic_prefix)
    options: dict[str, Any] = {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        "store": store,
        "topic_partitions": settings.pbx_partitions,
        "topic_replication_factor": 1,
        "topic_allow_declare": True,
        "consumer_auto_offset_reset": "earliest",
        "stream_buffer_maxsize": settings.max_in_flight,
        "broker_commit_interval": 1.0,
        # Commits from that timer only. faust also commits every `broker_commit_every` acks (10,000) from inside
        # its intake loop, which holds every record behind it for the commit's length — the commit barriers and
        # the acknowledgement of the table writes (unacknowledged.py) included: in bench-routing, a cluster of
        # 100-180 ms offers at each such commit. The timer's commit runs in its own task beside the intake.
        "broker_commit_every": 2**62,
        # A crashed worker's partitions move to a live one once the group coordinator stops hearing from it
        # (settings.SESSION_TIMEOUT_S, the workers' `session_timeout_s`). Heartbeats at a third of it, as Kafka
        # advises.
        "broker_session_timeout": SESSION_TIMEOUT_S,
        "broker_heartbeat_interval": SESSION_TIMEOUT_S / 3,
        # A topic the broker had not yet announced when the worker joined (a cold Kafka, topics created a moment
        # before) is left out of the assignment until the consumer's next metadata refresh: 5 minutes by
        # default, during which e.g. a ticks topic goes unread (seen: a router that never ticked after a fresh
        # stack start). 10 s bounds that; the cost is one small metadata request per worker every 10 s.
        "consumer_metadata_max_age_ms": 10_000,
        "autodiscover": False,
        "web_enabled": web_port is not None,
        "web_port": web_port or 6066,
        "web_bind": "127.0.0.1",
        "web_host": "127.0.0.1",
    }
    options.update(overrides)
    app = CallstreamApp(app_id, **options)
    app.fetch_batching = fetch_batching
    app.sensors.add(_PassedOverRelease(app))
    app.service_name = settings.service
    healer = GapHealer(app, settings.service)
    app.timer(GAP_CHECK_S, name=f"{app_id}.gap-healer")(healer.check)
    if web_port is not None:
        serve_metrics(app)
    stall_watch_ms = os.environ.get(STALL_WATCH_ENV)
    if stall_watch_ms:
        app.task(StallWatch(float(stall_watch_ms) / 1000).run)
    return app


class _PassedOverRelease(faust.Sensor):
    """Tells the consumer of every record its streams are done with, on the topics whose unwanted records it
    passes over itself: faust calls a sensor's `on_message_out` once a record's last stream acked it, in its
    compiled stream iterator too (which acks inline, never through `Consumer.ack`)."""

    def __init__(self, app: CallstreamApp) -> None:
        super().__init__()
        self._app = app

    def on_message_out(self, tp: TP, offset: int, message: Any) -> None:
        if message.topic in self._app.pass_over_rules:
            consumer = self._app.consumer
            if isinstance(consumer, _Consumer):
                consumer.release_passed(message)


def serve_metrics(app: faust.App) -> None:
    """`/metrics` on the worker's web port: the process's Prometheus registry (the callstream_* metrics).

    Not faust's prometheus sensor: it calls `.labels()` on every record in, event, table read and send — 5-8% of
    agent-state's busy time in a profiled bench-routing run. faust's own plain Monitor stays (in memory)."""

    @app.page("/metrics")
    async def metrics_page(view: web.View, request: web.Request) -> web.Response:
        return view.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])


# How often the worker looks for a partition whose commits are stuck behind a record it never processed.
GAP_CHECK_S = 5.0


def head_gap(committed: int | None, acked: list[int]) -> bool:
    """True when the records acked since the last commit do not start at the committed offset: a record right
    after the commit point was never processed, so faust (which commits only a run of consecutive acked
    offsets from there) will never commit this partition again."""
    return committed is not None and bool(acked) and min(acked) > committed


class GapHealer:
    """The last resort when a record after the commit point was never processed while later ones were (a record
    a stream skipped and _Consumer.ack refused, or one lost some way not closed yet): faust commits only a run of
    consecutive acked offsets, so the partition would never commit again, and a restart would re-read it from
    that old offset. A partition seen with such a gap on two checks in a row (same committed offset) is sought
    back to its committed offset: the missing record and those after it are delivered again — harmless, effects
    are idempotent (at-least-once) — and commits resume; the records after the missing one have been processed
    before it, though, so this is a repair, not the normal path (docs/acd.md "Session 6"). Relies on faust's
    consumer bookkeeping (`_committed_offset`, `_acked`), pinned by the lock file."""

    def __init__(self, app: faust.App, service: str) -> None:
        self._app = app
        self._service = service
        self._suspects: dict[Any, int] = {}  # tp -> the committed offset seen with a head gap

    async def check(self) -> None:
        consumer = self._app.consumer
        if not getattr(consumer, "flow_active", False):
            return  # a rebalance or recovery is under way: the gap may be closing by itself
        committed_offsets = getattr(consumer, "_committed_offset", {})
        acked_offsets = getattr(consumer, "_acked", {})
        gapped: dict[Any, int] = {}
        for tp in consumer.assignment():
            committed = committed_offsets.get(tp)
            if committed is not None and head_gap(committed, list(acked_offsets.get(tp, ()))):
                gapped[tp] = committed
        stuck = [tp for tp, committed in gapped.items() if self._suspects.get(tp) == committed]
        self._suspects = {tp: c for tp, c in gapped.items() if tp not in stuck}
        if stuck:
            for tp in stuck:
                metrics.STREAM_GAPS_HEALED.labels(self._service, tp.topic).inc()
            log.warning("offsets stuck behind a record never processed: seeking back to the committed offsets",
                        extra={"partitions": [f"{tp.topic}:{tp.partition}@{gapped[tp]}" for tp in stuck]})
            await consumer.perform_seek()


def internal_topics(app: faust.App) -> list[PlannedTopic]:
    """The topics the app owns (table changelogs, internal topics its agents read), to create before the
    worker starts: faust declares them only once its consumer has subscribed, and the first partition
    assignment then ignores the missing ones until the next metadata refresh (minutes), so e.g. a ticks topic
    would go unread."""
    default = app.conf.topic_partitions
    planned = [
        PlannedTopic(table.changelog_topic.get_topic_name(), table.partitions or default,
                     {"cleanup.policy": "compact"})
        for table in app.tables.values()
    ]
    for agent in app.agents.values():
        channel = agent.channel
        if isinstance(channel, faust.Topic) and channel.internal:
            retention = {"retention.ms": str(int(want_seconds(channel.retention) * 1000))} if channel.retention else {}
            planned += [PlannedTopic(name, channel.partitions or default, {"cleanup.policy": "delete", **retention})
                        for name in channel.topics]
    return planned


async def prepare_topics(app: faust.App, settings: ServiceSettings) -> None:
    """Create the app's own topics (see internal_topics) before its worker starts; idempotent."""
    await ensure_topics(settings.kafka_bootstrap, internal_topics(app))


def source_topic(app: faust.App, settings: ServiceSettings, name: TopicName) -> TopicT:
    """A catalogue topic as a faust topic of raw bytes, with the catalogue's partition count."""
    entry = spec(name)
    return app.topic(
        topic_name(name, settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=entry.partitions(settings.pbx_partitions, settings.tenant_partitions),
        retention=entry.retention_ms / 1000,
        internal=False,
    )


class _Decoder:
    """Decodes the events of one stream: dead-letters what does not decode, counts and times what does."""

    def __init__(self, app: faust.App, topic: TopicName, service: str, codec: Codec | None) -> None:
        self._app = app
        self._topic = topic
        self._service = service
        self._codec = codec or Codec()
        self._children = _Children()

    @staticmethod
    def headers(event: EventT[Any]) -> list[tuple[str, bytes]]:
        raw: Any = event.message.headers
        return list(raw.items()) if isinstance(raw, dict) else list(raw or [])

    def count_passed_over(self, topic: str) -> None:
        self._children(metrics.MESSAGES_PASSED_OVER, self._service, topic).inc()

    async def message(self, event: EventT[Any], headers: list[tuple[str, bytes]]) -> Message | None:
        """The event's message, or None once it is dead-lettered with the reason."""
        record = event.message
        try:
            message = self._codec.decode(self._topic, headers, record.value)
        except DecodeError as exc:
            await dead_letter(
                self._send, service=self._service, topic=record.topic, partition=record.partition,
                offset=record.offset, key=record.key, value=record.value, headers=headers,
                reason=f"undecodable: {exc}",
            )
            return None
        self._children(metrics.MESSAGES_CONSUMED, self._service, record.topic, message.type).inc()
        return message

    def observe_delay(self, event: EventT[Any]) -> None:
        """How long the record waited (Kafka, the worker's queue) before its handler: the routing path's
        latency is mostly this under load, not the handler's own time."""
        record = event.message
        self._children(metrics.HANDLER_DELAY, self._service, record.topic).observe(
            max(0.0, time.time() - record.timestamp))

    def handler_latency(self, topic: str) -> Any:
        return self._children(metrics.HANDLER_LATENCY, self._service, topic)

    async def _send(self, target: str, key: bytes | None, value: bytes | None,
                    headers: list[tuple[str, bytes]]) -> Any:
        return await self._app.producer.send_and_wait(target, key, value, None, None, headers)


async def decoded(
    app: faust.App, stream: StreamT[Any], *, topic: TopicName, service: str, codec: Codec | None = None,
    wanted: Wanted | None = None, on_passed_over: Callable[[int, int], None] | None = None,
) -> AsyncIterator[tuple[Message, EventT[Any]]]:
    """(message, event) for every event of `stream` that decodes; the rest go to the dead-letter topic.

    `wanted`: by one header, what the caller handles (pass_over.ari_types, pass_over.hinted); the other records
    are passed over without being decoded, by the worker's consumer before they reach the stream when this
    stream is the topic's only reader (pass_over.py), else here; `on_passed_over` is told of each, as
    (partition, offset): a caller that tracks how far it has read counts them as read.
    An event is acked when the consumer asks for the next one, i.e. after its handler's effects.
    """
    decoder = _Decoder(app, topic, service, codec)

    def passed(partition: int, offset: int, name: str) -> None:
        decoder.count_passed_over(name)
        if on_passed_over is not None:
            on_passed_over(partition, offset)

    if wanted is not None:
        _pass_over_at_consumer(app, stream, wanted, passed)
    async for event in stream.events():
        headers = decoder.headers(event)
        if wanted is not None and wanted.passes_over(headers):
            passed(event.message.partition, event.message.offset, event.message.topic)
            continue
        message = await decoder.message(event, headers)
        if message is None:
            continue
        decoder.observe_delay(event)
        histogram = decoder.handler_latency(event.message.topic)
        started = time.perf_counter()
        yield message, event
        histogram.observe(time.perf_counter() - started)


def _passed_on(passed: Callable[[int, int, str], None], topic: str, partition: int, offset: int) -> None:
    passed(partition, offset, topic)


def _pass_over_at_consumer(app: faust.App, stream: StreamT[Any], wanted: Wanted,
                           passed: Callable[[int, int, str], None]) -> None:
    """Hands the stream's rule to the consumer (CallstreamApp.pass_over_rules) for each topic this stream is the
    only reader of: a record another agent reads must reach it whatever this one wants."""
    rules: dict[str, PassOverRule] | None = getattr(app, "pass_over_rules", None)
    channel = stream.channel
    if rules is None or not isinstance(channel, faust.Topic):
        return
    for name in channel.topics:
        readers = [agent for agent in app.agents.values()
                   if isinstance(agent.channel, faust.Topic) and name in agent.channel.topics]
        if len(readers) == 1 and name not in rules:
            rules[name] = PassOverRule(wanted, functools.partial(_passed_on, passed, name))
            log.info("the consumer passes over what the stream does not want", extra={
                "topic": name, "header": wanted.header, "wanted": sorted(wanted.values)})


async def decoded_batches(
    app: faust.App, stream: StreamT[Any], *, topic: TopicName, service: str, max_records: int, within_s: float,
) -> AsyncIterator[list[tuple[Message, EventT[Any]]]]:
    """The decoded events of `stream` in batches of up to `max_records`, a batch at least every `within_s`
    while events arrive (faust's take_events): for handlers whose effects cost per round trip, not per record
    (one SQL transaction per batch). The batch's events are acked once the handler asks for the next batch."""
    decoder = _Decoder(app, topic, service, None)
    # take_events is faust-streaming's (StreamT's stubs predate it); it acks after the body of the loop.
    batches: Any = stream.take_events(max_records, within=within_s)  # type: ignore[attr-defined]
    async for events in batches:
        batch: list[tuple[Message, EventT[Any]]] = []
        for event in events:
            message = await decoder.message(event, decoder.headers(event))
            if message is not None:
                batch.append((message, event))
        if not batch:
            continue
        histogram = decoder.handler_latency(events[0].message.topic)
        started = time.perf_counter()
        yield batch
        histogram.observe((time.perf_counter() - started) / len(batch))  # per record, as for single events
