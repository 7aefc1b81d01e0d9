"""A factory-built faust worker for tests: counts the call.queued messages of each PBX in a table.

After each message it publishes the PBX's running count, so a test can see that a restarted worker resumed
from the table's changelog (the count goes on) rather than from zero. Settings come from CALLSTREAM_*.
COUNTER_HOLD_COMMITS=<path>: a commit barrier that holds every offset commit while <path> exists, and creates
<path>.asked when a commit is first held (a test of the app's commit barriers).
COUNTER_ARI=1: it also reads `ari.events`, wanting StasisStart only (the rest passed over by the consumer), and
takes 50 ms over each StasisStart, publishing the running count under the key `ari`.
Run: python tests/apps/counter_app.py worker
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import orjson

from callstream_common.kafka.faust_app import CallstreamApp, create_app, decoded, prepare_topics, source_topic
from callstream_common.kafka.pass_over import ari_types
from callstream_common.logs import setup_logging
from callstream_common.settings import ServiceSettings, load_settings
from callstream_common.topics import TopicName


def output_topic(settings: ServiceSettings) -> str:
    return f"{settings.topic_prefix}.counter-out"


def build(settings: ServiceSettings) -> CallstreamApp:
    # faust's data directory defaults to the working directory (the repository): the temporary one instead.
    app = create_app(settings, datadir=str(Path(tempfile.gettempdir()) / f"{settings.topic_prefix}-counter-data"))
    calls = source_topic(app, settings, TopicName.CALLS)
    counts = app.Table("counts", default=int, partitions=settings.pbx_partitions, key_type=bytes,
                       value_type=int)
    out = app.topic(output_topic(settings), key_serializer="raw", value_serializer="raw",
                    partitions=settings.pbx_partitions)

    @app.agent(calls)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for message, _event in decoded(app, stream, topic=TopicName.CALLS, service=settings.service):
            pbx = (message.pbx_id or "-").encode()
            counts[pbx] += 1
            await out.send(key=pbx, value=orjson.dumps(
                {"pbx": pbx.decode(), "count": counts[pbx], "call": message.body.call_id}))

    if os.environ.get("COUNTER_ARI"):
        ari = source_topic(app, settings, TopicName.ARI_EVENTS)
        started: list[str] = []

        @app.agent(ari)
        async def count_starts(stream):  # type: ignore[no-untyped-def]
            async for message, _event in decoded(app, stream, topic=TopicName.ARI_EVENTS, service=settings.service,
                                                 wanted=ari_types({"StasisStart"})):
                await asyncio.sleep(0.05)  # records passed over meanwhile wait for this one (pass_over.py)
                started.append(message.message_id)
                await out.send(key=b"ari", value=orjson.dumps({"pbx": "ari", "count": len(started), "call": ""}))

    hold = os.environ.get("COUNTER_HOLD_COMMITS")
    if hold:
        app.commit_barriers.append(lambda: held_while(Path(hold)))
    return app


async def held_while(path: Path) -> None:
    if path.exists():
        path.with_name(path.name + ".asked").touch()
    while path.exists():
        await asyncio.sleep(0.05)


def main() -> None:
    settings = load_settings(ServiceSettings, [], service="counter")
    setup_logging(settings.service, settings.instance, settings.log_level)
    app = build(settings)
    asyncio.run(prepare_topics(app, settings))  # its changelog exists before its consumer subscribes
    # info: the test waits for faust's "Worker ready" line before it sends anything.
    sys.argv = [sys.argv[0], *sys.argv[1:], "--loglevel", "info"]
    app.main()


if __name__ == "__main__":
    main()
