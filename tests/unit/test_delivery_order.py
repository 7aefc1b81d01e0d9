"""delivery_order: records are handed to the streams strictly in offset order per partition."""

from __future__ import annotations

from callstream_common.kafka.delivery_order import DeliveryOrder, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_consecutive_offsets_are_delivered_and_the_first_record_of_an_unknown_partition_too() -> None:
    order = DeliveryOrder()
    assert order.judge("p", 17) is Verdict.DELIVER  # nothing committed: wherever the reset policy starts
    order.delivered("p", 17)
    assert order.judge("p", 18) is Verdict.DELIVER


def test_a_jump_seeks_back_once_and_holds_later_records_until_the_missing_one_comes() -> None:
    clock = Clock()
    order = DeliveryOrder(retry_after_s=5.0, clock=clock)
    order.restart_at("p", 100)  # sought to the committed offset
    assert order.judge("p", 457) is Verdict.SEEK_BACK
    assert order.expected("p") == 100
    clock.now = 1.0
    assert order.judge("p", 458) is Verdict.HELD  # the rest of the fetch that skipped: not delivered either
    assert order.judge("p", 100) is Verdict.DELIVER
    order.delivered("p", 100)
    assert order.judge("p", 101) is Verdict.DELIVER


def test_a_seek_back_that_brings_nothing_is_tried_again() -> None:
    clock = Clock()
    order = DeliveryOrder(retry_after_s=5.0, clock=clock)
    order.restart_at("p", 100)
    assert order.judge("p", 110) is Verdict.SEEK_BACK
    clock.now = 6.0
    assert order.judge("p", 111) is Verdict.SEEK_BACK


def test_records_below_the_next_offset_were_delivered_already() -> None:
    order = DeliveryOrder()
    order.restart_at("p", 100)
    order.delivered("p", 100)
    order.delivered("p", 101)
    assert order.judge("p", 100) is Verdict.SEEN
    # A seek back to the committed offset (after a rebalance, say) delivers them again: at-least-once.
    order.restart_at("p", 100)
    assert order.judge("p", 100) is Verdict.DELIVER


def test_partitions_are_judged_apart_and_a_reset_without_offset_takes_what_comes() -> None:
    order = DeliveryOrder()
    order.restart_at("a", 5)
    order.restart_at("b", 50)
    assert order.judge("a", 5) is Verdict.DELIVER
    assert order.judge("b", 5) is Verdict.SEEN
    order.restart_at("b", None)
    assert order.judge("b", 5) is Verdict.DELIVER
