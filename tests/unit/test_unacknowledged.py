"""Unacknowledged: a commit waits for every record handed over before it, and never passes one that failed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callstream_common.kafka.unacknowledged import Unacknowledged


async def test_settle_waits_for_every_record_handed_over_before_it() -> None:
    loop = asyncio.get_running_loop()
    writes = Unacknowledged()
    first: asyncio.Future[Any] = loop.create_future()
    second: asyncio.Future[Any] = loop.create_future()
    writes.track(first)
    writes.track(second)
    settled = asyncio.create_task(writes.settle())
    first.set_result("offset 1")
    await asyncio.sleep(0)
    assert not settled.done()  # the second is not acknowledged yet
    later: asyncio.Future[Any] = loop.create_future()
    writes.track(later)  # handed over after the barrier began: not waited for
    second.set_result("offset 2")
    await asyncio.wait_for(settled, timeout=1)
    assert len(writes) == 1
    later.set_result("offset 3")
    await asyncio.sleep(0)
    assert len(writes) == 0


async def test_nothing_tracked_settles_at_once() -> None:
    await asyncio.wait_for(Unacknowledged().settle(), timeout=1)


@pytest.mark.parametrize("fail", ["error", "cancel"])
async def test_a_record_not_delivered_fails_this_settle_and_every_later_one(fail: str) -> None:
    loop = asyncio.get_running_loop()
    writes = Unacknowledged()
    lost: asyncio.Future[Any] = loop.create_future()
    writes.track(lost)
    if fail == "error":
        lost.set_exception(ConnectionError("broker gone"))
    else:
        lost.cancel()
    await asyncio.sleep(0)  # its done-callback runs
    with pytest.raises(RuntimeError, match="not delivered"):
        await writes.settle()
    with pytest.raises(RuntimeError, match="not delivered"):
        await writes.settle()  # a later commit must not pass it either
