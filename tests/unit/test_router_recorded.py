"""The router's recorded map copies: the keys an input touched are known without comparing every entry, and the
table writes found from them are those a full comparison finds (recorded.py, stored.changes)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callstream_router.recorded import Recorded, forget_bases, touched_since
from callstream_router.state import RouterState
from callstream_router.stored import changes

KEYS = st.sampled_from([f"k{n}" for n in range(8)])
# One change to a map: set a key to a value, delete it (if there), pop it, or clear the map.
OPS = st.one_of(
    st.tuples(st.just("set"), KEYS, st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("del"), KEYS, st.none()),
    st.tuples(st.just("pop"), KEYS, st.none()),
    st.tuples(st.just("clear"), st.none(), st.none()),
)


def apply(target: dict[str, str], op: tuple[str, Any, Any]) -> None:
    kind, key, value = op
    if kind == "set":
        target[key] = value
    elif kind == "del" and key in target:
        del target[key]
    elif kind == "pop":
        target.pop(key, None)
    elif kind == "clear":
        target.clear()


def test_every_way_decide_changes_a_map_is_recorded() -> None:
    base = {"a": 1, "b": 2, "c": 3}
    copy = Recorded(base)
    copy["d"] = 4
    del copy["a"]
    copy.pop("b")
    copy.pop("zz", None)  # a key that is not there: recorded all the same (harmless: compared, not written)
    assert copy.touched == {"a", "b", "d", "zz"}
    assert base == {"a": 1, "b": 2, "c": 3}  # a copy: the state it came from is untouched
    copy.clear()
    assert copy.touched == {"a", "b", "c", "d", "zz"}
    for unrecorded in (lambda: copy.update(x=1), lambda: copy.setdefault("x", 1), copy.popitem):
        with pytest.raises(TypeError, match="not recorded"):
            unrecorded()


def test_the_chain_back_to_the_input_state_gathers_every_step_and_is_cut_after() -> None:
    before: dict[str, int] = {"a": 1}
    first = Recorded(before)
    first["b"] = 2
    second = Recorded(first)  # decide run again in the same input (a reservation's answer fed back)
    second["c"] = 3
    assert touched_since(before, second) == {"b", "c"}
    assert touched_since(first, second) == {"c"}
    assert touched_since(second, second) == set()
    assert touched_since({"a": 1}, second) is None  # an equal map, not the one it was made from
    forget_bases(second)
    assert touched_since(before, second) is None  # cut: the caller falls back to comparing every entry
    third = Recorded(second)  # the next input starts from the stored state
    third["d"] = 4
    assert touched_since(second, third) == {"d"}


@given(start=st.dictionaries(KEYS, st.sampled_from(["a", "b", "c"])),
       steps=st.lists(st.lists(OPS, max_size=6), min_size=1, max_size=3))
def test_writes_from_the_touched_keys_are_those_a_full_comparison_finds(
        start: dict[str, str], steps: list[list[tuple[str, Any, Any]]]) -> None:
    before = RouterState(channels=dict(start))
    current: dict[str, str] = before.channels
    for ops in steps:  # one decide step each: a Recorded copy of the previous step's map
        current = Recorded(current)
        for op in ops:
            apply(current, op)
    after = RouterState(channels=current)
    recorded = changes("p", before, after)
    full = changes("p", before, RouterState(channels=dict(current)))  # a plain copy: every entry compared
    assert sorted(recorded, key=repr) == sorted(full, key=repr)
    table = {k: v for k, v in start.items()}
    for key, value in recorded:
        ident = key.decode().rpartition("\x1f")[2]
        if value is None:
            table.pop(ident)
        else:
            table[ident] = value.decode().strip('"')
    assert table == current
