"""Kafka plumbing against the real broker: topics, produce/consume/commit, dead letters, partitioning."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from callstream_common.codec import Message, encode, new_envelope
from callstream_common.kafka.admin import TopicMismatch, ensure_topics, plan_topics, topic_partitions
from callstream_common.kafka.consumer import BatchConsumeLoop, ConsumeLoop, Record, Reject, consumer_options
from callstream_common.kafka.producer import Producer
from callstream_common.messages.calls import CallQueued
from callstream_common.partitioner import partition_for
from callstream_common.settings import ServiceSettings
from callstream_common.topics import TopicName, dlq_name, topic_name
from conftest import ROOT
from helpers import committed_total, until

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def call(n: int, queue: str = "sales") -> CallQueued:
    return CallQueued(call_id=f"call-{n}", at=NOW, queue_id=queue, channel_id=f"17327.{n}", waiting_since=NOW)


async def create(settings: ServiceSettings) -> None:
    await ensure_topics(settings.kafka_bootstrap, plan_topics(
        settings.topic_prefix, pbx_partitions=settings.pbx_partitions, tenant_partitions=settings.tenant_partitions))


async def test_topics_are_created_once_with_the_catalogue_partition_counts(settings: ServiceSettings) -> None:
    planned = plan_topics(settings.topic_prefix, pbx_partitions=3, tenant_partitions=2)
    created = await ensure_topics(settings.kafka_bootstrap, planned)
    assert sorted(created) == sorted(t.name for t in planned)
    counts = await topic_partitions(settings.kafka_bootstrap, [t.name for t in planned])
    assert counts == {t.name: t.partitions for t in planned}
    assert counts[topic_name(TopicName.DIALER_EVENTS, settings.topic_prefix)] == 2
    assert await ensure_topics(settings.kafka_bootstrap, planned) == []  # idempotent


async def test_a_topic_with_the_wrong_partition_count_is_reported(settings: ServiceSettings) -> None:
    calls = topic_name(TopicName.CALLS, settings.topic_prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(calls, 5, 1)])
    finally:
        await admin.close()
    with pytest.raises(TopicMismatch, match=f"{calls} has 5 partitions, the catalogue wants 3"):
        await create(settings)


@asynccontextmanager
async def running_loop(settings: ServiceSettings, handler: Any, group: str, *,
                       loop_class: type[ConsumeLoop] = ConsumeLoop, **options: Any) -> AsyncIterator[ConsumeLoop]:
    """A consume loop (`loop_class`) over `calls` for `group`, running until the block ends; then stopped, with
    its consumer and its dead-letter producer."""
    calls = topic_name(TopicName.CALLS, settings.topic_prefix)
    producer = Producer(settings.kafka_bootstrap, service="test", client_id="test-dlq")
    await producer.start()
    consumer = AIOKafkaConsumer(calls, **consumer_options(settings.kafka_bootstrap, group, "test", 100))
    await consumer.start()
    loop = loop_class(consumer, producer, topics={calls: TopicName.CALLS}, handler=handler, service="test",
                      **{"handler_attempts": 2, **options})
    task = asyncio.create_task(loop.run())
    try:
        yield loop
    finally:
        loop.stop()
        await task
        await consumer.stop()
        await producer.stop()


async def dead_letters(settings: ServiceSettings, topic: str, group: str, count: int) -> list[Any]:
    """The first `count` records of `topic`'s dead-letter topic."""
    dlq = AIOKafkaConsumer(dlq_name(topic), **consumer_options(settings.kafka_bootstrap, f"{group}-dlq", "t", 10))
    await dlq.start()
    try:
        records: list[Any] = []
        while len(records) < count:
            fetched = await dlq.getmany(timeout_ms=5000)
            assert fetched, "dead letters did not arrive"
            records += [r for rs in fetched.values() for r in rs]
        return records
    finally:
        await dlq.stop()


async def committed(settings: ServiceSettings, group: str, topic: str) -> int:
    return await committed_total(settings.kafka_bootstrap, group, topic, settings.pbx_partitions)


async def test_produce_consume_commit(settings: ServiceSettings) -> None:
    await create(settings)
    calls = topic_name(TopicName.CALLS, settings.topic_prefix)
    sent = [new_envelope(call(i), tenant=settings.tenant, producer="test", pbx_id=f"pbx-{i % 4}")
            for i in range(60)]
    async with Producer(settings.kafka_bootstrap, service="test", client_id="test") as producer:
        for message in sent:
            await producer.send(calls, message)

    received: list[Message] = []

    async def handler(message: Message, record: Record) -> None:
        received.append(message)

    group = f"{settings.topic_prefix}-g"
    async with running_loop(settings, handler, group):
        await until(lambda: len(received) >= 60, what="60 messages")
        assert await until(lambda: _eq(committed(settings, group, calls), 60), what="all 60 committed")
    assert sorted(m.message_id for m in received) == sorted(m.message_id for m in sent)
    # Within a PBX (key), order is kept.
    for pbx in {m.pbx_id for m in sent}:
        assert [m.body.call_id for m in received if m.pbx_id == pbx] == \
               [m.body.call_id for m in sent if m.pbx_id == pbx]


async def _eq(value: object, expected: int) -> bool:
    return await value == expected  # type: ignore[misc]


async def test_poison_messages_are_dead_lettered_and_the_consumer_carries_on(settings: ServiceSettings) -> None:
    await create(settings)
    calls = topic_name(TopicName.CALLS, settings.topic_prefix)
    good_before = new_envelope(call(1), tenant=settings.tenant, producer="test", pbx_id="pbx-1")
    rejected = new_envelope(call(2, queue="closed"), tenant=settings.tenant, producer="test", pbx_id="pbx-1")
    good_after = new_envelope(call(3), tenant=settings.tenant, producer="test", pbx_id="pbx-1")
    headers, _ = encode(good_before)
    async with Producer(settings.kafka_bootstrap, service="test", client_id="test") as producer:
        await producer.send(calls, good_before)
        await producer.send_raw(calls, key="pbx-1", value=b"\x00 not json", headers=headers)
        await producer.send(calls, rejected)
        await producer.send(calls, good_after)

    handled: list[str] = []

    async def handler(message: Message, record: Record) -> None:
        if message.body.queue_id == "closed":
            raise Reject("queue 'closed' does not exist")
        handled.append(message.body.call_id)

    group = f"{settings.topic_prefix}-g"
    async with running_loop(settings, handler, group):
        await until(lambda: len(handled) >= 2, what="both good messages")
        await until(lambda: _eq(committed(settings, group, calls), 4), what="all 4 committed")
    assert handled == ["call-1", "call-3"]

    records = await dead_letters(settings, calls, group, 2)
    by_offset = {int(dict(r.headers)["dlq.offset"]): r for r in records}
    assert set(by_offset) == {1, 2}
    poison = dict(by_offset[1].headers)
    assert poison["dlq.reason"].startswith(b"undecodable: invalid call.queued v1")
    assert poison["dlq.topic"] == calls.encode() and poison["dlq.partition"] == str(by_offset[1].partition).encode()
    assert by_offset[1].value == b"\x00 not json"  # the record itself, unchanged
    assert poison["message_id"] == good_before.message_id.encode()  # original headers kept
    assert dict(by_offset[2].headers)["dlq.reason"] == b"rejected: queue 'closed' does not exist"


async def test_a_batch_loop_hands_over_whole_fetches_and_isolates_the_record_at_fault(
        settings: ServiceSettings) -> None:
    """BatchConsumeLoop: 40 good events, one undecodable record and one the handler rejects. The batches the
    handler sees hold many records; the rejected one fails its whole batch, which is then handled one record at a
    time: that record alone is dead-lettered, every good one handled, everything committed."""
    await create(settings)
    calls = topic_name(TopicName.CALLS, settings.topic_prefix)
    good = [new_envelope(call(n), tenant=settings.tenant, producer="test", pbx_id="pbx-1") for n in range(40)]
    rejected = new_envelope(call(99, queue="closed"), tenant=settings.tenant, producer="test", pbx_id="pbx-1")
    headers, _ = encode(good[0])
    async with Producer(settings.kafka_bootstrap, service="test", client_id="test") as producer:
        for message in good[:20]:
            await producer.send(calls, message)
        await producer.send_raw(calls, key="pbx-1", value=b"\x00 not json", headers=headers)
        await producer.send(calls, rejected)
        for message in good[20:]:
            await producer.send(calls, message)

    sizes: list[int] = []
    handled: list[str] = []

    async def handler(batch: Sequence[tuple[Message, Record]]) -> None:
        sizes.append(len(batch))
        if any(message.body.queue_id == "closed" for message, _ in batch):
            raise Reject("queue 'closed' does not exist")
        handled.extend(message.body.call_id for message, _ in batch)

    group = f"{settings.topic_prefix}-batches"
    async with running_loop(settings, handler, group, loop_class=BatchConsumeLoop):
        await until(lambda: _eq(committed(settings, group, calls), 42), what="all 42 committed")
    assert sorted(handled) == sorted(m.body.call_id for m in good)  # each good one once: none lost, none twice
    assert max(sizes) > 1  # whole fetches, not records one by one

    records = await dead_letters(settings, calls, group, 2)
    reasons = sorted(dict(r.headers)["dlq.reason"].decode() for r in records)
    assert reasons[0] == "rejected: queue 'closed' does not exist" and reasons[1].startswith("undecodable: ")


async def test_a_batch_loop_retries_a_transient_failure_without_committing_or_dead_lettering(
        settings: ServiceSettings) -> None:
    """PostgreSQL (say) unreachable for the first three attempts: the batch is retried whole, nothing is
    committed meanwhile, nothing is dead-lettered, and once it passes every record is handled and committed."""
    await create(settings)
    calls = topic_name(TopicName.CALLS, settings.topic_prefix)
    sent = [new_envelope(call(n), tenant=settings.tenant, producer="test", pbx_id="pbx-2") for n in range(10)]
    async with Producer(settings.kafka_bootstrap, service="test", client_id="test") as producer:
        for message in sent:
            await producer.send(calls, message)

    failures_left = [3]
    committed_while_failing: list[int] = []
    handled: list[str] = []
    group = f"{settings.topic_prefix}-transient"

    async def handler(batch: Sequence[tuple[Message, Record]]) -> None:
        if failures_left[0] > 0:
            failures_left[0] -= 1
            committed_while_failing.append(await committed(settings, group, calls))
            raise ConnectionRefusedError("database unreachable")
        handled.extend(message.body.call_id for message, _ in batch)

    async with running_loop(settings, handler, group, loop_class=BatchConsumeLoop, handler_attempts=3,
                            max_backoff_s=0.2):
        await until(lambda: _eq(committed(settings, group, calls), 10), what="all 10 committed")
    assert committed_while_failing == [0, 0, 0]
    assert sorted(handled) == sorted(m.body.call_id for m in sent)
    dlq = AIOKafkaConsumer(dlq_name(calls), **consumer_options(settings.kafka_bootstrap, f"{group}-dlq", "t", 10))
    await dlq.start()
    try:
        ends = await dlq.end_offsets([TopicPartition(dlq_name(calls), p) for p in range(settings.pbx_partitions)])
    finally:
        await dlq.stop()
    assert sum(ends.values()) == 0  # an outage delays work, never dead-letters it


async def test_partitioner_agrees_with_kafkas_java_producer(settings: ServiceSettings) -> None:
    """1,000 keys produced by Kafka's own console producer (the Java client, no partition given) land on the
    partitions partition_for computes."""
    topic = f"{settings.topic_prefix}.partitioning"
    partitions = 7  # prime, and unlike the catalogue's counts, so a coincidence cannot pass
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    keys = [f"pbx-{i:04d}" if i % 3 else f"acme/tenant-{i}-\u00fc" for i in range(1000)]
    java = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "tools/stack/stack.py"), "kafka-class", "kafka.tools.ConsoleProducer",
        "--bootstrap-server", settings.kafka_bootstrap, "--topic", topic,
        "--property", "parse.key=true", "--property", "key.separator=|", "--producer-property", "acks=all",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(
        java.communicate("".join(f"{key}|{i}\n" for i, key in enumerate(keys)).encode()), timeout=180)
    assert java.returncode == 0, output.decode(errors="replace")[-2000:]

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    landed: dict[str, int] = {}
    try:
        while len(landed) < len(keys):
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, f"only {len(landed)} of {len(keys)} records came back"
            for records in batch.values():
                landed.update({r.key.decode(): r.partition for r in records})
    finally:
        await consumer.stop()
    assert len(set(landed.values())) == partitions  # the keys spread over every partition
    disagreements = {k: (p, partition_for(k, partitions)) for k, p in landed.items() if partition_for(k, partitions) != p}
    assert disagreements == {}
