"""Tracking records: idempotent projections store the position they applied with their rows."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import asyncpg

log = logging.getLogger(__name__)

_ADVANCE = """
INSERT INTO consumer_positions (projection, topic, partition, next_offset)
VALUES ($1, $2, $3, $4 + 1)
ON CONFLICT (projection, topic, partition) DO UPDATE
    SET next_offset = EXCLUDED.next_offset, updated_at = now()
    WHERE consumer_positions.next_offset <= $4
RETURNING next_offset
"""


async def advance_position(
    connection: asyncpg.Connection, projection: str, topic: str, partition: int, offset: int
) -> bool:
    """Call inside the projection's transaction, before its writes. True: the record is new and is now
    recorded as applied; False: it was applied before (a redelivery or a replay), so write nothing."""
    return await connection.fetchval(_ADVANCE, projection, topic, partition, offset) is not None


async def next_offsets(connection: asyncpg.Connection, projection: str) -> dict[tuple[str, int], int]:
    """Where the projection resumes, per (topic, partition)."""
    rows = await connection.fetch(
        "SELECT topic, partition, next_offset FROM consumer_positions WHERE projection = $1", projection
    )
    return {(row["topic"], row["partition"]): row["next_offset"] for row in rows}


class Positioned(Protocol):
    """A record read from Kafka, with where it was read."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


RecordT = TypeVar("RecordT", bound=Positioned)

_CLAIM = """
INSERT INTO consumer_positions (projection, topic, partition, next_offset) VALUES ($1, $2, $3, 0)
ON CONFLICT (projection, topic, partition) DO NOTHING
"""
_LOCK = """
SELECT next_offset FROM consumer_positions WHERE projection = $1 AND topic = $2 AND partition = $3 FOR UPDATE
"""
_RESTART = """
UPDATE consumer_positions SET next_offset = 0, updated_at = now()
WHERE projection = $1 AND topic = $2 AND partition = $3
"""

# The end offset of a partition as the broker has it now: (topic, partition) -> the offset after its last record.
LogEnd = Callable[[str, int], Awaitable[int]]


async def apply_batch(
    pool: asyncpg.Pool, projection: str, records: Sequence[RecordT],
    apply: Callable[[asyncpg.Connection, RecordT], Awaitable[None]], *, log_end: LogEnd | None = None,
) -> list[bool]:
    """Apply `records` (in the order read) in one transaction with their tracking records; per record, False
    when its position was applied before (nothing written for it: a redelivery, a replay, a repeat within the
    batch). The position rows are locked first, so a worker that lost a partition in a rebalance and its
    successor cannot both apply the same records. One transaction per batch: a commit per record costs a WAL
    flush each.

    With `log_end`, a stored position beyond the partition's end is known for what it is: the position in a
    topic since deleted and created again (its offsets restart at 0; Kafka's topic ids are not in aiokafka's
    protocol). Its records would all be skipped as applied before, so the position restarts at 0, with a
    warning. The broker is asked only when a record is about to be skipped (a redelivery or a replay)."""
    applied = [False] * len(records)
    if not records:
        return applied
    async with pool.acquire() as conn, conn.transaction():
        first_offsets: dict[tuple[str, int], int] = {}  # the batch's partitions, each with its lowest offset
        for r in records:
            where = (r.topic, r.partition)
            first_offsets[where] = min(r.offset, first_offsets.get(where, r.offset))
        next_offsets: dict[tuple[str, int], int] = {}
        for (topic, partition), first in sorted(first_offsets.items()):
            await conn.execute(_CLAIM, projection, topic, partition)
            stored = await conn.fetchval(_LOCK, projection, topic, partition)
            if log_end is not None and first < stored and stored > (end := await log_end(topic, partition)):
                log.warning("position beyond the end of its partition (the topic was created again): "
                            "the projection restarts it at 0", extra={
                                "projection": projection, "partition": f"{topic}:{partition}", "stored": stored,
                                "log_end": end})
                await conn.execute(_RESTART, projection, topic, partition)
                stored = 0
            next_offsets[(topic, partition)] = stored
        last: dict[tuple[str, int], int] = {}
        for n, record in enumerate(records):
            where = (record.topic, record.partition)
            if record.offset < next_offsets[where] or record.offset <= last.get(where, -1):
                continue
            await apply(conn, record)
            applied[n] = True
            last[where] = record.offset
        for (topic, partition), offset in last.items():
            await advance_position(conn, projection, topic, partition, offset)
    return applied
