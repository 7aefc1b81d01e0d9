"""freeze_startup_heap: what exists when it is called is out of the collector's full collections."""

from __future__ import annotations

import gc

from callstream_common.heap import freeze_startup_heap


def test_the_objects_alive_at_start_up_are_frozen_and_garbage_is_collected_first() -> None:
    class Cycle:
        other: object | None = None

    kept = [object() for _ in range(100)]
    garbage = Cycle()
    garbage.other = garbage  # only the collector frees a cycle
    collected: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["collected"])

    del garbage
    gc.callbacks.append(count)
    try:
        freeze_startup_heap()
        assert sum(collected) >= 1  # the cycle was collected before the freeze, not frozen with the rest
        assert gc.get_freeze_count() > len(kept)
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()  # the test process goes on collecting as before
