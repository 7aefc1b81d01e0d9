"""Which fetched record a stream worker may hand to its streams: exactly the next offset of its partition.

faust hands records over in the order its fetches return them, and notes a jump in a partition's offsets as a
"gap" it later counts as processed. Records do go missing that way: at a worker's start after a failover, a
whole fetch (hundreds of records of every partition) was never handed over while the fetch position moved past
it, and the records after it were processed first (seen in the end-to-end run with a killed agent-state worker:
commands lost; a call's answer handled after its end, docs/acd.md "Session 6"). An agent's state machine must
see its inputs in order, so a jump is not skipped over: the partition is sought back to the missing offset and
nothing after it is handed over until that record comes.

Free of faust on purpose (unit-tested alone); faust_app._Consumer applies it. Partitions are any hashable key.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Hashable


class Verdict(enum.Enum):
    DELIVER = "deliver"
    SEEN = "seen"  # below the next offset: handed over already (a seek back reads it again)
    SEEK_BACK = "seek_back"  # above it: records in between never came; seek to `expected` and hold this one
    HELD = "held"  # above it, a seek back is under way: wait for it


class DeliveryOrder:
    def __init__(self, *, retry_after_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._next: dict[Hashable, int] = {}
        self._seeking_since: dict[Hashable, float] = {}
        self._retry_after_s = retry_after_s
        self._clock = clock

    def restart_at(self, partition: Hashable, offset: int | None) -> None:
        """The fetch position was set (a seek to the committed offset, say): deliver from `offset`; None takes
        whatever comes first (a partition with nothing committed starts where the reset policy puts it)."""
        self._seeking_since.pop(partition, None)
        if offset is None:
            self._next.pop(partition, None)
        else:
            self._next[partition] = offset

    def expected(self, partition: Hashable) -> int | None:
        return self._next.get(partition)

    def judge(self, partition: Hashable, offset: int) -> Verdict:
        expected = self._next.get(partition)
        if expected is None or offset == expected:
            return Verdict.DELIVER
        if offset < expected:
            return Verdict.SEEN
        since = self._seeking_since.get(partition)
        if since is not None and self._clock() - since < self._retry_after_s:
            return Verdict.HELD
        # No seek under way, or the last one did not bring the record back in time: seek (again).
        self._seeking_since[partition] = self._clock()
        return Verdict.SEEK_BACK

    def delivered(self, partition: Hashable, offset: int) -> None:
        self._next[partition] = offset + 1
        self._seeking_since.pop(partition, None)
