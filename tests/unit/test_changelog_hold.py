"""The changelog hold (kafka/changelog_hold.py): an input's table writes reach the producer only after the input's
own records are acknowledged, in input order, and never after a failed acknowledgement. Plain asyncio futures
stand for the producer's acknowledgements and for faust's changelog records."""

from __future__ import annotations

import asyncio

import pytest

from callstream_common.kafka.changelog_hold import ChangelogHold


def new_hold(released: list[str], failures: list[BaseException] | None = None) -> ChangelogHold:
    return ChangelogHold(released.append, on_failure=None if failures is None else failures.append)


async def test_writes_wait_for_their_inputs_records_and_go_out_in_input_order() -> None:
    released: list[str] = []
    hold = new_hold(released)
    loop = asyncio.get_running_loop()
    first_ack, second_ack = loop.create_future(), loop.create_future()
    assert not hold.capture("outside")  # not in an input: the producer sends it as usual
    async with hold.input():
        hold.after([first_ack])
        assert hold.capture("state of input 1")
    async with hold.input():
        hold.after([second_ack])
        assert hold.capture("state of input 2")
        assert hold.capture("index of input 2")
    second_ack.set_result(None)  # the later input acknowledged first: it still waits for the earlier one
    await asyncio.sleep(0.01)
    assert released == []
    first_ack.set_result(None)
    await hold.settle()
    assert released == ["state of input 1", "state of input 2", "index of input 2"]


async def test_a_failed_acknowledgement_releases_nothing_more_and_stops_the_worker() -> None:
    released: list[str] = []
    failures: list[BaseException] = []
    hold = new_hold(released, failures)
    loop = asyncio.get_running_loop()
    lost = loop.create_future()
    async with hold.input():
        hold.after([lost])
        hold.capture("state after the lost record")
    async with hold.input():
        hold.after([])
        hold.capture("a later state")  # stored after a hole would be wrong: held back too
    lost.set_exception(RuntimeError("broker gone"))
    with pytest.raises(RuntimeError, match="not acknowledged"):
        await hold.settle()
    assert released == []
    assert len(failures) == 1
    with pytest.raises(RuntimeError, match="not acknowledged"):
        async with hold.input():
            pass  # no input is taken once a failure is known


async def test_records_handed_over_outside_an_input_are_refused() -> None:
    hold = new_hold([])
    with pytest.raises(RuntimeError, match="outside an input"):
        hold.after([])


async def test_an_input_that_raises_releases_nothing() -> None:
    released: list[str] = []
    hold = new_hold(released)
    with pytest.raises(ValueError):
        async with hold.input():
            hold.capture("half of an input")
            raise ValueError("handler failed")
    await hold.settle()
    assert released == []
