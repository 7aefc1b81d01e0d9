"""The consume loop for aiokafka consumers: decode, validate, handle, then commit.

Used where a service drives aiokafka itself (the stats aggregator, the router's calls projector, tools, tests);
the stream processors get the same steps from faust (see faust_app.py). ConsumeLoop hands the handler one record
at a time, BatchConsumeLoop a whole fetch. The rules:
- offsets are committed only after the handler's effects are done (at-least-once), per partition, per batch;
- a record that does not decode, or that the handler rejects, goes to `<topic>.dlq` with the reason, and the
  loop carries on with the next one;
- a transient failure (Kafka, PostgreSQL or Redis unreachable) is retried with backoff, without committing,
  for as long as it lasts: an outage must delay work, never dead-letter it;
- any other handler error is retried a few times, then dead-lettered with the error as the reason;
- in-flight work is bounded by the batch size: the next batch is fetched after this one is committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

import asyncpg
import redis.exceptions
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from callstream_common import metrics
from callstream_common.codec import Codec, DecodeError, Message
from callstream_common.kafka.dlq import dead_letter
from callstream_common.kafka.producer import Producer
from callstream_common.topics import TopicName

log = logging.getLogger(__name__)

Record: TypeAlias = Any  # aiokafka's ConsumerRecord[bytes, bytes] (aiokafka ships no type information)
Handler = Callable[[Message, Record], Awaitable[None]]

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    KafkaError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class Reject(Exception):
    """Raised by a handler for a message that can never be processed; the reason goes to the DLQ."""


class Stopping(Exception):
    """The loop was asked to stop while a record was being retried: that record is left uncommitted."""


def consumer_options(bootstrap: str, group_id: str, client_id: str, batch_size: int) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,  # we commit after the effects, never on a timer
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": batch_size,
    }


class ConsumeLoop:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: Producer,
        *,
        topics: Mapping[str, TopicName],
        handler: Handler,
        service: str,
        codec: Codec | None = None,
        batch_size: int = 500,
        handler_attempts: int = 3,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._topics = topics  # physical name -> logical topic of the contract
        self._handler = handler
        self._service = service
        self._codec = codec or Codec()
        self._batch_size = batch_size
        self._handler_attempts = handler_attempts
        self._max_backoff_s = max_backoff_s
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=200, max_records=self._batch_size)
            for tp, records in batches.items():
                done = await self._process_partition(tp, records)
                if done is not None:
                    await self._consumer.commit({tp: done + 1})
                await self._report_lag(tp)

    async def _process_partition(self, tp: TopicPartition, records: list[Record]) -> int | None:
        """Handle records in order; return the offset of the last one fully handled."""
        last: int | None = None
        metrics.IN_FLIGHT.labels(self._service).set(len(records))
        for record in records:
            try:
                await self._process(record)
            except Stopping:
                # Rewind so that a restart (or a later fetch) sees the record again.
                self._consumer.seek(tp, record.offset)
                break
            last = record.offset
        metrics.IN_FLIGHT.labels(self._service).set(0)
        return last

    async def _process(self, record: Record) -> None:
        message = await self._decode(record)
        if message is not None:
            await self._handle(message, record)

    async def _decode(self, record: Record) -> Message | None:
        """The record's message; None when it does not decode (it is dead-lettered)."""
        try:
            message = self._codec.decode(self._topics[record.topic], record.headers, record.value)
        except DecodeError as exc:
            await self._dead_letter(record, f"undecodable: {exc}")
            return None
        metrics.MESSAGES_CONSUMED.labels(self._service, record.topic, message.type).inc()
        return message

    async def _handle(self, message: Message, record: Record) -> None:
        """Run the handler on one record (`_attempts`); what it cannot take is dead-lettered with the reason."""
        failure, seconds = await self._attempts(lambda: self._handler(message, record),
                                                f"{record.topic}@{record.offset}")
        if failure is not None:
            await self._dead_letter(record, failure)
            return
        metrics.HANDLER_LATENCY.labels(self._service, record.topic).observe(seconds)

    async def _attempts(self, run: Callable[[], Awaitable[None]], what: str) -> tuple[str | None, float]:
        """`run` until it succeeds: (None, how long the attempt that succeeded took). Transient failures are
        retried for as long as they last, other errors `handler_attempts` times; a Reject, or the last error,
        gives up: (the reason, 0)."""
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                await run()
                return None, time.perf_counter() - started
            except Reject as exc:
                return f"rejected: {exc}", 0.0
            except TRANSIENT_ERRORS as exc:
                log.warning("transient failure on %s (attempt %d): %r", what, attempt, exc)
            except Exception as exc:  # noqa: BLE001 - any handler bug must not stop the partition forever
                if attempt >= self._handler_attempts:
                    return f"handler failed {attempt} times: {exc!r}", 0.0
                log.exception("handler error on %s (attempt %d)", what, attempt)
            await self._backoff(attempt)

    async def _backoff(self, attempt: int) -> None:
        delay = min(self._max_backoff_s, 0.05 * 2 ** min(attempt, 10))
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
        except asyncio.TimeoutError:
            return
        raise Stopping

    async def _dead_letter(self, record: Record, reason: str) -> None:
        await dead_letter(
            self._producer.send_record, service=self._service, topic=record.topic, partition=record.partition,
            offset=record.offset, key=record.key, value=record.value, headers=list(record.headers),
            reason=reason,
        )

    async def _report_lag(self, tp: TopicPartition) -> None:
        end = self._consumer.highwater(tp)
        if end is not None:
            position = await self._consumer.position(tp)
            metrics.CONSUMER_LAG.labels(self._service, tp.topic, str(tp.partition)).set(max(0, end - position))


BatchHandler = Callable[[Sequence[tuple[Message, Record]]], Awaitable[None]]


class BatchConsumeLoop(ConsumeLoop):
    """The consume loop for handlers whose cost is per call, not per record (one SQL transaction per batch):
    each fetch, every partition's records in it, goes to the handler at once, in the order fetched.

    - records that do not decode are dead-lettered first; the rest are handled together;
    - a transient failure retries the whole batch for as long as it lasts;
    - any other failure (or a Reject) retries it a few times, then hands the batch's records to the handler one
      at a time, through the per-record path of ConsumeLoop: only the record at fault is dead-lettered;
    - then every partition of the fetch is committed.
    A batch can be handled more than once (a retry, the fallback, a redelivery after a rebalance): the handler
    must be idempotent per record, as every at-least-once handler must.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: Producer,
        *,
        topics: Mapping[str, TopicName],
        handler: BatchHandler,
        service: str,
        codec: Codec | None = None,
        batch_size: int = 500,
        handler_attempts: int = 3,
        max_backoff_s: float = 5.0,
    ) -> None:
        async def one_at_a_time(message: Message, record: Record) -> None:
            await handler([(message, record)])

        super().__init__(consumer, producer, topics=topics, handler=one_at_a_time, service=service, codec=codec,
                         batch_size=batch_size, handler_attempts=handler_attempts, max_backoff_s=max_backoff_s)
        self._batch_handler = handler

    async def run(self) -> None:
        while not self._stop.is_set():
            fetched: dict[TopicPartition, list[Record]] = await self._consumer.getmany(
                timeout_ms=200, max_records=self._batch_size)
            fetched = {tp: records for tp, records in fetched.items() if records}
            if not fetched:
                continue
            try:
                await self._process_batch([record for records in fetched.values() for record in records])
            except Stopping:
                for tp, records in fetched.items():  # seen again by a restart (or a later fetch)
                    self._consumer.seek(tp, records[0].offset)
                break
            await self._commit({tp: records[-1].offset + 1 for tp, records in fetched.items()})
            for tp in fetched:
                await self._report_lag(tp)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group moved these partitions elsewhere meanwhile: their next owner reads the batch again
            # from the last commit, and the handler's idempotence makes that harmless.
            log.warning("commit refused after a rebalance: the partitions' next owner re-reads the batch: %s", exc)

    async def _process_batch(self, records: list[Record]) -> None:
        batch: list[tuple[Message, Record]] = []
        for record in records:
            message = await self._decode(record)
            if message is not None:
                batch.append((message, record))
        if not batch:
            return
        metrics.IN_FLIGHT.labels(self._service).set(len(batch))
        try:
            handled = await self._try_batch(batch)
        finally:
            metrics.IN_FLIGHT.labels(self._service).set(0)
        if not handled:
            for message, record in batch:
                await self._handle(message, record)

    async def _try_batch(self, batch: list[tuple[Message, Record]]) -> bool:
        """True once the handler took the batch (`_attempts`); False when it must be handled one record at a
        time."""
        failure, seconds = await self._attempts(lambda: self._batch_handler(batch), f"a batch of {len(batch)}")
        if failure is not None:
            log.warning("batch of %d not taken (%s): handling its records one at a time", len(batch), failure)
            return False
        for topic in {record.topic for _, record in batch}:
            metrics.HANDLER_LATENCY.labels(self._service, topic).observe(seconds / len(batch))
        return True
