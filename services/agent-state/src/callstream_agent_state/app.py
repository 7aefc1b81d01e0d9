"""The agent-state faust app: the handler registry, in one place.

| source | handler | machine inputs |
|---|---|---|
| `cms.commands` | `on_cms` | agent login, logout, pause, unpause, end-wrapup (other commands are not ours) |
| `calls` | `on_call` | call events, to the agents named and the agents the call was offered to |
| `ari.events` | `on_ari` | EndpointStateChange and gateway.snapshot endpoints, as EndpointRegistration |
| `agent-state.ticks` (internal) | `on_tick` | due_timers: wrap-up ends, lapsed reservations |
| `agents` | `on_history` | none: the sessions and state intervals in SQL, from the worker's own events |

Tables and co-partitioning: the agents' states are keyed by partition and agent id (stored.state_key), and a
table's changelog partition is the partition of the input being processed, and every source topic is keyed by
pbx_id with the same number of partitions. An agent belongs to one PBX, so all its inputs, and its state, live
in the PBX's partition; the worker that owns the partition owns the agent. The timer cannot write tables (it is
no stream): it sends one tick per owned partition to the internal ticks topic, which is co-partitioned too, and
the tick's handler runs the deadlines of that partition's agents.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from collections.abc import Awaitable
from typing import Any

from faust.types import EventT, StreamT

from callstream_common.heap import freeze_startup_heap
from callstream_common.kafka.changelog_hold import ChangelogHold
from callstream_common.kafka.faust_app import (
    CallstreamApp,
    create_app,
    decoded,
    decoded_batches,
    log_end_of,
    source_topic,
)
from callstream_common.kafka.pass_over import ari_types
from callstream_common.messages.agents import AgentLoggedIn, AgentLoggedOut, AgentStateChanged
from callstream_common.messages.ari import GatewaySnapshot, RawAriEvent
from callstream_common.topics import TopicName, topic_name

from callstream_agent_state import history
from callstream_agent_state.positions import Position
from callstream_agent_state.processor import Processor, Tables
from callstream_agent_state.routing import REGISTRATION_EVENT, ari_registrations, snapshot_registrations
from callstream_agent_state.runtime import open_runtime
from callstream_agent_state.settings import AgentStateSettings

log = logging.getLogger(__name__)

TICKS = "agent-state.ticks"
TICKS_RETENTION_S = 3600.0  # a tick is worth nothing once the next one is there
FETCH_BATCHING = (16 * 1024, 25)  # (fetch.min.bytes, fetch.max.wait.ms)
# The history projection takes up to this many events per transaction, waiting at most this long for them.
HISTORY_BATCH = 500
HISTORY_WITHIN_S = 0.25


def position_of(event: EventT[Any]) -> Position:
    return Position(event.message.topic, event.message.partition, event.message.offset)


def time_of(event: EventT[Any]) -> datetime:
    """The record's timestamp: the input's `now`, the same on every re-processing (so are its outputs)."""
    return datetime.fromtimestamp(event.message.timestamp, UTC)


def build(settings: AgentStateSettings) -> CallstreamApp:
    overrides: dict[str, Any] = {"broker_session_timeout": settings.session_timeout_s}
    if settings.datadir:
        overrides["datadir"] = settings.datadir
    # Fetches of up to 25 ms or 16 KB instead of one per arriving record: agent-state is not on the offer path
    # (the router reserves agents in Redis itself), and in bench-routing this took its CPU from 32 to 25 s and
    # the broker's from 19 to 16 s over the 70 s of load (docs/acd.md, session 3).
    app = create_app(settings, web_port=settings.web_port or None, fetch_batching=FETCH_BATCHING, **overrides)
    cms = source_topic(app, settings, TopicName.CMS_COMMANDS)
    calls = source_topic(app, settings, TopicName.CALLS)
    agents = source_topic(app, settings, TopicName.AGENTS)
    ari = source_topic(app, settings, TopicName.ARI_EVENTS)
    ticks = app.topic(topic_name(TICKS, settings.topic_prefix), key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw", partitions=settings.pbx_partitions,
                      retention=TICKS_RETENTION_S, internal=True)

    def table(name: str) -> Any:
        # bytes in, bytes out (faust picks the raw serializer for bytes types): stored.py encodes the values.
        return app.Table(name, key_type=bytes, value_type=bytes, partitions=settings.pbx_partitions)

    tables = Tables(states=table("agent-states"), offered=table("call-offered"),
                    endpoints=table("endpoint-registrations"), agents_of_partition=table("partition-agents"),
                    endpoint_agents=table("endpoint-agents"))

    async def send(topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Awaitable[object]:
        delivery: Awaitable[object] = await app.producer.send(topic, key, value, None, None, headers)
        return delivery

    # The handlers do not wait for their events' acknowledgements; their table writes do (changelog_hold.py). A
    # failed acknowledgement stops the worker; no offset is committed before the held writes are handed over.
    def release(record: Any) -> None:
        producer: Any = app.producer  # the factory's producer (faust_app._IdempotentProducer)
        producer.send_now(record)

    hold = ChangelogHold(release, on_failure=lambda exc: asyncio.ensure_future(app.crash(exc)))
    app.changelog_hold = hold
    app.commit_barriers.append(hold.settle)
    processor = Processor(tables, send, tenant=settings.tenant, producer=settings.producer_id,
                          agents_topic=topic_name(TopicName.AGENTS, settings.topic_prefix),
                          partitions=settings.pbx_partitions,
                          generation=lambda: int(app.consumer_generation_id), hold=hold)
    service = settings.service
    log_end = log_end_of(app)  # the projection's check for positions left by a deleted topic

    async def resources() -> None:
        # Held open for the worker's life; faust cancels the task at shutdown and the stack closes in reverse.
        async with AsyncExitStack() as stack:
            try:
                runtime = await open_runtime(settings, stack)
            except Exception as exc:
                # Without its resources the worker could only hold its partitions idle: stop it instead.
                await app.crash(exc)
                raise
            processor.start(runtime)
            freeze_startup_heap()
            log.info("agent-state ready")
            await asyncio.Event().wait()

    app.task(resources)

    @app.agent(cms)
    async def on_cms(stream: StreamT[Any]) -> None:
        async for message, event in decoded(app, stream, topic=TopicName.CMS_COMMANDS, service=service):
            await processor.on_cms(position_of(event), time_of(event), message.body)

    @app.agent(calls)
    async def on_call(stream: StreamT[Any]) -> None:
        async for message, event in decoded(app, stream, topic=TopicName.CALLS, service=service):
            await processor.on_call(position_of(event), time_of(event), message.body)

    @app.agent(ari)
    async def on_ari(stream: StreamT[Any]) -> None:
        async for message, event in decoded(app, stream, topic=TopicName.ARI_EVENTS, service=service,
                                            wanted=ari_types({REGISTRATION_EVENT})):
            body = message.body
            if isinstance(body, RawAriEvent):
                registrations = ari_registrations(body, None)
            elif isinstance(body, GatewaySnapshot):
                registrations = snapshot_registrations(body)
            else:
                continue
            await processor.on_registrations(position_of(event), time_of(event), registrations)

    @app.agent(agents)
    async def on_history(stream: StreamT[Any]) -> None:
        # The sessions and state intervals in SQL, from this worker's own events, in batches (history.py).
        async for batch in decoded_batches(app, stream, topic=TopicName.AGENTS, service=service,
                                           max_records=HISTORY_BATCH, within_s=HISTORY_WITHIN_S):
            records = [history.Recorded(message.tenant, event.message.topic, event.message.partition,
                                        event.message.offset, message.causation_id, message.body)
                       for message, event in batch
                       if isinstance(message.body, AgentLoggedIn | AgentLoggedOut | AgentStateChanged)]
            runtime = await processor.runtime()
            await history.project_batch(runtime.pool, records, log_end=log_end)

    @app.agent(ticks)
    async def on_tick(stream: StreamT[Any]) -> None:
        async for event in stream.events():
            await processor.on_tick(position_of(event), time_of(event))

    async def tick() -> None:
        if not processor.ready:
            return
        name = ticks.get_topic_name()
        for tp in app.assignor.assigned_actives():
            if tp.topic == name:
                await ticks.send(key=None, value=b"", partition=tp.partition)

    app.timer(interval=settings.tick_interval_s)(tick)

    return app
