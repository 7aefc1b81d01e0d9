"""Records passed over by the consumer itself, before they reach a stream, and acked in offset order.

Much of what a worker reads is of no interest to it: of `ari.events`, agent-state wants registrations (~1
record in 6), the router ~4 in 5; of `ari.command-results` the router wants the failures, of `agents` the
agents made available. Passed over inside the stream (faust_app.decoded), each still costs faust's whole
delivery: the conductor, the stream's queue, a task switch or two, the event and its ack. The worker's consumer
can tell from one header (a raw ARI event's `ari_type`, a body's `hint`, envelope.py) without decoding, so it
acks such a record where it fetched it and delivers only the rest.

One rule keeps that safe: a passed-over record is acked only once every record delivered before it on its
partition is acked. (A delivered record a stream skips, at a rebalance, is never acked: what was held behind it
stays unacked until the partition's reset, and is read again from the committed offset.) faust commits only a
run of consecutive acked offsets, and an acked offset ahead of an unacked one is how GapHealer recognises a
record lost on its way (it then seeks back to it): a record acked early while an earlier one is still being
handled, say for longer than two of its checks, would be "healed" by delivering again what is in hand.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from callstream_common.envelope import H_ARI_TYPE, H_HINT

MessageT = TypeVar("MessageT")


@dataclass(frozen=True)
class Wanted:
    """What a stream wants of a topic, by one header: a record whose `header` has a value not in `values` is
    passed over. A record without the header (a gateway marker on `ari.events`, a record from an older
    producer) is not: it is decoded and judged by its handler."""

    header: str
    values: frozenset[str]

    def passes_over(self, headers: Sequence[tuple[str, bytes]]) -> bool:
        for name, value in headers:
            if name == self.header:
                return value.decode("utf-8", "replace") not in self.values
        return False


def ari_types(types: Collection[str]) -> Wanted:
    """Raw ARI events of these types (and whatever has no `ari_type` header)."""
    return Wanted(H_ARI_TYPE, frozenset(types))


def hinted(values: Collection[str]) -> Wanted:
    """Messages whose body's hint (Body.HINT_FIELD) is one of `values` (and whatever has no hint)."""
    return Wanted(H_HINT, frozenset(values))


@dataclass(frozen=True)
class PassOverRule:
    """What the one stream reading a topic wants of it; `passed` is told of each record passed over, as
    (partition, offset)."""

    wanted: Wanted
    passed: Callable[[int, int], None]


class InOrderAcks(Generic[MessageT]):
    """Per partition: the last offset delivered to a stream, the last one done, and the passed-over records
    waiting for the records delivered before them. Offsets of one partition are delivered and done in order
    (a stream handles a partition's records one after another)."""

    def __init__(self) -> None:
        self._delivered: dict[Hashable, int] = {}
        self._done: dict[Hashable, int] = {}
        # partition -> (the last offset delivered before it, the passed-over record), in offset order
        self._held: dict[Hashable, deque[tuple[int, MessageT]]] = {}

    def delivered(self, partition: Hashable, offset: int) -> None:
        self._delivered[partition] = max(offset, self._delivered.get(partition, -1))

    def passed_over(self, partition: Hashable, message: MessageT) -> bool:
        """True: ack `message` now; False: it is held until `done` releases it."""
        last_delivered = self._delivered.get(partition)
        held = self._held.get(partition)
        if last_delivered is None or (not held and self._done.get(partition, -1) >= last_delivered):
            return True
        if held is None:
            held = self._held[partition] = deque()
        held.append((last_delivered, message))
        return False

    def done(self, partition: Hashable, offset: int) -> list[MessageT]:
        """A delivered record was acked; returns the held records to ack now, in order."""
        if offset > self._done.get(partition, -1):
            self._done[partition] = offset
        held = self._held.get(partition)
        if not held:
            return []
        done = self._done[partition]
        released = []
        while held and held[0][0] <= done:
            released.append(held.popleft()[1])
        return released

    def reset(self, partition: Hashable) -> None:
        """The partition's fetch position was set (a seek, an assignment): what is held is read again from
        there, so it is dropped unacked, and the counting starts over."""
        self._delivered.pop(partition, None)
        self._done.pop(partition, None)
        self._held.pop(partition, None)

    def holding(self, partition: Hashable) -> int:
        held = self._held.get(partition)
        return len(held) if held else 0
