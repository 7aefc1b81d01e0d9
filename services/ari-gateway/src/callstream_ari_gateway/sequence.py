"""The gateway's sequence number: strictly increasing for one PBX's gateway, also across restarts.

The high-water mark is kept in a small file. To avoid a write per event, numbers are reserved in blocks: the
file always holds a number above every one handed out, so after a crash the next run starts above it (some
numbers are skipped, none is reused). A clean stop records the exact last number, and nothing is skipped.
Consumers detect lost events by the gateway.connected marker (its last_seq_before), not by holes in seq.
"""

from __future__ import annotations

import os
from pathlib import Path

BLOCK = 100_000


class Sequence:
    def __init__(self, path: Path, block: int = BLOCK) -> None:
        self._path = path
        self._block = block
        path.parent.mkdir(parents=True, exist_ok=True)
        stored = int(path.read_text().strip() or 0) if path.exists() else 0
        self.last = stored  # the last number handed out (or reserved, after a crash)
        self._reserved = stored
        self._reserve()

    def next(self) -> int:
        self.last += 1
        if self.last > self._reserved:
            self._reserve()
        return self.last

    def close(self) -> None:
        """Record the exact last number: the next run continues from it."""
        self._write(self.last)

    def _reserve(self) -> None:
        self._reserved = self.last + self._block
        self._write(self._reserved)

    def _write(self, value: int) -> None:
        temporary = self._path.with_suffix(".tmp")
        with open(temporary, "w") as handle:
            handle.write(f"{value}\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self._path)
