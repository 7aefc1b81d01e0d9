"""The ordered path from the WebSocket reader to Kafka, which never makes the reader wait.

    reader ──put()──▶ memory (bounded deque) ──▶ publisher ──▶ aiokafka (bounded in-flight) ──▶ ari.events
                  └─▶ spool on disk (once memory is full, and until the spool is empty again)

Order is kept by one invariant: every record in memory is older than every record in the spool. Once a record
has gone to the spool, all later ones go there too until the publisher has emptied it.

While Kafka is away, aiokafka holds and retries what it was given (up to kafka_delivery_timeout_s), in order
and without duplicates (idempotent producer); the publisher stops feeding it at kafka_max_in_flight, memory
fills, then the spool. When Kafka is back everything drains in sequence order. If aiokafka ever fails records
(an outage longer than the delivery timeout), the publisher waits for every pending send to settle, makes a
new producer and sends the failed records again, first, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from callstream_ari_gateway.spool import OutRecord, Segment, Spool
from callstream_common import metrics

log = logging.getLogger(__name__)

class Outbox:
    def __init__(self, memory_limit: int, spool: Spool) -> None:
        self._memory: deque[OutRecord] = deque()
        self._limit = memory_limit
        self._spool = spool
        self._spooling = not spool.is_empty()  # a spool left by the last run is older than anything new
        self._ready = asyncio.Event()
        if self._spooling:
            self._ready.set()

    def put(self, record: OutRecord) -> None:
        """Never blocks and never fails for lack of room: memory first, then disk."""
        if self._spooling or len(self._memory) >= self._limit:
            if not self._spooling:
                log.warning("memory buffer full (%d events): spooling to disk", self._limit)
            self._spooling = True
            self._spool.append(record)
        else:
            self._memory.append(record)
        self._ready.set()

    @property
    def depth(self) -> int:
        return len(self._memory)

    @property
    def spool_depth(self) -> int:
        return self._spool.depth

    def take_memory(self, limit: int) -> list[OutRecord]:
        batch: list[OutRecord] = []
        while self._memory and len(batch) < limit:
            batch.append(self._memory.popleft())
        return batch

    def take_segment(self) -> Segment | None:
        """The next spooled segment, once memory is empty (memory holds the older records)."""
        if self._memory or not self._spooling:
            return None
        segment = self._spool.next_segment()
        if segment is None:
            self._spooling = False  # the spool is drained: back to memory
        return segment

    def wake(self) -> None:
        self._ready.set()

    async def wait(self) -> None:
        await self._ready.wait()
        self._ready.clear()

    def has_work(self) -> bool:
        return bool(self._memory) or self._spooling

    def spill(self, older: list[OutRecord]) -> None:
        """At shutdown: unsent records (older than anything spooled) and memory go to disk, in order."""
        self._spool.write_segment([*older, *self._memory])
        self._memory.clear()
        self._spool.close()

    def delete(self, segment: Segment) -> None:
        self._spool.delete(segment)


Chunk = tuple[list[OutRecord], "asyncio.Future[Any]"]
SendBatch = Callable[[list[OutRecord]], Awaitable[list[Chunk]]]


class Publisher:
    """Moves records from the outbox to Kafka in order, in producer batches; see the module docstring for
    the failure path. At most `max_in_flight` records are unacknowledged at once."""

    def __init__(self, outbox: Outbox, send: SendBatch, reset_producer: Callable[[], Awaitable[None]],
                 pbx_id: str, max_in_flight: int, batch: int = 5000) -> None:
        self._outbox = outbox
        self._send = send
        self._reset_producer = reset_producer
        self._pbx_id = pbx_id
        self._max_in_flight = max_in_flight
        self._batch = batch
        self._pending: deque[Chunk] = deque()
        self._pending_records = 0
        self._published_metric = metrics.GATEWAY_EVENTS_PUBLISHED.labels(pbx_id)
        self._retry: list[OutRecord] = []
        self._stopping = False
        self.published = 0
        self.last_acked_seq: int | None = None

    def stop(self) -> None:
        self._stopping = True
        self._outbox.wake()

    @property
    def in_flight(self) -> int:
        return self._pending_records

    async def run(self) -> None:
        while not (self._stopping and not self._outbox.has_work() and not self._retry):
            if self._retry:
                records, self._retry = self._retry, []
                await self._send_all(records)
                continue
            memory = self._outbox.take_memory(self._batch)
            if memory:
                await self._send_all(memory)
                continue
            segment = self._outbox.take_segment()
            if segment is not None:
                await self._send_all(segment.records)
                if await self._settle():  # delete a segment only once all of it is acknowledged
                    self._outbox.delete(segment)
                continue
            self._reap()
            if self._failed():
                await self._recover()
                continue
            if not self._stopping:
                await self._wait_for_work()
        await self._settle()

    async def _wait_for_work(self) -> None:
        """Sleep until the reader adds records, or an acknowledgement is due to be accounted for."""
        waiter = asyncio.ensure_future(self._outbox.wait())
        waits: set[asyncio.Future[Any]] = {waiter}
        if self._pending:
            waits.add(self._pending[0][1])
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()

    async def _send_all(self, records: list[OutRecord]) -> None:
        for chunk in await self._send(records):
            self._pending.append(chunk)
            self._pending_records += len(chunk[0])
        while self._pending_records > self._max_in_flight:
            await asyncio.wait([self._pending[0][1]])  # backpressure: Kafka is behind
            self._reap()
            if self._failed():
                await self._recover()
        self._reap()
        metrics_depth(self._pbx_id, self._outbox)

    def _reap(self) -> None:
        """Account for acknowledged chunks, in order, up to the first one not done or failed."""
        while self._pending and self._pending[0][1].done() and not _failed(self._pending[0][1]):
            records, _ = self._pending.popleft()
            self._pending_records -= len(records)
            self.published += len(records)
            self._published_metric.inc(len(records))
            self.last_acked_seq = records[-1].seq

    def _failed(self) -> bool:
        return bool(self._pending) and self._pending[0][1].done() and _failed(self._pending[0][1])

    async def _settle(self) -> bool:
        """Wait for every pending chunk; True when all of them succeeded."""
        if self._pending:
            await asyncio.wait([future for _, future in self._pending])
        self._reap()
        if self._failed():
            await self._recover()
            return False
        return not self._retry

    async def _recover(self) -> None:
        """Kafka failed a chunk: wait for the rest to settle, then resend every failed record, first, in order."""
        await asyncio.wait([future for _, future in self._pending])
        failed: list[OutRecord] = []
        first_error: BaseException | None = None
        for records, future in self._pending:
            if _failed(future):
                first_error = first_error or (None if future.cancelled() else future.exception())
                failed += records
            else:
                self.published += len(records)
        self._pending.clear()
        self._pending_records = 0
        log.error("Kafka failed %d records (%r); new producer, resending them first", len(failed), first_error)
        await self._reset_producer()
        self._retry = failed + self._retry

    def unsent(self) -> list[OutRecord]:
        """Records handed to aiokafka and not acknowledged, plus those waiting for a resend, in order."""
        waiting = [r for records, future in self._pending if not future.done() or _failed(future) for r in records]
        return waiting + self._retry


def _failed(future: asyncio.Future[Any]) -> bool:
    return future.cancelled() or future.exception() is not None


def metrics_depth(pbx_id: str, outbox: Outbox) -> None:
    metrics.GATEWAY_BUFFER_DEPTH.labels(pbx_id).set(outbox.depth)
    metrics.GATEWAY_SPOOL_DEPTH.labels(pbx_id).set(outbox.spool_depth)
