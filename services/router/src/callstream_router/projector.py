"""`python -m callstream_router.projector [--setting value ...]`: the `calls` and `call_legs` tables, from `calls`.

The router's history projection, in a process of its own rather than a stream of the routing worker: nobody
waits on it, and read inside the worker each of a call's five-odd events woke the worker's loop and held the
routing of the next call behind faust's per-record work and a SQL round trip (docs/acd.md, bench-routing).
Here an aiokafka consumer group of its own reads `calls` a fetch at a time (the broker holds a fetch up to
`fetch_wait_ms` to fill it) and applies each fetch in one transaction with its tracking positions
(projection.py), so a redelivered or replayed event writes nothing. More processes share the partitions; a
dead one's are taken over by the rest within the group's session timeout.

SIGTERM and SIGINT stop it between fetches: the fetch in hand is applied and committed first.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack

from aiokafka import AIOKafkaConsumer, TopicPartition

from callstream_common.codec import Message
from callstream_common.entry import serve
from callstream_common.kafka.admin import ensure_topics, plan_topics
from callstream_common.kafka.consumer import BatchConsumeLoop, Record, consumer_options
from callstream_common.kafka.producer import Producer
from callstream_common.messages.calls import CallEvent
from callstream_common.sql import apply_migrations, create_pool, load_migrations
from callstream_common.sql.migrations_runner import COMMON_MIGRATIONS
from callstream_common.topics import TopicName, spec, topic_name

from callstream_router import projection
from callstream_router.settings import ProjectorSettings

log = logging.getLogger(__name__)

GROUP = "router-projector"


def to_projected(batch: Sequence[tuple[Message, Record]]) -> list[projection.Projected]:
    """The batch's call events with their positions; other messages (none are expected on `calls`) and events
    without a PBX are passed over, their positions left to the next applied record."""
    return [projection.Projected(message.tenant, message.pbx_id, record.topic, record.partition, record.offset,
                                 message.body)
            for message, record in batch if isinstance(message.body, CallEvent) and message.pbx_id is not None]


class Projector:
    """Run with `await run()`, end with `stop()` (also before `run` has got going)."""

    def __init__(self, settings: ProjectorSettings) -> None:
        self.settings = settings
        self._stopped = asyncio.Event()
        self._loop: BatchConsumeLoop | None = None

    def stop(self) -> None:
        self._stopped.set()
        if self._loop is not None:
            self._loop.stop()

    async def run(self) -> None:
        s = self.settings
        calls = topic_name(TopicName.CALLS, s.topic_prefix)
        async with AsyncExitStack() as stack:
            pool = await create_pool(s)
            stack.push_async_callback(pool.close)
            async with pool.acquire() as conn:
                for component, folder in (("common", COMMON_MIGRATIONS),
                                          (projection.COMPONENT, projection.MIGRATIONS)):
                    await apply_migrations(conn, component, load_migrations(folder), service=s.service)
            await ensure_topics(s.kafka_bootstrap, plan_topics(
                s.topic_prefix, pbx_partitions=s.pbx_partitions, tenant_partitions=s.tenant_partitions,
                specs=[spec(TopicName.CALLS)]))
            producer = Producer(s.kafka_bootstrap, service=s.service, client_id=s.producer_id)
            await producer.start()
            stack.push_async_callback(producer.stop)
            consumer = AIOKafkaConsumer(calls, fetch_min_bytes=64 * 1024, fetch_max_wait_ms=s.fetch_wait_ms,
                                        **consumer_options(s.kafka_bootstrap, topic_name(GROUP, s.topic_prefix),
                                                           s.producer_id, s.batch_size))
            await consumer.start()
            stack.push_async_callback(consumer.stop)

            async def log_end(topic: str, partition: int) -> int:
                tp = TopicPartition(topic, partition)
                return int((await consumer.end_offsets([tp]))[tp])

            async def project(batch: Sequence[tuple[Message, Record]]) -> None:
                await projection.project_batch(pool, to_projected(batch), log_end=log_end)

            self._loop = BatchConsumeLoop(consumer, producer, topics={calls: TopicName.CALLS}, handler=project,
                                          service=s.service, batch_size=s.batch_size)
            if self._stopped.is_set():
                return
            log.info("router projector ready", extra={"group": topic_name(GROUP, s.topic_prefix)})
            await self._loop.run()


def main(argv: list[str] | None = None) -> int:
    return serve(ProjectorSettings, "router projector", argv, Projector)


if __name__ == "__main__":
    sys.exit(main())
