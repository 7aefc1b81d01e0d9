"""The one way callstream produces to Kafka: idempotent, acks=all, bounded, measured.

Idempotence with acks=all means a retried send after a broker hiccup is written once, in order, within a
partition. Sends are bounded by a semaphore: a producer that Kafka cannot keep up with makes its caller
wait instead of growing memory without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from callstream_common import metrics
from callstream_common.codec import Message, encode
from callstream_common.partitioner import key_bytes


def producer_options(bootstrap: str, client_id: str, request_timeout_ms: int = 30_000,
                     linger_ms: int = 0) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        # 0: latency first (a command or a call event should not wait for company). Records sent while a
        # request is in flight still share the next batch; bulk senders use send_batch.
        "linger_ms": linger_ms,
        "max_batch_size": 256 * 1024,
        # Also how long a batch may wait for a reachable broker before aiokafka fails it.
        "request_timeout_ms": request_timeout_ms,
    }


class Producer:
    """An AIOKafkaProducer with the project's settings, metrics and a bound on unacknowledged sends."""

    def __init__(self, bootstrap: str, *, service: str, client_id: str, max_in_flight: int = 10_000,
                 request_timeout_ms: int = 30_000) -> None:
        self._service = service
        self._kafka = AIOKafkaProducer(**producer_options(bootstrap, client_id, request_timeout_ms))
        self._slots = asyncio.Semaphore(max_in_flight)

    async def start(self) -> None:
        await self._kafka.start()

    async def stop(self) -> None:
        # flush() first: stop() alone would also flush, but an explicit flush states the intent that
        # nothing accepted by send() is dropped at shutdown.
        await self._kafka.flush()
        await self._kafka.stop()

    async def __aenter__(self) -> Producer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def kafka(self) -> AIOKafkaProducer:
        return self._kafka

    async def send_raw(
        self,
        topic: str,
        *,
        key: str | bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> RecordMetadata:
        """Send one record and wait for Kafka's acknowledgement."""
        future = await self.enqueue_raw(topic, key=key, value=value, headers=headers, partition=partition)
        return await future

    async def enqueue_raw(
        self,
        topic: str,
        *,
        key: str | bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Hand one record to the producer; the returned future resolves when Kafka acknowledges it.

        Waits only when max_in_flight records are unacknowledged. Records to one partition are written in
        the order they were enqueued (idempotent producer), which lets a caller pipeline sends.
        """
        await self._slots.acquire()
        started = time.perf_counter()
        try:
            future = await self._kafka.send(
                topic,
                value=value,
                key=None if key is None else key_bytes(key),
                headers=list(headers),
                partition=partition,
            )
        except BaseException:
            self._slots.release()
            raise

        def done(result: asyncio.Future[RecordMetadata]) -> None:
            self._slots.release()
            if not result.cancelled() and result.exception() is None:
                metrics.MESSAGES_PRODUCED.labels(self._service, topic).inc()
                metrics.PRODUCE_LATENCY.labels(self._service, topic).observe(time.perf_counter() - started)

        future.add_done_callback(done)
        return future  # type: ignore[no-any-return]

    async def send_batch(
        self, topic: str, partition: int, records: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]
    ) -> list[tuple[int, asyncio.Future[Any]]]:
        """Send (key, value, headers) records to one partition as few producer batches, in order.

        For a high-rate single-partition stream (a gateway's events) this skips aiokafka's per-record
        bookkeeping. Returns (number of records, future) per batch; a batch's future resolves when Kafka has
        acknowledged all of it. Idempotence and ordering hold as for single sends.
        """
        submitted: list[tuple[int, asyncio.Future[Any]]] = []
        builder = self._kafka.create_batch()
        count = 0
        for key, value, headers in records:
            if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                submitted.append((count, await self._submit(builder, topic, partition, count)))
                builder, count = self._kafka.create_batch(), 0
                if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise ValueError(f"a record of {len(value or b'')} bytes exceeds the maximum batch size")
            count += 1
        if count:
            submitted.append((count, await self._submit(builder, topic, partition, count)))
        return submitted

    async def _submit(self, builder: Any, topic: str, partition: int, count: int) -> asyncio.Future[Any]:
        started = time.perf_counter()
        future: asyncio.Future[Any] = await self._kafka.send_batch(builder, topic, partition=partition)

        def done(result: asyncio.Future[Any]) -> None:
            if not result.cancelled() and result.exception() is None:
                metrics.MESSAGES_PRODUCED.labels(self._service, topic).inc(count)
                metrics.PRODUCE_LATENCY.labels(self._service, topic).observe(time.perf_counter() - started)

        future.add_done_callback(done)
        return future

    async def send_record(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> RecordMetadata:
        """send_raw with positional arguments: the dead-letter path's SendRecord."""
        return await self.send_raw(topic, key=key, value=value, headers=headers)

    async def send(self, topic: str, message: Message, *, key: str | None = None) -> RecordMetadata:
        """Send an envelope; the key defaults to its pbx_id, else its tenant (the catalogue's keys)."""
        headers, value = encode(message)
        return await self.send_raw(topic, key=key or message.pbx_id or message.tenant, value=value,
                                   headers=headers)
