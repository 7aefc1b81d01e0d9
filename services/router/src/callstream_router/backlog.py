"""Whether the worker is behind on a partition of `ari.events`, so that its deadlines wait.

A deadline (ring, max wait, reservation) fires from the tick, on the wall clock, while the events that would
cancel it (the agent answered, the caller hung up) may still sit unread in `ari.events`: after a restart or
under a burst the worker reads a backlog, and firing then hangs up agents who had answered seconds ago (seen:
a killed router's successor missed dozens of answered legs and the agents were auto-paused). So a partition's
deadlines are held while the worker is more than `slack` records behind on its events; they fire once it has
caught up, a little late, never wrongly.
"""

from __future__ import annotations


class Backlog:
    def __init__(self, slack: int) -> None:
        self._slack = slack
        self._processed: dict[int, int] = {}  # partition -> offset of the last ari.events record handled

    def processed(self, partition: int, offset: int) -> None:
        self._processed[partition] = max(offset, self._processed.get(partition, -1))

    def forget(self, partition: int) -> None:
        """The partition went to another worker: what this one read of it says nothing any more."""
        self._processed.pop(partition, None)

    def behind(self, partition: int, highwater: int | None, committed: int | None) -> bool:
        """`highwater`: the partition's next offset to be written; `committed`: the group's next offset to read
        (what a worker that has handled nothing yet since its assignment starts from)."""
        if highwater is None:
            return False  # not fetched yet: nothing known to wait for
        done = self._processed.get(partition)
        next_to_read = done + 1 if done is not None else committed
        if next_to_read is None:
            return highwater > self._slack
        return highwater - next_to_read > self._slack
