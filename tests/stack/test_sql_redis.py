"""Migrations and tracking records on a real PostgreSQL; the Redis client on a real Redis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from callstream_common.redis_store import create_redis, key, tenant_pattern
from callstream_common.settings import ServiceSettings
from callstream_common.sql import MigrationError, apply_migrations, load_migrations
from callstream_common.sql.migrations_runner import COMMON_MIGRATIONS
from callstream_common.sql.positions import advance_position, apply_batch, next_offsets


async def tables(connection: asyncpg.Connection) -> set[str]:
    rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def test_migrations_apply_from_empty_and_a_second_run_changes_nothing(empty_database: str) -> None:
    connection = await asyncpg.connect(empty_database)
    try:
        assert await tables(connection) == set()
        migrations = load_migrations(COMMON_MIGRATIONS)
        assert await apply_migrations(connection, "common", migrations) == [m.version for m in migrations]
        after_first = await tables(connection)
        assert {"schema_migrations", "consumer_positions"} <= after_first
        recorded = await connection.fetch("SELECT * FROM schema_migrations ORDER BY version")
        assert await apply_migrations(connection, "common", migrations) == []
        assert await tables(connection) == after_first
        assert await connection.fetch("SELECT * FROM schema_migrations ORDER BY version") == recorded
    finally:
        await connection.close()


async def test_an_edited_or_failing_migration_is_refused(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    (tmp_path / "0002_second.sql").write_text("CREATE TABLE second (id int);")
    connection = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(connection, "demo", load_migrations(tmp_path))
        (tmp_path / "0002_second.sql").write_text("CREATE TABLE second (id bigint);")
        with pytest.raises(MigrationError, match="0002_second was changed after it was applied"):
            await apply_migrations(connection, "demo", load_migrations(tmp_path))
        (tmp_path / "0002_second.sql").write_text("CREATE TABLE second (id int);")
        (tmp_path / "0003_broken.sql").write_text("CREATE TABLE third (id nonsense_type);")
        with pytest.raises(MigrationError, match="0003_broken failed"):
            await apply_migrations(connection, "demo", load_migrations(tmp_path))
        assert "third" not in await tables(connection)
        versions = await connection.fetch("SELECT version FROM schema_migrations WHERE component = 'demo'")
        assert sorted(r["version"] for r in versions) == [1, 2]
    finally:
        await connection.close()


def test_migration_files_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0003_c.sql").write_text("")
    with pytest.raises(MigrationError, match="without gaps"):
        load_migrations(tmp_path)
    (tmp_path / "4_bad-name.sql").write_text("")
    with pytest.raises(MigrationError, match="NNNN_lower_snake"):
        load_migrations(tmp_path)


async def test_tracking_records_make_a_replay_a_no_op(empty_database: str) -> None:
    connection = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(connection, "common", load_migrations(COMMON_MIGRATIONS))
        applied = []
        for offset in [0, 1, 2, 1, 2, 3, 0]:  # a redelivery of 1-2 and a replay from 0
            async with connection.transaction():
                if await advance_position(connection, "calls", "acme.calls", 4, offset):
                    applied.append(offset)
        assert applied == [0, 1, 2, 3]
        assert await next_offsets(connection, "calls") == {("acme.calls", 4): 4}
    finally:
        await connection.close()


@dataclass(frozen=True)
class Read:
    topic: str
    partition: int
    offset: int


async def test_a_position_left_by_a_topic_created_again_restarts_and_a_replay_stays_a_no_op(
        empty_database: str) -> None:
    connection = await asyncpg.connect(empty_database)
    pool = await asyncpg.create_pool(empty_database, min_size=1, max_size=1)
    try:
        await apply_migrations(connection, "common", load_migrations(COMMON_MIGRATIONS))
        await connection.execute("CREATE TABLE seen (topic text, partition int, at bigint)")

        async def record_it(conn: asyncpg.Connection, read: Read) -> None:
            await conn.execute("INSERT INTO seen VALUES ($1, $2, $3)", read.topic, read.partition, read.offset)

        asked: list[tuple[str, int]] = []

        def ends(end: int):  # type: ignore[no-untyped-def]
            async def log_end(topic: str, partition: int) -> int:
                asked.append((topic, partition))
                return end
            return log_end

        first = [Read("acme.calls", 0, offset) for offset in range(5)]
        assert await apply_batch(pool, "p", first, record_it, log_end=ends(5)) == [True] * 5
        assert asked == []  # nothing was about to be skipped: the broker is not asked
        # A replay from 2 while the partition still ends at 5: skipped, as before.
        replay = [Read("acme.calls", 0, offset) for offset in (2, 3, 4)]
        assert await apply_batch(pool, "p", replay, record_it, log_end=ends(5)) == [False] * 3
        assert asked == [("acme.calls", 0)]
        # The topic deleted and created again: it ends at 2, below the stored 5. Its records are new.
        again = [Read("acme.calls", 0, offset) for offset in (0, 1)]
        assert await apply_batch(pool, "p", again, record_it, log_end=ends(2)) == [True, True]
        assert await next_offsets(connection, "p") == {("acme.calls", 0): 2}
        assert await connection.fetchval("SELECT count(*) FROM seen") == 7
    finally:
        await pool.close()
        await connection.close()


async def test_redis_client_and_tenant_keys(settings: ServiceSettings, redis_client: aioredis.Redis) -> None:
    client = create_redis(settings)
    try:
        name = key(settings.tenant, "agent", "agent-1042", "state")
        await client.set(name, b"available")
        assert await redis_client.get(name) == b"available"
        found = [k async for k in client.scan_iter(match=tenant_pattern(settings.tenant))]
        assert found == [name.encode()]
    finally:
        await client.delete(name)
        await client.aclose()
