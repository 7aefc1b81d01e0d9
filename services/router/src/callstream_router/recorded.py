"""A map copy that remembers which keys were set or removed in it, so that what one input changed in a PBX's
state is known without comparing every entry.

decide works on copies of the state's maps (`_Work`) and the processor stores only what changed (stored.py).
Finding that by comparing the maps entry by entry cost time in proportion to everything the state holds, on
every input: calls in progress, and the ended calls with their channels kept for `tombstone_s` (10 minutes by
default, thousands of entries per PBX in production; in bench-routing the comparison was ~7% of the router's
busy time after one minute). With these copies it costs in proportion to the keys the input touched.

A copy knows the map it was copied from (`base`); `touched_since` walks back from the newest copy to a given
earlier map, gathering the keys on the way (an input may run decide several times). `forget_bases` cuts the chain
once an input's writes are known, so that no state keeps its predecessors alive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recorded(dict[K, V]):
    """A dict copied from `base` that records every key set or removed in it since (its values are never
    mutated in place: the state's values are frozen)."""

    __slots__ = ("base", "touched")

    def __init__(self, base: Mapping[K, V]) -> None:
        super().__init__(base)
        self.base: Mapping[K, V] | None = base
        self.touched: set[K] = set()

    def __setitem__(self, key: K, value: V) -> None:
        self.touched.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: K) -> None:
        self.touched.add(key)
        super().__delitem__(key)

    def pop(self, key: K, *default: Any) -> Any:
        self.touched.add(key)
        return super().pop(key, *default)

    def clear(self) -> None:
        self.touched.update(self)
        super().clear()

    # The other ways to change a dict would escape the record: decide does not use them, and must not.
    def _unrecorded(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("not recorded: use item assignment, del, pop or clear")

    update = setdefault = popitem = __ior__ = _unrecorded


def touched_since(old: Mapping[Any, Any], new: Mapping[Any, Any]) -> set[Any] | None:
    """The keys that may differ between `old` and `new`, if `new` was made from `old` by Recorded copies (None if
    it was not, or the chain was cut: the caller compares every entry then)."""
    keys: set[Any] = set()
    current: Mapping[Any, Any] | None = new
    while current is not old:
        if not isinstance(current, Recorded):
            return None
        keys |= current.touched
        current = current.base
    return keys


def forget_bases(*maps: Mapping[Any, Any]) -> None:
    """Cut the maps' chains to the maps they were copied from (which can then be freed); later copies of them
    still know what they touch."""
    for mapping in maps:
        if isinstance(mapping, Recorded):
            mapping.base = None
