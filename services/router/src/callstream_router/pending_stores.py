"""State stores that wait for the records of their input, without holding up the next input.

The router stores a PBX's new state only once Kafka has acknowledged the input's records (at-least-once: a
crash before the store re-processes the input and repeats the records with the same ids). Awaiting the
acknowledgements in the handler held every input behind the previous one's round trip to the broker (1-25 ms
under bench-routing's load), a queue in front of every offer. Here the handler hands the store over and goes
on: the next input is decided from the state kept in memory, while the table gets each state once its records
and the partition's earlier stores are done (in input order: a later state never lands before an earlier one).

`settle` is the commit barrier: the worker commits offsets only after it, so no offset passes an input whose
state is not stored. A store whose records fail stops everything after it: `failure` is set, later stores of
the partition fail too, `settle` and `check` raise, and `on_failure` is told (the worker stops and replays from
its last commit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from callstream_common.kafka.first_failure import FirstFailure


class PendingStores:
    def __init__(self, *, on_failure: Callable[[BaseException], object] | None = None,
                 write_context: Callable[[], object] = lambda: None) -> None:
        self._last: dict[int, asyncio.Task[None]] = {}  # the last pending store of each partition
        self._failures = FirstFailure("its state was not stored", on_failure)
        # What a deferred write needs kept alive until it is made (faust names a table's changelog partition
        # after the event being processed, which the task's copy of the handler's context refers to weakly).
        self._write_context = write_context

    @property
    def failure(self) -> BaseException | None:
        return self._failures.failure

    def after(self, partition: int, acks: Sequence[Awaitable[object]], write: Callable[[], None]) -> None:
        """Run `write` once `acks` and the partition's earlier stores are done; at once if nothing is pending."""
        self.check()
        previous = self._last.get(partition)
        if not acks and previous is None:
            write()
            return
        task = asyncio.create_task(self._store(previous, list(acks), write, self._write_context()))
        self._last[partition] = task
        task.add_done_callback(lambda done: self._done(partition, done))

    def pending(self, partition: int) -> bool:
        return partition in self._last

    async def settle_partition(self, partition: int) -> None:
        """Wait for the partition's stores (before reading its table directly)."""
        last = self._last.get(partition)
        if last is not None:
            await asyncio.gather(last, return_exceptions=True)
        self.check()

    async def settle(self) -> None:
        """Wait for every store handed over so far; raises if one failed."""
        self.check()
        pending = list(self._last.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self.check()

    def check(self) -> None:
        self._failures.check()

    @staticmethod
    async def _store(previous: asyncio.Task[None] | None, acks: list[Awaitable[object]],
                     write: Callable[[], None], write_context: object) -> None:
        # `write_context` is unused here: holding it as an argument keeps it alive until `write` has run.
        if previous is not None:
            await previous  # its failure is this store's too: no later state is stored after a hole
        await asyncio.gather(*acks)
        write()

    def _done(self, partition: int, task: asyncio.Task[None]) -> None:
        if self._last.get(partition) is task:
            del self._last[partition]
        self._failures.task_done(task)
