"""A worker's decoded copies are trusted within the consumer generation they were made in, not after."""

from __future__ import annotations

from callstream_common.kafka.owned import OwnedCopies


def test_a_copy_is_trusted_in_its_generation_and_ignored_after_a_rebalance() -> None:
    generation = 3
    copies: OwnedCopies[str, int] = OwnedCopies(lambda: generation)
    assert copies.get("pbx-1") is None
    copies.put("pbx-1", 41)
    assert copies.get("pbx-1") == 41
    generation = 4  # a rebalance: another worker may have moved the key on
    assert copies.get("pbx-1") is None
    copies.put("pbx-1", 42)
    assert copies.get("pbx-1") == 42
