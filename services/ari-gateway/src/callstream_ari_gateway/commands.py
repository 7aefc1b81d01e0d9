"""Executing ari.commands for this gateway's PBX: each command id once, in order per channel.

- Reads only the partition its pbx_id hashes to, and skips records of other PBXs sharing it.
- Invalid commands go to `ari.commands.dlq` with the reason.
- A command id seen before is answered with its stored result (`repeated: true`) and not run again. The
  memory of executed ids is rebuilt at start from `ari.command-results` (the last command_dedup_window_s of
  this PBX's results), so this holds across restarts without a database. Commands older than that window, or
  past their `expires_at`, are answered `expired` and not run: their duplicates could no longer be recognised.
- Commands with the same ordering key (by default the channel or bridge they act on) run one after another;
  others run concurrently, at most command_concurrency at once.
- Offsets are committed after every command of a batch has run and its result is acknowledged by Kafka.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition

from callstream_ari_gateway.ari_rest import AriResponse, AriRest, AriUnavailable
from callstream_ari_gateway.operations import ordering_key, to_request
from callstream_common import metrics
from callstream_common.codec import Codec, DecodeError, Message, encode, new_envelope
from callstream_common.envelope import utcnow
from callstream_common.kafka.consumer import consumer_options
from callstream_common.kafka.dlq import dead_letter
from callstream_common.kafka.producer import Producer
from callstream_common.messages.commands import AriCommand, AriCommandResult
from callstream_common.partitioner import partition_for
from callstream_common.topics import TopicName

log = logging.getLogger(__name__)

DEDUP_CAPACITY = 1_000_000
Outcome = Literal["ok", "error", "expired", "rejected"]
UNAVAILABLE_RETRY_S = 30.0


class ExecutedCommands:
    """command id -> its result, the most recent DEDUP_CAPACITY of them."""

    def __init__(self, capacity: int = DEDUP_CAPACITY) -> None:
        self._results: OrderedDict[str, AriCommandResult] = OrderedDict()
        self._capacity = capacity

    def get(self, command_id: str) -> AriCommandResult | None:
        return self._results.get(command_id)

    def add(self, result: AriCommandResult) -> None:
        self._results[result.command_id] = result
        self._results.move_to_end(result.command_id)
        while len(self._results) > self._capacity:
            self._results.popitem(last=False)

    def __len__(self) -> int:
        return len(self._results)


class CommandExecutor:
    def __init__(
        self,
        *,
        pbx_id: str,
        tenant: str,
        producer_id: str,
        bootstrap: str,
        commands_topic: str,
        results_topic: str,
        partitions: int,
        group_id: str,
        rest: AriRest,
        producer: Callable[[], Producer],
        concurrency: int,
        dedup_window_s: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._pbx_id = pbx_id
        self._tenant = tenant
        self._producer_id = producer_id
        self._bootstrap = bootstrap
        self._commands_topic = commands_topic
        self._results_topic = results_topic
        self._partition = partition_for(pbx_id, partitions)
        self._group_id = group_id
        self._rest = rest
        self._producer = producer
        self._slots = asyncio.Semaphore(concurrency)
        self._window = timedelta(seconds=dedup_window_s)
        self._clock = clock
        self._codec = Codec()
        self._executed = ExecutedCommands()
        self._stop = asyncio.Event()
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._progress = _Progress()

    def stop(self) -> None:
        self._stop.set()

    async def load_executed(self) -> int:
        """Rebuild the executed-ids memory from this PBX's recent results; returns how many were found."""
        tp = TopicPartition(self._results_topic, self._partition)
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                    isolation_level="read_committed")
        await consumer.start()
        try:
            consumer.assign([tp])
            since = int((self._clock() - self._window).timestamp() * 1000)
            found = await consumer.offsets_for_times({tp: since})
            end = (await consumer.end_offsets([tp]))[tp]
            start = found[tp].offset if found.get(tp) is not None else end
            consumer.seek(tp, start)
            position = start
            while position < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
                for record in batch.get(tp, []):
                    position = record.offset + 1
                    if record.key != self._pbx_id.encode():
                        continue
                    try:
                        message = self._codec.decode(TopicName.ARI_COMMAND_RESULTS, record.headers, record.value)
                    except DecodeError:
                        continue
                    self._executed.add(message.body)
                if not batch:
                    position = await consumer.position(tp)
            return len(self._executed)
        finally:
            await consumer.stop()

    async def run(self) -> None:
        """Fetch, dispatch and commit as a pipeline: fetching never waits for a batch to finish (that would add
        the slowest command's time to every command behind it); commits trail the completed prefix."""
        tp = TopicPartition(self._commands_topic, self._partition)
        consumer = AIOKafkaConsumer(**{**consumer_options(self._bootstrap, self._group_id, self._producer_id, 500),
                                       "fetch_max_wait_ms": 100})
        await consumer.start()
        self._progress = _Progress()
        committer = asyncio.create_task(self._commit_loop(consumer, tp))
        try:
            consumer.assign([tp])
            while not self._stop.is_set():
                batch = await consumer.getmany(tp, timeout_ms=100, max_records=500)
                for record in batch.get(tp, []):
                    await self._slots.acquire()  # backpressure: at most command_concurrency in hand
                    self._progress.started(record.offset)
                    self._dispatch(record)
            await self._progress.all_done()
        finally:
            self._stop.set()
            await committer
            await consumer.stop()

    async def _commit_loop(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        committed = -1
        while True:
            stopping = self._stop.is_set()
            done = self._progress.done_through()
            if done > committed:
                await consumer.commit({tp: done + 1})
                committed = done
            if stopping and not self._progress.busy():
                return
            await asyncio.sleep(0.05)

    def _dispatch(self, record: Any) -> None:
        message = self._accept(record)
        if message is None or isinstance(message, str):
            task = asyncio.create_task(self._skip(record, message))
        else:
            key = ordering_key(message.body)
            previous = self._tails.get(key)
            task = asyncio.create_task(self._after(previous, message))
            self._tails[key] = task
            task.add_done_callback(functools.partial(self._forget_tail, key))
        task.add_done_callback(functools.partial(self._finished, record.offset))

    def _forget_tail(self, key: str, task: asyncio.Task[None]) -> None:
        if self._tails.get(key) is task:
            del self._tails[key]

    def _finished(self, offset: int, _task: asyncio.Task[None]) -> None:
        self._slots.release()
        self._progress.finished(offset)

    def _accept(self, record: Any) -> Message | str | None:
        """The command, or a dead-letter reason, or None for another PBX's record."""
        if record.key != self._pbx_id.encode():
            return None  # another PBX whose id hashes to the same partition
        try:
            message = self._codec.decode(TopicName.ARI_COMMANDS, record.headers, record.value)
        except DecodeError as exc:
            return f"undecodable: {exc}"
        if message.pbx_id != self._pbx_id:
            return f"rejected: keyed {self._pbx_id} but addressed to {message.pbx_id}"
        return message

    async def _skip(self, record: Any, reason: str | None) -> None:
        if reason is not None:
            await self._dead_letter(record, reason)

    async def _after(self, previous: asyncio.Task[None] | None, message: Message) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)  # same channel: strictly in order
        await self._handle(message)

    async def _handle(self, message: Message) -> None:
        command: AriCommand = message.body
        op = command.operation.op
        previous = self._executed.get(command.command_id)
        if previous is not None:
            metrics.GATEWAY_COMMANDS.labels(self._pbx_id, op, "repeated").inc()
            await self._publish(message, previous.model_copy(update={"repeated": True}))
            return
        now = self._clock()
        if (command.expires_at is not None and command.expires_at <= now) or message.produced_at < now - self._window:
            result = self._result(command, "expired", error="expired before it could run", started=time.perf_counter())
        else:
            result = await self._execute(command)
        metrics.GATEWAY_COMMANDS.labels(self._pbx_id, op, result.outcome).inc()
        self._executed.add(result)
        await self._publish(message, result)

    async def _execute(self, command: AriCommand) -> AriCommandResult:
        started = time.perf_counter()
        try:
            request = to_request(command.operation)
        except ValueError as exc:
            return self._result(command, "rejected", error=str(exc), started=started)
        deadline = time.monotonic() + UNAVAILABLE_RETRY_S
        delay = 0.1
        while True:
            try:
                response = await self._rest.call(request)
                break
            except AriUnavailable as exc:
                expired = command.expires_at is not None and command.expires_at <= self._clock()
                if expired or time.monotonic() + delay > deadline:
                    return self._result(command, "error", error=f"PBX unavailable: {exc}", started=started)
                await asyncio.sleep(delay)  # back off while the PBX is unreachable, then try again
                delay = min(delay * 2, 2.0)
        metrics.GATEWAY_COMMAND_LATENCY.labels(self._pbx_id, command.operation.op).observe(
            time.perf_counter() - started)
        return self._result(command, "ok" if response.ok else "error", response=response, started=started)

    def _result(self, command: AriCommand, outcome: Outcome, *, started: float, response: AriResponse | None = None,
                error: str | None = None) -> AriCommandResult:
        if response is not None and not response.ok and error is None:
            error = _ari_error(response)
        return AriCommandResult(
            command_id=command.command_id, op=command.operation.op, outcome=outcome,
            ari_status=response.status if response else None, ari_body=response.body if response else None,
            error=error, executed_at=self._clock(), duration_ms=(time.perf_counter() - started) * 1000)

    async def _publish(self, command: Message, result: AriCommandResult) -> None:
        envelope = new_envelope(result, tenant=self._tenant, producer=self._producer_id, pbx_id=self._pbx_id,
                                causation_id=command.message_id)
        headers, value = encode(envelope)
        await self._producer().send_raw(self._results_topic, key=self._pbx_id, value=value, headers=headers)

    async def _dead_letter(self, record: Any, reason: str) -> None:
        await dead_letter(self._producer().send_record, service=self._producer_id, topic=record.topic,
                          partition=record.partition, offset=record.offset, key=record.key, value=record.value,
                          headers=list(record.headers), reason=reason)


class _Progress:
    """Which fetched offsets are finished, so that commits cover only a completed prefix."""

    def __init__(self) -> None:
        self._open: set[int] = set()
        self._highest_started = -1
        self._idle = asyncio.Event()
        self._idle.set()

    def started(self, offset: int) -> None:
        self._open.add(offset)
        self._highest_started = max(self._highest_started, offset)
        self._idle.clear()

    def finished(self, offset: int) -> None:
        self._open.discard(offset)
        if not self._open:
            self._idle.set()

    def done_through(self) -> int:
        """The highest offset below which everything fetched is finished."""
        return (min(self._open) - 1) if self._open else self._highest_started

    def busy(self) -> bool:
        return bool(self._open)

    async def all_done(self) -> None:
        await self._idle.wait()


def _ari_error(response: AriResponse) -> str:
    body = response.body
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)
    return f"HTTP {response.status}"


