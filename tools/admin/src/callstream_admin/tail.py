"""Print a topic's messages as they arrive (or from the start), decoded: a window on the event log.

  python -m callstream_admin.tail ari.events [--from-beginning] [--pbx pbx1] [--type call.queued] [--limit N]

Each line: time, topic[partition]@offset, type, pbx, seq and a one-line summary of the body (for raw ARI
events: the ARI type and the channel). Records that do not decode are shown with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from aiokafka import AIOKafkaConsumer

from callstream_common.codec import Codec, DecodeError, Message
from callstream_common.messages.ari import RawAriEvent
from callstream_common.topics import TopicName, topic_name


def summary(message: Message) -> str:
    body = message.body
    if isinstance(body, RawAriEvent):
        data = body.data
        channel = data.get("channel") or {}
        extra = f" {channel.get('id')} {channel.get('state', '')}" if channel else ""
        return f"{data.get('type')}{extra}"
    fields: dict[str, Any] = body.model_dump(exclude={"type"}, exclude_none=True)
    text = " ".join(f"{k}={v}" for k, v in fields.items() if not isinstance(v, (list, dict)))
    return text[:160]


async def tail(args: argparse.Namespace) -> None:
    logical = TopicName(args.topic)
    physical = topic_name(logical, args.topic_prefix)
    consumer = AIOKafkaConsumer(physical, bootstrap_servers=args.kafka_bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest" if args.from_beginning else "latest")
    codec = Codec()
    shown = 0
    await consumer.start()
    try:
        async for record in consumer:
            try:
                message = codec.decode(logical, record.headers, record.value)
            except DecodeError as exc:
                print(f"{record.topic}[{record.partition}]@{record.offset} UNDECODABLE {exc}", flush=True)
                continue
            if (args.pbx and message.pbx_id != args.pbx) or (args.type and message.type != args.type):
                continue
            at = message.produced_at.strftime("%H:%M:%S.%f")[:-3]
            seq = f" seq={message.seq}" if message.seq is not None else ""
            print(f"{at} {record.topic}[{record.partition}]@{record.offset} {message.type} "
                  f"pbx={message.pbx_id}{seq} {summary(message)}", flush=True)
            shown += 1
            if args.limit and shown >= args.limit:
                return
    finally:
        await consumer.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="callstream_admin.tail", description=__doc__.split("\n\n")[0])
    parser.add_argument("topic", choices=[t.value for t in TopicName])
    parser.add_argument("--from-beginning", action="store_true")
    parser.add_argument("--pbx")
    parser.add_argument("--type")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--topic-prefix", default="")
    parser.add_argument("--kafka-bootstrap", default="127.0.0.1:19092")
    try:
        asyncio.run(tail(parser.parse_args()))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
