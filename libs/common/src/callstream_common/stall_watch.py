"""A watchdog for the event loop: when the loop has not run for `threshold_s`, what was the thread doing?

A worker whose records wait hundreds of milliseconds before their handler, while each handler takes a
millisecond, either has a loop blocked by synchronous work or is starved of CPU. A heartbeat task marks every
turn of the loop; a daemon thread samples the loop thread's stack while the heartbeat is late, and logs each
stall once it ends, with its length and the stacks seen (most frequent first). Opt-in
(`CALLSTREAM_STALL_WATCH_MS`): the sampling thread takes the GIL every few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections import Counter

log = logging.getLogger(__name__)

STALL_WATCH_ENV = "CALLSTREAM_STALL_WATCH_MS"  # stalls longer than this many ms are logged
BEAT_S = 0.005
SAMPLE_S = 0.005
STACK_DEPTH = 12


class StallWatch:
    def __init__(self, threshold_s: float) -> None:
        self._threshold_s = threshold_s
        self._beat = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stopped = threading.Event()

    async def run(self) -> None:
        """The heartbeat, on the loop to watch; starts the sampling thread."""
        self._loop_thread = threading.get_ident()
        threading.Thread(target=self._sample, name="stall-watch", daemon=True).start()
        try:
            while True:
                self._beat = time.monotonic()
                await asyncio.sleep(BEAT_S)
        finally:
            self._stopped.set()

    def _stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return "?"
        return " <- ".join(f"{entry.name}({entry.filename.rsplit('/', 2)[-1]}:{entry.lineno})"
                           for entry in reversed(traceback.extract_stack(frame, limit=STACK_DEPTH)))

    def _sample(self) -> None:
        stacks: Counter[str] = Counter()
        started: float | None = None
        while not self._stopped.wait(SAMPLE_S):
            late = time.monotonic() - self._beat - BEAT_S
            if late > self._threshold_s:
                started = started or self._beat
                stacks[self._stack()] += 1
            elif started is not None:
                length_ms = (time.monotonic() - started) * 1000
                log.warning("event loop stalled", extra={
                    "stall_ms": round(length_ms), "at": time.time() - length_ms / 1000,
                    "stacks": [f"{n}x {stack}" for n, stack in stacks.most_common(5)]})
                stacks.clear()
                started = None
