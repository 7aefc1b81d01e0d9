"""15-minute interval rows in SQL (migrations component `stats`): upserts of absolute values, idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import asyncpg

from callstream_common import metrics
from callstream_stats.figures.counters import COUNTER_FIELDS, Counters, from_ms

COMPONENT = "stats"
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

_COLUMNS = ", ".join(COUNTER_FIELDS)
_VALUES = ", ".join(f"${n}" for n in range(4, 4 + len(COUNTER_FIELDS)))
_UPDATES = ", ".join(f"{name} = EXCLUDED.{name}" for name in COUNTER_FIELDS)
_CHANGED = " OR ".join(f"stats_intervals.{name} IS DISTINCT FROM EXCLUDED.{name}" for name in COUNTER_FIELDS)
# The row holds the counts folded from the topics, not increments: writing the same row twice is a no-op, and
# the WHERE keeps updated_at still when nothing changed.
_UPSERT = f"""
INSERT INTO stats_intervals (tenant, scope, interval_start, {_COLUMNS})
VALUES ($1, $2, $3, {_VALUES})
ON CONFLICT (tenant, scope, interval_start) DO UPDATE SET {_UPDATES}, updated_at = now()
WHERE {_CHANGED}
"""


async def write_intervals(pool: asyncpg.Pool, tenant: str, rows: Iterable[tuple[str, int, Counters]]) -> int:
    """Upsert (scope, interval start in ms, counts) rows in one transaction; returns how many were given."""
    args = [(tenant, scope, from_ms(start), *(getattr(c, name) for name in COUNTER_FIELDS))
            for scope, start, c in rows]
    if not args:
        return 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(_UPSERT, args)
    metrics.STATS_INTERVAL_ROWS.inc(len(args))
    return len(args)
