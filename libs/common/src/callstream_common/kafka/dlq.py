"""Dead letters: a record that cannot be processed goes to `<topic>.dlq`, unchanged, with the reason.

The original key, value and headers are kept, so the record can be inspected and replayed as it was; the
`dlq.*` headers say why and where it came from. Nothing is dropped silently, and the consumer carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from callstream_common import metrics
from callstream_common.envelope import format_timestamp, utcnow
from callstream_common.topics import dlq_name

log = logging.getLogger(__name__)

H_REASON = "dlq.reason"
H_SOURCE_TOPIC = "dlq.topic"
H_SOURCE_PARTITION = "dlq.partition"
H_SOURCE_OFFSET = "dlq.offset"
H_SERVICE = "dlq.service"
H_AT = "dlq.at"
MAX_REASON_BYTES = 4000

# (topic, key, value, headers) -> awaits Kafka's acknowledgement. Both the aiokafka Producer and a faust
# app's producer are adapted to it, so there is one dead-letter path.
SendRecord = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[Any]]


def dlq_headers(
    original: Sequence[tuple[str, bytes]], *, reason: str, topic: str, partition: int, offset: int, service: str
) -> list[tuple[str, bytes]]:
    """The original headers followed by the dead-letter ones (a previous dlq.* set is replaced)."""
    kept = [(name, value) for name, value in original if not name.startswith("dlq.")]
    return kept + [
        (H_REASON, reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]),
        (H_SOURCE_TOPIC, topic.encode()),
        (H_SOURCE_PARTITION, str(partition).encode()),
        (H_SOURCE_OFFSET, str(offset).encode()),
        (H_SERVICE, service.encode()),
        (H_AT, format_timestamp(utcnow()).encode()),
    ]


def reason_class(reason: str) -> str:
    """A bounded label for metrics: the reason's text before its first colon."""
    return reason.split(":", 1)[0][:60]


async def dead_letter(
    send: SendRecord,
    *,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    reason: str,
) -> None:
    """Write the record to the dead-letter topic and wait for Kafka to acknowledge it."""
    await send(
        dlq_name(topic),
        key,
        value,
        dlq_headers(headers, reason=reason, topic=topic, partition=partition, offset=offset, service=service),
    )
    metrics.DEAD_LETTERS.labels(service, topic, reason_class(reason)).inc()
    log.warning("dead-lettered %s[%d]@%d: %s", topic, partition, offset, reason)
