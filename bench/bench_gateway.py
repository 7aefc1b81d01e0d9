"""Benchmark of the ari-gateway: events PBX -> Kafka, and the command round trip.

1. The simulator's firehose into one gateway process into Kafka, counted at Kafka (from the firehose request
   to the last event read back), beside a raw aiokafka producer (idempotent, acks=all, as the gateway's) that
   sends the same payloads from this process to a topic of its own, in the same run.
2. Commands produced to ari.commands at a fixed rate; for each, the time from its production to the
   consumption of its result (the ARI request reaches the simulator in between).

Needs the local stack (make bench-gateway starts it). The final line:
BENCH gateway events_per_s=<n> raw_producer_per_s=<n> ratio=<r> cmd_rtt_p50_ms=<x> cmd_rtt_p99_ms=<y>
Targets (issue 4): events_per_s >= 25000, ratio >= 0.5, cmd_rtt_p99_ms <= 15.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "gateway")]

from callstream_common.codec import Codec, encode, new_envelope  # noqa: E402
from callstream_common.kafka.admin import PlannedTopic, ensure_topics, plan_topics  # noqa: E402
from callstream_common.kafka.producer import Producer, producer_options  # noqa: E402
from callstream_common.messages import commands as c  # noqa: E402
from callstream_common.partitioner import partition_for  # noqa: E402
from callstream_common.settings import ServiceSettings  # noqa: E402
from callstream_common.topics import TopicName, topic_name  # noqa: E402
from harness import GatewayProcess, SimProcess  # noqa: E402

PBX = "pbx-bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def read_events(settings: ServiceSettings, count: int, start_offset: int) -> tuple[float, list[bytes]]:
    """Consume `count` ari.event records after start_offset; (time of the last, their values)."""
    topic = topic_name(TopicName.ARI_EVENTS, settings.topic_prefix)
    tp = TopicPartition(topic, partition_for(PBX, settings.pbx_partitions))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024)
    await consumer.start()
    values: list[bytes] = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, start_offset)
        while len(values) < count:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=50_000)
            for record in batch.get(tp, []):
                if dict(record.headers).get("type") == b"ari.event":
                    values.append(record.value)
        return time.perf_counter(), values[:count]
    finally:
        await consumer.stop()


async def end_offset(settings: ServiceSettings) -> int:
    topic = topic_name(TopicName.ARI_EVENTS, settings.topic_prefix)
    tp = TopicPartition(topic, partition_for(PBX, settings.pbx_partitions))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def raw_producer(settings: ServiceSettings, payloads: list[bytes]) -> float:
    topic = f"{settings.topic_prefix}.raw-producer"
    await ensure_topics(settings.kafka_bootstrap, [PlannedTopic(topic, 1, {})])
    producer = AIOKafkaProducer(**producer_options(settings.kafka_bootstrap, "bench-raw"))
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value=value, key=PBX.encode()) for value in payloads]
        await asyncio.gather(*futures)
        return len(payloads) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def command_round_trip(settings: ServiceSettings, sim: SimProcess, rate: float, seconds: float) -> list[float]:
    channels = [(await sim.ctl("POST", "/calls", {"did": "5550100", "caller_number": f"+1555000{n:04d}",
                                                  "patience_s": 3600}))["channel_id"] for n in range(20)]
    results_tp = TopicPartition(topic_name(TopicName.ARI_COMMAND_RESULTS, settings.topic_prefix),
                                partition_for(PBX, settings.pbx_partitions))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=5)
    await consumer.start()
    consumer.assign([results_tp])
    await consumer.seek_to_end(results_tp)
    await consumer.position(results_tp)
    sent_at: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    rtts: list[float] = []
    codec = Codec()
    total = int(rate * seconds)

    async def collect() -> None:
        while len(rtts) < total:
            batch = await consumer.getmany(results_tp, timeout_ms=50)
            now = time.perf_counter()
            for record in batch.get(results_tp, []):
                result = codec.decode(TopicName.ARI_COMMAND_RESULTS, record.headers, record.value).body
                if result.command_id in sent_at:
                    rtts.append((now - sent_at.pop(result.command_id)) * 1000)

    collector = asyncio.create_task(collect())
    commands = topic_name(TopicName.ARI_COMMANDS, settings.topic_prefix)
    async with Producer(settings.kafka_bootstrap, service="bench", client_id="bench-cmd") as producer:
        await producer.kafka.send_and_wait(commands, b"", key=b"warm-up")  # connections and metadata first
        started = time.perf_counter()
        for n in range(total):
            command_id = f"bench-{uuid.uuid4().hex[:12]}"
            command = c.AriCommand(command_id=command_id, operation=c.VariableSet(
                channel_id=channels[n % len(channels)], variable="CALLSTREAM_BENCH", value=str(n)))
            headers, value = encode(new_envelope(command, tenant=settings.tenant, producer="bench", pbx_id=PBX))
            sent_at[command_id] = time.perf_counter()
            sent_wall[str(n)] = time.time()
            await producer.send_raw(commands, key=PBX, value=value, headers=headers)
            pause = started + (n + 1) / rate - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
        await asyncio.wait_for(collector, timeout=60)
    await consumer.stop()
    log = await sim.ctl("GET", "/requests", since=0, limit=100000)
    to_pbx = sorted((r["time"] - sent_wall[r["params"]["value"]]) * 1000 for r in log["requests"]
                    if r["path"].endswith("/variable") and r["params"].get("value") in sent_wall)
    if to_pbx:
        print(f"commands: produced -> ARI request at the simulator p50 {percentile(to_pbx, 0.5):.2f} ms, "
              f"p99 {percentile(to_pbx, 0.99):.2f} ms", flush=True)
    return rtts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="firehose events")
    parser.add_argument("--cmd-rate", type=float, default=200.0, help="commands per second")
    parser.add_argument("--cmd-seconds", type=float, default=10.0)
    parser.add_argument("--kafka-bootstrap", default="127.0.0.1:19092")
    args = parser.parse_args()

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = ServiceSettings(tenant=prefix, topic_prefix=prefix, kafka_bootstrap=args.kafka_bootstrap,
                               pbx_partitions=12)
    await ensure_topics(settings.kafka_bootstrap, plan_topics(prefix, pbx_partitions=12, tenant_partitions=6))
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    sim = await SimProcess(work, agents=20).start()
    gateway = GatewayProcess(settings, sim, PBX, work, **{"log-level": "WARNING"}).start()
    try:
        await gateway.ready()
        offset = await end_offset(settings)
        reader = asyncio.create_task(read_events(settings, args.events, offset))
        started = time.perf_counter()
        fired = await sim.ctl("POST", "/firehose", {"count": args.events})
        finished, payloads = await reader
        events_per_s = args.events / (finished - started)
        print(f"firehose: simulator sent {fired['sent']} events at {fired['events_per_s']:.0f}/s; "
              f"in Kafka after {finished - started:.2f} s", flush=True)
        raw_per_s = await raw_producer(settings, payloads)
        rtts = await command_round_trip(settings, sim, args.cmd_rate, args.cmd_seconds)
        print(f"commands: {len(rtts)} at {args.cmd_rate:.0f}/s, mean {statistics.mean(rtts):.2f} ms, "
              f"max {max(rtts):.2f} ms", flush=True)
    finally:
        gateway.terminate(timeout=60)
        await sim.stop()
    print(f"BENCH gateway events_per_s={events_per_s:.0f} raw_producer_per_s={raw_per_s:.0f} "
          f"ratio={events_per_s / raw_per_s:.2f} cmd_rtt_p50_ms={percentile(rtts, 0.5):.2f} "
          f"cmd_rtt_p99_ms={percentile(rtts, 0.99):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
