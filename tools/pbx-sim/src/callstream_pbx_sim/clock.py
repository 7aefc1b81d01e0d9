"""Simulated time: one clock per PBX, scaled from the event loop's clock, with deterministic timers.

Why not plain `loop.call_later`: two timers whose simulated due times differ by less than the loop's jitter
(times the time scale) could fire in either order, and the same seed would then give different event
sequences. Here every timer carries its simulated due time; they run in (due time, creation order), and a
callback scheduled from inside another is timed from the parent's due time, not from when it happened to
run. Only work that comes from outside (an HTTP request) reads the scaled wall clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# At most this many timers run per loop iteration, so that a large time scale cannot starve the sockets.
_MAX_PER_TICK = 500


class Timer:
    __slots__ = ("due", "seq", "fn", "args", "cancelled")

    def __init__(self, due: float, seq: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.due = due
        self.seq = seq
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Timer) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)


class SimClock:
    def __init__(self, loop: asyncio.AbstractEventLoop, scale: float = 1.0, epoch: float | None = None) -> None:
        self._loop = loop
        self.scale = scale
        self._t0 = loop.time()
        self.epoch = time.time() if epoch is None else epoch
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._handle: asyncio.Handle | None = None
        self._armed_at: float | None = None
        self._current: float | None = None
        self._last = 0.0
        self._ts_sec = -1
        self._ts_prefix = ""

    # --- reading the time -------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated seconds since start: the due time of the running timer, else the scaled wall clock."""
        if self._current is not None:
            return self._current
        t = (self._loop.time() - self._t0) * self.scale
        if t < self._last:
            t = self._last
        self._last = t
        return t

    def epoch_now(self) -> float:
        return self.epoch + self.now()

    def timestamp(self, at: float | None = None) -> str:
        """Asterisk's event timestamp format, e.g. `2026-11-27T09:30:00.123+0000` (UTC)."""
        t = self.epoch_now() if at is None else at
        ms = int(t * 1000.0)
        sec, frac = divmod(ms, 1000)
        if sec != self._ts_sec:
            self._ts_sec = sec
            self._ts_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._ts_prefix}.{frac:03d}+0000"

    # --- timers ---------------------------------------------------------------------------------------

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(self.now() + max(0.0, delay), next(self._seq), fn, args)
        heapq.heappush(self._heap, timer)
        self._arm()
        return timer

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> Timer:
        return self.call_later(0.0, fn, *args)

    def _arm(self) -> None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        if not self._heap:
            return
        when = self._t0 + self._heap[0].due / self.scale
        if self._handle is not None:
            if self._armed_at is not None and self._armed_at <= when:
                return
            self._handle.cancel()
        self._armed_at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        horizon = (self._loop.time() - self._t0) * self.scale
        ran = 0
        while self._heap and ran < _MAX_PER_TICK:
            top = self._heap[0]
            if top.cancelled:
                heapq.heappop(self._heap)
                continue
            if top.due > horizon:
                break
            heapq.heappop(self._heap)
            ran += 1
            self._current = top.due
            if top.due > self._last:
                self._last = top.due
            try:
                top.fn(*top.args)
            except Exception:  # a broken callback must not stop the clock for every other call
                log.exception("simulated timer callback failed")
            finally:
                self._current = None
        if ran >= _MAX_PER_TICK and self._heap:
            self._handle = self._loop.call_soon(self._fire)
            self._armed_at = self._loop.time()
        else:
            self._arm()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._heap.clear()
