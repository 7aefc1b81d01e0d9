"""The router's pending stores: a state is stored only after its records, in input order, and a failure stops
everything after it (services/router/.../pending_stores.py). Pure asyncio: the acknowledgements are futures."""

from __future__ import annotations

import asyncio
import functools

import pytest

from callstream_router.pending_stores import PendingStores


async def test_stores_wait_for_their_acks_and_keep_input_order() -> None:
    stores = PendingStores()
    written: list[str] = []
    first_ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    second_ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stores.after(0, [first_ack], lambda: written.append("first"))
    stores.after(0, [second_ack], lambda: written.append("second"))
    stores.after(0, [], lambda: written.append("third"))  # no records, but after the two before it
    stores.after(1, [], lambda: written.append("other partition"))  # nothing pending there: at once

    second_ack.set_result(None)  # the later input's records are acknowledged first
    await asyncio.sleep(0)
    assert written == ["other partition"]
    assert stores.pending(0) and not stores.pending(1)

    first_ack.set_result(None)
    await stores.settle()
    assert written == ["other partition", "first", "second", "third"]
    assert not stores.pending(0)


async def test_settle_waits_for_every_pending_store() -> None:
    stores = PendingStores()
    written: list[int] = []
    acks = [asyncio.get_running_loop().create_future() for _ in range(3)]
    for partition, ack in enumerate(acks):
        stores.after(partition, [ack], functools.partial(written.append, partition))
    settling = asyncio.create_task(stores.settle())
    for ack in acks[:2]:
        ack.set_result(None)
    await asyncio.sleep(0.01)
    assert not settling.done()  # partition 2's records are not acknowledged yet
    acks[2].set_result(None)
    await settling
    assert sorted(written) == [0, 1, 2]


async def test_a_failed_ack_stores_nothing_after_it_and_stops_the_worker() -> None:
    failures: list[BaseException] = []
    stores = PendingStores(on_failure=failures.append)
    written: list[str] = []
    failing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stores.after(0, [failing], lambda: written.append("failed input"))
    stores.after(0, [], lambda: written.append("next input"))
    failing.set_exception(ConnectionError("broker gone"))

    with pytest.raises(RuntimeError, match="not acknowledged"):
        await stores.settle()
    assert written == []
    assert len(failures) == 1 and isinstance(failures[0], ConnectionError)
    with pytest.raises(RuntimeError, match="not acknowledged"):
        stores.after(1, [], lambda: written.append("later"))  # the worker takes no further input
    assert written == []


async def test_settle_partition_waits_only_for_that_partition() -> None:
    stores = PendingStores()
    written: list[int] = []
    blocked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ready.set_result(None)
    stores.after(0, [blocked], lambda: written.append(0))
    stores.after(1, [ready], lambda: written.append(1))
    await stores.settle_partition(1)
    assert written == [1] and stores.pending(0)
    blocked.set_result(None)
    await stores.settle_partition(0)
    assert written == [1, 0]
