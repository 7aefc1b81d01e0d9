"""The worker consumer's offset bookkeeping (faust_app._Consumer), on a real faust app that is never started (no
broker): a record no handler processed is never counted as safe to commit, whichever way faust lost it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from faust.types import TP
from faust.types.tuples import Message

from callstream_common.kafka.faust_app import create_app
from callstream_common.settings import ServiceSettings

TOPIC = "t.calls"
PARTITION = TP(TOPIC, 1)


@pytest.fixture
def consumer() -> Iterator[Any]:
    app = create_app(ServiceSettings(service="unit", tenant="t", topic_prefix="t"))
    app.consumer_generation_id = 7
    app.topics.acking_topics.add(TOPIC)
    app.flow_control.resume()
    consumer = app.consumer
    consumer._committed_offset[PARTITION] = 100  # the next offset to read, as Kafka stores it
    yield consumer


def record(consumer: Any, offset: int, *, generation: int = 7) -> Message:
    message = Message(TOPIC, 1, offset, 0.0, 0, [], b"k", b"v", None, tp=PARTITION, generation_id=generation)
    message.tracked = True
    consumer._unacked_messages.add(message)
    return message


def test_processed_records_are_committed_up_to_the_first_hole(consumer: Any) -> None:
    for offset in (100, 101, 103):  # 102 never acked
        assert consumer.ack(record(consumer, offset))
    assert consumer._new_offset(PARTITION) == 102
    consumer._committed_offset[PARTITION] = 102
    assert consumer._new_offset(PARTITION) is None  # the hole is now at the head: no commit past it


def test_a_record_skipped_across_a_generation_change_is_not_acked(consumer: Any) -> None:
    # faust's stream skips (and acks) a buffered record of an older generation without processing it.
    stale = record(consumer, 100, generation=6)
    assert not consumer.ack(stale)
    assert stale.acked and stale not in consumer._unacked_messages  # a rebalance does not wait for it
    assert consumer.ack(record(consumer, 101))
    assert consumer._new_offset(PARTITION) is None


def test_a_record_skipped_while_the_flow_is_suspended_is_not_acked(consumer: Any) -> None:
    consumer.app.flow_control.suspend()
    assert not consumer.ack(record(consumer, 100))
    consumer.app.flow_control.resume()
    assert consumer.ack(record(consumer, 101))
    assert consumer._new_offset(PARTITION) is None
