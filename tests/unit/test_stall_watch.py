"""The event-loop stall watchdog (callstream_common/stall_watch.py) names what blocked the loop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from callstream_common.stall_watch import StallWatch
from helpers import until


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # synchronous work on the loop's thread: nothing else runs meanwhile


async def test_a_blocked_loop_is_logged_with_what_blocked_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="callstream_common.stall_watch")
    watch = asyncio.create_task(StallWatch(0.05).run())
    await asyncio.sleep(0.05)  # the heartbeat and its sampling thread are running
    hold_the_loop(0.3)

    record = await until(lambda: next((r for r in caplog.records if r.getMessage() == "event loop stalled"), None),
                         timeout=5, what="a stall logged")
    watch.cancel()
    stall_ms = getattr(record, "stall_ms")
    assert 250 <= stall_ms < 2000
    assert any("hold_the_loop" in stack for stack in getattr(record, "stacks"))


async def test_a_loop_that_keeps_turning_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="callstream_common.stall_watch")
    watch = asyncio.create_task(StallWatch(0.2).run())
    for _ in range(20):
        hold_the_loop(0.01)  # short synchronous steps, each well under the threshold
        await asyncio.sleep(0.005)
    watch.cancel()
    assert not [r for r in caplog.records if r.getMessage() == "event loop stalled"]
