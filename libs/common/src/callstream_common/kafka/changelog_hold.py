"""Table writes whose changelog records wait for the input's own records, so that a handler need not.

A worker that keeps state in faust tables must not let a new state reach the changelog before the records the
input produced are acknowledged: after a crash the successor would resume from the new state, take the input,
re-delivered, for a duplicate, and the records that were lost would never be made (at-least-once). Awaiting
the acknowledgements in the handler keeps that order but holds every input behind the previous one's round
trip to the broker: one produce request per input, and a worker that spends its time waiting (agent-state did,
docs/acd.md "Session 8").

Here the handler runs inside `hold.input()`: the table is updated in memory at once (the next input reads it),
the changelog records its writes make are held back, and once the input's acknowledgements (`hold.after(...)`)
and every earlier input's release are done, they go to the producer in order. A failed acknowledgement
releases nothing more, ever: `failure` is set, `on_failure` is told (the worker stops and replays from its
last commit), and `settle` raises. `settle` is a commit barrier: the worker commits no offset before the held
records of the inputs it covers are handed over (the producer's own tracking then waits for their
acknowledgement, unacknowledged.py).

The capture is by context (a contextvar), so only the writes made while the input's handler runs are held;
faust's own sends, and other tasks', pass through.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from callstream_common.kafka.first_failure import FirstFailure


class HeldInput:
    """One input's held changelog records and the acknowledgements they wait for."""

    def __init__(self) -> None:
        self.records: list[Any] = []  # faust FutureMessages, in the order the table wrote them
        self.acks: list[Awaitable[object]] = []


class ChangelogHold:
    def __init__(self, release: Callable[[Any], None], *,
                 on_failure: Callable[[BaseException], object] | None = None) -> None:
        self._release = release  # hands one held record to the producer (tracked until acknowledged)
        self._failures = FirstFailure("its table writes were not stored", on_failure)
        self._current: contextvars.ContextVar[HeldInput | None] = contextvars.ContextVar("held_input", default=None)
        self._last: asyncio.Task[None] | None = None  # the last release handed over: releases run in input order

    def capture(self, record: Any) -> bool:
        """Called by the producer for every record it is given to send soon: True if the running input holds it."""
        held = self._current.get()
        if held is None:
            return False
        held.records.append(record)
        return True

    def after(self, acks: list[Awaitable[object]]) -> None:
        """The running input's own records (the producer's acknowledgements): its table writes follow them."""
        held = self._current.get()
        if held is None:
            raise RuntimeError("records handed over outside an input: nothing would wait for them")
        held.acks.extend(acks)

    @contextlib.asynccontextmanager
    async def input(self) -> AsyncIterator[HeldInput]:
        """Hold the changelog records of the table writes made inside; release them once the input's
        acknowledgements and the earlier inputs' releases are done. Nothing is released if the body raises."""
        self.check()
        held = HeldInput()
        token = self._current.set(held)
        try:
            yield held
        finally:
            self._current.reset(token)
        if not held.records and not held.acks:
            return
        # An input with acknowledgements and no writes joins the chain too: if they fail, the worker must stop.
        previous = self._last
        task = asyncio.ensure_future(self._released(previous, held))
        self._last = task
        task.add_done_callback(self._done)

    async def settle(self) -> None:
        """Wait until every input held so far is released; raises if one could not be."""
        self.check()
        last = self._last
        if last is not None:
            await asyncio.gather(last, return_exceptions=True)
        self.check()

    @property
    def failure(self) -> BaseException | None:
        return self._failures.failure

    def check(self) -> None:
        self._failures.check()

    async def _released(self, previous: asyncio.Task[None] | None, held: HeldInput) -> None:
        if previous is not None:
            await previous  # its failure is this one's too: no later state is stored after a hole
        await asyncio.gather(*held.acks)
        for record in held.records:
            self._release(record)

    def _done(self, task: asyncio.Task[None]) -> None:
        if self._last is task:
            self._last = None
        self._failures.task_done(task)
