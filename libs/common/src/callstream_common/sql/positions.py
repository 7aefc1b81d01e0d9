"""Tracking records: idempotent projections store the position they applied with their rows."""

from __future__ import annotations

import asyncpg

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
