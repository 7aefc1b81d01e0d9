"""The workers' faust consumer runs aiokafka on the worker's own event loop, not in a thread of its own
(faust_app._ConsumerThread): calls are awaited in place, and a start-up failure reaches the caller. The stack tests
(every faust worker of the suite, the killed-worker runs among them) exercise it against a real broker; this one
needs none."""

from __future__ import annotations

import asyncio
import threading

import pytest
from aiokafka.errors import KafkaConnectionError

from callstream_common.kafka.faust_app import create_app
from callstream_common.settings import ServiceSettings


async def test_the_consumer_runs_on_the_workers_loop_and_its_start_up_failure_reaches_the_caller() -> None:
    app = create_app(ServiceSettings(service="unit", tenant="t", topic_prefix="t",
                                     kafka_bootstrap="127.0.0.1:9"))  # nothing listens there
    thread = app.consumer._thread
    loop = asyncio.get_running_loop()
    assert thread.thread_loop is loop and thread.parent_loop is loop

    async def where(value: int) -> tuple[int, int]:
        await asyncio.sleep(0)
        return value, threading.get_ident()

    assert await thread.call_thread(where, 7) == (7, threading.get_ident())  # no hand-over to another thread
    assert await thread.call_thread(lambda: "plain") == "plain"  # aiokafka's subscribe is a plain function

    before = set(threading.enumerate())
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(thread.start(), timeout=60)
    assert thread._thread is None  # mode's worker thread was never made
    started = [t for t in set(threading.enumerate()) - before if not t.name.startswith("asyncio_")]
    assert started == []  # (asyncio's resolver threads aside)
