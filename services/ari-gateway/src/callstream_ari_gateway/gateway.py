"""The gateway service: one PBX's ARI on one side, Kafka on the other, and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
from aiohttp import web

from callstream_ari_gateway.ari_rest import AriRest
from callstream_ari_gateway.commands import CommandExecutor
from callstream_ari_gateway.outbox import Outbox, Publisher
from callstream_ari_gateway.reader import EventReader, websocket_url
from callstream_ari_gateway.records import RecordFactory, is_dead_letter
from callstream_ari_gateway.sequence import Sequence
from callstream_ari_gateway.settings import GatewaySettings
from callstream_ari_gateway.spool import OutRecord, Spool
from callstream_ari_gateway.web import health_app
from callstream_common import metrics
from callstream_common.kafka.admin import topic_partitions
from callstream_common.kafka.producer import Producer
from callstream_common.partitioner import partition_for
from callstream_common.topics import TopicName, dlq_name, topic_name

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.gateway_id = f"gw-{settings.pbx_id}"
        self.producer_id = f"ari-gateway/{settings.pbx_id}"
        self.events_topic = topic_name(TopicName.ARI_EVENTS, settings.topic_prefix)
        state = settings.spool_dir / settings.pbx_id
        self.sequence = Sequence(state / "seq")
        self.outbox = Outbox(settings.buffer_events, Spool(state / "spool"))
        self.records = RecordFactory(tenant=settings.tenant, pbx_id=settings.pbx_id, producer=self.producer_id,
                                     sequence=self.sequence)
        self.producer: Producer | None = None
        self.publisher = Publisher(self.outbox, self._send, self._reset_producer, settings.pbx_id,
                                   max_in_flight=settings.kafka_max_in_flight)
        self._partition: int | None = None
        self.reader: EventReader | None = None
        self.executor: CommandExecutor | None = None
        self._kafka_ok = False
        self._stopped = asyncio.Event()

    # --- Kafka side -----------------------------------------------------------------------------------
    def _new_producer(self) -> Producer:
        return Producer(self.settings.kafka_bootstrap, service="ari-gateway", client_id=self.producer_id,
                        max_in_flight=self.settings.kafka_max_in_flight,
                        request_timeout_ms=int(self.settings.kafka_delivery_timeout_s * 1000))

    async def _send(self, records: list[OutRecord]) -> list[tuple[list[OutRecord], asyncio.Future[Any]]]:
        """Records to Kafka in order: runs of events to ari.events, dead frames to its dead-letter topic."""
        assert self.producer is not None and self._partition is not None
        chunks: list[tuple[list[OutRecord], asyncio.Future[Any]]] = []
        key = self.settings.pbx_id.encode()
        start = 0
        while start < len(records):
            dead = is_dead_letter(records[start])
            end = start
            while end < len(records) and is_dead_letter(records[end]) == dead:
                end += 1
            run = records[start:end]
            topic = dlq_name(self.events_topic) if dead else self.events_topic
            submitted = await self.producer.send_batch(topic, self._partition, [(key, r.value, r.headers) for r in run])
            offset = 0
            for count, future in submitted:
                future.add_done_callback(self._on_ack)
                chunks.append((run[offset:offset + count], future))
                offset += count
            start = end
        return chunks

    def _on_ack(self, future: asyncio.Future[Any]) -> None:
        self._kafka_ok = not future.cancelled() and future.exception() is None

    async def _reset_producer(self) -> None:
        self._kafka_ok = False
        old, self.producer = self.producer, self._new_producer()
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.kafka.stop(), timeout=5)
        await self._start_producer()

    async def _start_producer(self) -> None:
        assert self.producer is not None
        while True:
            try:
                await self.producer.start()
                self._kafka_ok = True
                return
            except Exception as exc:  # noqa: BLE001 - Kafka away at start: keep trying, the spool holds events
                log.warning("Kafka not reachable (%s); retrying", exc.__class__.__name__)
                await asyncio.sleep(1.0)
                self.producer = self._new_producer()

    # --- readiness ------------------------------------------------------------------------------------
    def ready(self) -> tuple[bool, dict[str, object]]:
        connected = bool(self.reader and self.reader.connected)
        detail: dict[str, object] = {
            "pbx_connected": connected, "kafka_writable": self._kafka_ok, "buffer": self.outbox.depth,
            "spool": self.outbox.spool_depth, "asterisk_id": self.reader.asterisk_id if self.reader else None,
        }
        return connected and self._kafka_ok, detail

    # --- lifecycle ------------------------------------------------------------------------------------
    async def run(self) -> None:
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            self.producer = self._new_producer()
            await self._start_producer()
            stack.push_async_callback(self._close_producer)
            auth = {"Authorization": aiohttp.encode_basic_auth(settings.ari_user,
                                                               settings.ari_password.get_secret_value())}
            session = await stack.enter_async_context(aiohttp.ClientSession(headers=auth))
            rest = AriRest(session, str(settings.ari_url), settings.ari_request_timeout_s)
            self.reader = EventReader(
                session=session, rest=rest, outbox=self.outbox, records=self.records,
                ws_url=websocket_url(str(settings.ari_url), settings.ari_app, settings.ari_subscribe_all),
                gateway_id=self.gateway_id, app=settings.ari_app, pbx_id=settings.pbx_id,
                filtered_types=frozenset(settings.ari_filtered_types), ari_events_topic=self.events_topic,
                reconnect_min_s=settings.reconnect_min_s, reconnect_max_s=settings.reconnect_max_s)
            commands_topic = topic_name(TopicName.ARI_COMMANDS, settings.topic_prefix)
            counts = await topic_partitions(settings.kafka_bootstrap, [commands_topic, self.events_topic])
            partitions = counts[commands_topic]
            # Kafka's default partitioner, computed once: every record of this gateway goes to this partition.
            self._partition = partition_for(settings.pbx_id, counts[self.events_topic])
            self.executor = CommandExecutor(
                pbx_id=settings.pbx_id, tenant=settings.tenant, producer_id=self.producer_id,
                bootstrap=settings.kafka_bootstrap, commands_topic=commands_topic,
                results_topic=topic_name(TopicName.ARI_COMMAND_RESULTS, settings.topic_prefix),
                partitions=partitions, group_id=topic_name(f"ari-gateway.{settings.pbx_id}", settings.topic_prefix),
                rest=rest, producer=self._current_producer, concurrency=settings.command_concurrency,
                dedup_window_s=settings.command_dedup_window_s)
            remembered = await self.executor.load_executed()
            log.info("gateway for PBX %s starting: %d executed commands remembered, seq from %d",
                     settings.pbx_id, remembered, self.sequence.last)
            if settings.http_port:
                runner = web.AppRunner(health_app(self.ready))
                await runner.setup()
                await web.TCPSite(runner, settings.http_host, settings.http_port).start()
                stack.push_async_callback(runner.cleanup)
            publisher = asyncio.create_task(self.publisher.run(), name="publisher")
            reader = asyncio.create_task(self.reader.run(), name="reader")
            executor = asyncio.create_task(self.executor.run(), name="commands")
            await self._stopped.wait()
            await self._drain(reader, executor, publisher)

    def _current_producer(self) -> Producer:
        """Command results go through whichever producer is current (a Kafka failure replaces it)."""
        assert self.producer is not None
        return self.producer

    def stop(self) -> None:
        self._stopped.set()

    async def _drain(self, reader: asyncio.Task[None], executor: asyncio.Task[None],
                     publisher: asyncio.Task[None]) -> None:
        """SIGTERM: stop reading, finish the commands in hand, publish what is buffered, commit, exit."""
        assert self.reader is not None and self.executor is not None
        await self.reader.stop()
        self.executor.stop()
        await asyncio.gather(reader, executor, return_exceptions=True)
        self.publisher.stop()
        try:
            await asyncio.wait_for(asyncio.shield(publisher), timeout=self.settings.drain_timeout_s)
        except asyncio.TimeoutError:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            unsent = self.publisher.unsent()
            log.warning("Kafka did not take everything in %.0f s: %d in flight and %d buffered go to the spool",
                        self.settings.drain_timeout_s, len(unsent), self.outbox.depth)
            self.outbox.spill(unsent)
        self.sequence.close()
        log.info("gateway for PBX %s stopped: %d records published", self.settings.pbx_id,
                 self.publisher.published)

    async def _close_producer(self) -> None:
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), timeout=5)
