"""A client's buffer: at most one snapshot waiting, always the newest.

Snapshots are whole, so a client that is slower than the publications loses nothing by skipping the ones it
had no time to take: the next one it takes is complete and newer. The buffer is thus bounded at one frame per
client whatever the publication rate, and the relay never waits for a client.
"""

from __future__ import annotations

import asyncio

from callstream_common.metrics import STATS_WEB_SUPERSEDED

from callstream_stats.web.sse import Frame


class Mailbox:
    def __init__(self, scope: str, last_seq: int | None) -> None:
        self.scope = scope
        self._floor = last_seq  # the newest seq the client has or is about to get: nothing <= it is taken
        self._pending: Frame | None = None
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, frame: Frame) -> bool:
        """Keep `frame` if it is newer than anything the client has or will get; say whether it was kept."""
        if self._closed or (self._floor is not None and frame.seq <= self._floor):
            return False  # older, or the same snapshot seen twice (stored and published)
        if self._pending is not None:
            STATS_WEB_SUPERSEDED.inc()
        self._pending = frame
        self._floor = frame.seq
        self._wake.set()
        return True

    def restart_sequence(self) -> None:
        """Forget the floor: the board's sequence started over (see BoardHub.attach)."""
        self._floor = None

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def take(self, timeout: float) -> Frame | None:
        """The newest pending frame, or None when `timeout` passed without one (time for a heartbeat) or the
        mailbox was closed (check `closed`)."""
        if self._pending is None and not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return None
        self._wake.clear()
        frame, self._pending = self._pending, None
        return None if self._closed else frame
