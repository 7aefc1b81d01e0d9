"""The router faust app: the handler registry, in one place.

| source | handler | decider inputs |
|---|---|---|
| `ari.events` | `on_ari` | raw ARI events (`parse_ari_event`); gateway.snapshot, gateway.entity-changed as Snapshot |
| `agents` | `on_agents` | agent.state-changed to available, as AgentFreed |
| `cms.commands` | `on_cms` | transfers (blind, attended start/finish); other commands are not the router's |
| `ari.command-results` | `on_results` | failures of the router's commands (`from_command_result`) |
| `router.ticks` (internal) | `on_tick` | `due_deadlines` of the partition's PBXs, as Deadline |

The `calls`/`call_legs` SQL projection of the router's own events is not read here: projector.py, a process of
its own, so that history never holds up routing.

State: one RouterState per PBX in the `router-state` table, keyed by pbx_id. Every source is keyed by pbx_id
with the same partition count, so a PBX's inputs and its state share one partition (the table's changelog
partition is that of the input being processed), and a restarted or re-balanced worker resumes from the
changelog. The timer cannot write tables (it is no stream): it sends one tick per owned partition to the
co-partitioned internal ticks topic, whose handler runs that partition's deadlines.

Every input's `now` is its record's timestamp, and its origin its position, so re-processing it makes the same
decisions with the same ids.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from collections.abc import Awaitable
from typing import Any, get_args

from faust import current_event
from faust.types import TP, EventT, StreamT

from callstream_common import metrics
from callstream_common.availability import Availability
from callstream_common.heap import freeze_startup_heap
from callstream_common.kafka.faust_app import (
    CallstreamApp,
    create_app,
    decoded,
    source_topic,
)
from callstream_common.kafka.pass_over import ari_types, hinted
from callstream_common.messages.agents import AgentState, AgentStateChanged
from callstream_common.messages.ari import GatewayEntityChanged, GatewaySnapshot, RawAriEvent
from callstream_common.messages.cms import TransferAttendedFinish, TransferAttendedStart, TransferBlind
from callstream_common.messages.commands import AriCommandResult
from callstream_common.redis_store import create_redis
from callstream_common.site import CONFIG_COMPONENT, CONFIG_MIGRATIONS, load_config
from callstream_common.sql import apply_migrations, create_pool, load_migrations
from callstream_common.sql.migrations_runner import COMMON_MIGRATIONS
from callstream_common.topics import TopicName, topic_name

from callstream_router import ids
from callstream_router.backlog import Backlog
from callstream_router.inputs import (
    ARI_TYPES,
    AgentFreed,
    CmsTransfer,
    RouterInput,
    from_command_result,
    from_entity_changed,
    from_snapshot,
    parse_ari_event,
)
from callstream_router.pending_stores import PendingStores
from callstream_router.processor import Processor, Runtime, Topics
from callstream_router.settings import RouterSettings
from callstream_router.site_config import router_configs

log = logging.getLogger(__name__)

TICKS = "router.ticks"
TICKS_RETENTION_S = 3600.0  # a tick is worth nothing once the next one is there
# Passed over by the consumer, undecoded (kafka/pass_over.py): of `agents` all but the agents made available
# (agents_input), of `ari.command-results` the successes (from_command_result).
AGENTS_WANTED = hinted({AgentState.AVAILABLE.value})
RESULTS_WANTED = hinted(set(get_args(AriCommandResult.model_fields["outcome"].annotation)) - {"ok"})


def origin_of(event: EventT[Any]) -> str:
    return ids.position(event.message.topic, event.message.partition, event.message.offset)


def time_of(event: EventT[Any]) -> datetime:
    """The record's timestamp: the input's `now`, the same on every re-processing (so are its outputs)."""
    return datetime.fromtimestamp(event.message.timestamp, UTC)


def ari_input(body: object, origin: str, now: datetime) -> RouterInput | None:
    if isinstance(body, RawAriEvent):
        return parse_ari_event(body.data, origin)
    if isinstance(body, GatewaySnapshot):
        return from_snapshot(body, origin)
    if isinstance(body, GatewayEntityChanged):
        return from_entity_changed(body, origin, now)
    return None  # gateway.connected / disconnected: the snapshot that follows is what matters


def agents_input(body: object, origin: str) -> RouterInput | None:
    if isinstance(body, AgentStateChanged) and body.state == AgentState.AVAILABLE \
            and body.previous_state != AgentState.AVAILABLE:
        return AgentFreed(origin, body.agent_id, body.at)
    return None


def cms_input(body: object, origin: str) -> RouterInput | None:
    if isinstance(body, TransferBlind | TransferAttendedStart | TransferAttendedFinish):
        return CmsTransfer(origin, body)
    return None  # agent and campaign commands: agent-state's and the dialer's


async def open_runtime(settings: RouterSettings, stack: AsyncExitStack) -> Runtime:
    """SQL (migrations applied, configuration read) and Redis, each closed by `stack` in reverse."""
    pool = await create_pool(settings)
    stack.push_async_callback(pool.close)
    async with pool.acquire() as conn:
        for component, folder in (("common", COMMON_MIGRATIONS), (CONFIG_COMPONENT, CONFIG_MIGRATIONS)):
            await apply_migrations(conn, component, load_migrations(folder), service=settings.service)
        site = await load_config(conn, settings.tenant)
    redis = create_redis(settings)
    stack.push_async_callback(redis.aclose)
    configs = router_configs(site, settings)
    log.info("configuration loaded", extra={"pbxs": len(configs), "queues": len(site.queues)})
    return Runtime(pool, Availability(redis, settings.tenant), configs)


def build(settings: RouterSettings) -> CallstreamApp:
    overrides: dict[str, Any] = {"broker_session_timeout": settings.session_timeout_s}
    if settings.datadir:
        overrides["datadir"] = settings.datadir
    app = create_app(settings, web_port=settings.web_port or None, **overrides)
    ari = source_topic(app, settings, TopicName.ARI_EVENTS)
    agents = source_topic(app, settings, TopicName.AGENTS)
    cms = source_topic(app, settings, TopicName.CMS_COMMANDS)
    results = source_topic(app, settings, TopicName.ARI_COMMAND_RESULTS)
    ticks = app.topic(topic_name(TICKS, settings.topic_prefix), key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw", partitions=settings.pbx_partitions,
                      retention=TICKS_RETENTION_S, internal=True)
    # bytes in, bytes out (faust picks the raw serializer for bytes types): stored.py encodes the values.
    states: Any = app.Table("router-state", key_type=bytes, value_type=bytes, partitions=settings.pbx_partitions)

    async def send(topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Awaitable[object]:
        delivery: Awaitable[object] = await app.producer.send(topic, key, value, None, None, headers)
        return delivery

    # The worker stops when a state cannot be stored; no offset is committed before the stores (pending_stores.py).
    stores = PendingStores(on_failure=lambda exc: asyncio.ensure_future(app.crash(exc)), write_context=current_event)
    app.commit_barriers.append(stores.settle)
    processor = Processor(
        states, send, Topics(commands=topic_name(TopicName.ARI_COMMANDS, settings.topic_prefix),
                             calls=topic_name(TopicName.CALLS, settings.topic_prefix)),
        tenant=settings.tenant, producer=settings.producer_id, partitions=settings.pbx_partitions,
        emit_commands=settings.emit_commands, generation=lambda: int(app.consumer_generation_id), stores=stores)
    service = settings.service
    backlog = Backlog(settings.deadline_backlog_slack)
    ari_topic = ari.get_topic_name()

    async def resources() -> None:
        # Held open for the worker's life; faust cancels the task at shutdown and the stack closes in reverse.
        async with AsyncExitStack() as stack:
            processor.start(await open_runtime(settings, stack))
            freeze_startup_heap()
            log.info("router ready")
            await asyncio.Event().wait()

    app.task(resources)

    def read(partition: int, offset: int) -> None:
        backlog.processed(partition, offset)

    @app.agent(ari)
    async def on_ari(stream: StreamT[Any]) -> None:
        async for message, event in decoded(app, stream, topic=TopicName.ARI_EVENTS, service=service,
                                            wanted=ari_types(ARI_TYPES), on_passed_over=read):
            origin, now = origin_of(event), time_of(event)
            await processor.handle(event.message.partition, message.pbx_id, now,
                                   ari_input(message.body, origin, now), causation=origin)
            read(event.message.partition, event.message.offset)

    @app.agent(agents)
    async def on_agents(stream: StreamT[Any]) -> None:
        async for message, event in decoded(app, stream, topic=TopicName.AGENTS, service=service,
                                            wanted=AGENTS_WANTED):
            origin = origin_of(event)
            await processor.handle(event.message.partition, message.pbx_id, time_of(event),
                                   agents_input(message.body, origin), causation=origin)

    @app.agent(cms)
    async def on_cms(stream: StreamT[Any]) -> None:
        async for message, event in decoded(app, stream, topic=TopicName.CMS_COMMANDS, service=service):
            origin = origin_of(event)
            await processor.handle(event.message.partition, message.pbx_id, time_of(event),
                                   cms_input(message.body, origin), causation=origin)

    @app.agent(results)
    async def on_results(stream: StreamT[Any]) -> None:
        async for message, event in decoded(app, stream, topic=TopicName.ARI_COMMAND_RESULTS, service=service,
                                            wanted=RESULTS_WANTED):
            body = message.body
            if isinstance(body, AriCommandResult):
                origin = origin_of(event)
                await processor.handle(event.message.partition, message.pbx_id, time_of(event),
                                       from_command_result(body, origin), causation=origin)

    @app.agent(ticks)
    async def on_tick(stream: StreamT[Any]) -> None:
        async for event in stream.events():
            await processor.tick(event.message.partition, time_of(event), causation=origin_of(event))

    async def tick() -> None:
        if not processor.ready:
            return
        name = ticks.get_topic_name()
        consumer = app.consumer
        committed = getattr(consumer, "_committed_offset", {})  # faust's; see Backlog.behind
        for tp in app.assignor.assigned_actives():
            if tp.topic != name:
                continue
            events_tp = TP(ari_topic, tp.partition)
            if backlog.behind(tp.partition, consumer.highwater(events_tp), committed.get(events_tp)):
                metrics.ROUTER_TICKS_HELD.inc()
                continue  # its deadlines wait until the events that may cancel them are read (backlog.py)
            await ticks.send(key=None, value=b"", partition=tp.partition)

    app.timer(interval=settings.tick_interval_s)(tick)

    return app
