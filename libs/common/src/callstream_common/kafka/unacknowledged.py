"""Records handed to the producer without waiting for them, until the broker acknowledges them.

faust writes a table's changelog without waiting (`Producer.send_soon`: a buffer that a background task hands
to aiokafka one record at a time). Before a commit it flushes that buffer, but `ProducerBuffer.flush` gives up
as soon as 0.1 s pass without a record leaving the buffer, and the commit goes ahead: under load (the buffer
past its 100 records, "producer buffer full") offsets were committed for inputs whose table writes were still
in the buffer, and a worker killed then resumed with states older than its committed offsets (seen: agents left
on a call in Redis after a killed agent-state worker, tests/acd/test_acd_end_to_end.py). The consumer now waits
for every write handed over before the commit (`settle`, faust_app.py) — free of faust, so that it is
unit-tested alone.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Unacknowledged:
    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()
        self.failure: BaseException | None = None

    def track(self, delivery: asyncio.Future[Any]) -> None:
        """`delivery` resolves when the broker has the record (faust's FutureMessage), or fails."""
        self._pending.add(delivery)
        delivery.add_done_callback(self._done)

    def __len__(self) -> int:
        return len(self._pending)

    async def settle(self) -> None:
        """Wait for every record tracked so far; raises if one of them (now or before) was not delivered."""
        pending = list(self._pending)
        if pending:
            await asyncio.wait(pending)
        if self.failure is not None:
            raise RuntimeError("a record handed to the producer was not delivered") from self.failure

    def _done(self, delivery: asyncio.Future[Any]) -> None:
        self._pending.discard(delivery)
        if self.failure is not None:
            return
        if delivery.cancelled():
            self.failure = asyncio.CancelledError("the record's delivery was cancelled")
        elif delivery.exception() is not None:
            self.failure = delivery.exception()
