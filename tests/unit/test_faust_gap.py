"""The commit guard and the gap check of the faust app factory (pure parts; the end-to-end test with a
router killed mid-run exercises them against Kafka)."""

from __future__ import annotations

from callstream_common.kafka.faust_app import head_gap


def test_a_run_starting_at_the_committed_offset_is_no_gap() -> None:
    # The committed offset is the next one to read: acking it and after is normal progress.
    assert not head_gap(100, [100, 101, 102])
    assert not head_gap(100, [])
    assert not head_gap(None, [5, 6])  # nothing committed yet: faust starts from the first record it reads


def test_a_missing_record_at_the_committed_offset_is_a_gap() -> None:
    # faust itself would commit 102 here (it tolerates one missing record): the record at 100 would be lost.
    assert head_gap(100, [101, 102])
    assert head_gap(100, [105, 103])
