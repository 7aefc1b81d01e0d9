"""faust pauses partitions in its own bookkeeping only; the worker consumer (faust_app._Consumer) also pauses, in
aiokafka, the table changelog partitions faust pauses, so that the worker does not fetch its own changelog writes
(fetched and never consumed, they held every fetch for aiokafka's prefetch backoff: docs/acd.md "Session 7").
On a real faust app that is never started and a real aiokafka consumer that is never connected."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from callstream_common.kafka.faust_app import create_app
from callstream_common.settings import ServiceSettings


async def test_the_changelog_partitions_faust_pauses_are_not_fetched_and_its_streams_keep_their_flow() -> None:
    app = create_app(ServiceSettings(service="unit", tenant="t", topic_prefix="t"))
    changelog = app.Table("states", key_type=bytes, value_type=bytes, partitions=2).changelog_topic.get_topic_name()
    stream = "t.calls"
    kafka = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")  # assigned by hand, never started
    kafka.assign([TopicPartition(changelog, 0), TopicPartition(changelog, 1), TopicPartition(stream, 0)])
    thread = app.consumer._thread
    thread._consumer = kafka
    try:
        # As at an assignment: faust pauses everything, then resumes the stream partitions after recovery.
        app.consumer.pause_partitions({TP(changelog, 0), TP(changelog, 1), TP(stream, 0)})
        app.consumer.resume_partitions({TP(stream, 0)})
        assert kafka.paused() == {TopicPartition(changelog, 0), TopicPartition(changelog, 1)}
        # Recovery reads a changelog partition: fetched again while faust has it resumed.
        app.consumer.resume_partitions({TP(changelog, 1)})
        assert kafka.paused() == {TopicPartition(changelog, 0)}
        # A stream partition faust pauses keeps being fetched: faust's flow control is the streams' own.
        app.consumer.pause_partitions({TP(stream, 0)})
        assert TopicPartition(stream, 0) not in kafka.paused()
    finally:
        await kafka.stop()
