"""An on-disk, append-only spool of Kafka records, read back in order.

Records are appended to the active segment; a reader takes closed segments, oldest first (segments are
named by the sequence number of their first record, so a segment written at shutdown from older records
sorts before newer ones). A segment is deleted only once all of its records are acknowledged by Kafka.

Record layout (big-endian): u32 length of the rest | u16 header count | per header: u16 name length, name,
u32 value length, value | u64 seq | u32 value length | value.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
SEGMENT_RECORDS = 10_000


@dataclass(frozen=True)
class OutRecord:
    """One record bound for ari.events: the envelope headers, the value, and its sequence number."""

    seq: int
    headers: list[tuple[str, bytes]]
    value: bytes


def encode_record(record: OutRecord) -> bytes:
    parts = [_U16.pack(len(record.headers))]
    for name, value in record.headers:
        raw_name = name.encode()
        parts += [_U16.pack(len(raw_name)), raw_name, _U32.pack(len(value)), value]
    parts += [_U64.pack(record.seq), _U32.pack(len(record.value)), record.value]
    body = b"".join(parts)
    return _U32.pack(len(body)) + body


def decode_records(data: bytes) -> list[OutRecord]:
    records = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            break  # a torn final write (crash mid-append): the partial record was never acknowledged
        (length,) = _U32.unpack_from(data, pos)
        end = pos + 4 + length
        if end > len(data):
            break
        cursor = pos + 4
        (count,) = _U16.unpack_from(data, cursor)
        cursor += 2
        headers = []
        for _ in range(count):
            (name_len,) = _U16.unpack_from(data, cursor)
            cursor += 2
            name = data[cursor:cursor + name_len].decode()
            cursor += name_len
            (value_len,) = _U32.unpack_from(data, cursor)
            cursor += 4
            headers.append((name, data[cursor:cursor + value_len]))
            cursor += value_len
        (seq,) = _U64.unpack_from(data, cursor)
        cursor += 8
        (value_len,) = _U32.unpack_from(data, cursor)
        cursor += 4
        records.append(OutRecord(seq, headers, data[cursor:cursor + value_len]))
        pos = end
    return records


@dataclass(frozen=True)
class Segment:
    path: Path
    records: list[OutRecord]


class Spool:
    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._active: Path | None = None
        self._active_file: BinaryIO | None = None
        self._active_count = 0
        self._depth = sum(len(decode_records(p.read_bytes())) for p in self._segments())

    @property
    def depth(self) -> int:
        """Records spooled and not yet deleted (read or not)."""
        return self._depth

    def is_empty(self) -> bool:
        return self._active is None and not self._segments()

    def append(self, record: OutRecord) -> None:
        if self._active is None or self._active_count >= SEGMENT_RECORDS:
            self._close_active()
            self._active = self._dir / f"{record.seq:020d}.seg.open"
            self._active_file = open(self._active, "ab", buffering=1 << 20)  # noqa: SIM115 - kept open
            self._active_count = 0
        assert self._active_file is not None
        self._active_file.write(encode_record(record))
        self._active_count += 1
        self._depth += 1

    def write_segment(self, records: Iterable[OutRecord]) -> None:
        """Write older records as a closed segment of their own (used at shutdown for unsent records)."""
        chunk = list(records)
        if not chunk:
            return
        path = self._dir / f"{chunk[0].seq:020d}.seg"
        with open(path.with_suffix(".tmp"), "wb") as handle:
            handle.write(b"".join(encode_record(r) for r in chunk))
            handle.flush()
            os.fsync(handle.fileno())
        path.with_suffix(".tmp").rename(path)
        self._depth += len(chunk)

    def next_segment(self) -> Segment | None:
        """The oldest closed segment; closes the active one when nothing else is left."""
        segments = self._segments()
        if not segments and self._active is not None:
            self._close_active()
            segments = self._segments()
        if not segments:
            return None
        path = segments[0]
        return Segment(path, decode_records(path.read_bytes()))

    def delete(self, segment: Segment) -> None:
        segment.path.unlink(missing_ok=True)
        self._depth -= len(segment.records)

    def flush(self) -> None:
        if self._active_file is not None:
            self._active_file.flush()
            os.fsync(self._active_file.fileno())

    def close(self) -> None:
        self._close_active()

    def _close_active(self) -> None:
        if self._active is None or self._active_file is None:
            return
        self.flush()
        self._active_file.close()
        self._active.rename(self._active.with_suffix(""))  # drop ".open": now a closed segment
        self._active = None
        self._active_file = None

    def _segments(self) -> list[Path]:
        # Segments left ".open" by a crash are closed segments too: their complete records are valid.
        for stale in self._dir.glob("*.seg.open"):
            if stale != self._active:
                stale.rename(stale.with_suffix(""))
        return sorted(self._dir.glob("*.seg"))
