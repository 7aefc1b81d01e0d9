"""Decoded copies of a stream worker's table entries, kept while the worker owns their partition.

Free of faust on purpose: the processors that use it are unit-tested without a worker; the generation comes
from the app (`app.consumer_generation_id`) as a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT")
ValueT = TypeVar("ValueT")


class OwnedCopies(Generic[KeyT, ValueT]):
    """Decoded copies of what a worker keeps in its changelog-backed tables, trusted for the consumer group
    generation they were made in: within one generation the worker alone owns the key's partition, so its copy
    is the truth and need not be decoded from the table again; after a rebalance another worker may have moved
    the key on, and the copy is ignored (the caller reads the recovered table again)."""

    def __init__(self, generation: Callable[[], int]) -> None:
        self._generation = generation
        self._copies: dict[KeyT, tuple[int, ValueT]] = {}

    def get(self, key: KeyT) -> ValueT | None:
        copy = self._copies.get(key)
        return copy[1] if copy is not None and copy[0] == self._generation() else None

    def put(self, key: KeyT, value: ValueT) -> None:
        self._copies[key] = (self._generation(), value)
