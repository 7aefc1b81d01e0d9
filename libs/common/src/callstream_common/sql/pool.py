"""The asyncpg pool every service uses."""

from __future__ import annotations

import asyncpg

from callstream_common.settings import ServiceSettings


async def create_pool(settings: ServiceSettings, *, dsn: str | None = None) -> asyncpg.Pool:
    """A pool to the business database. `pg_statement_cache_size=0` makes it safe behind pgbouncer in
    transaction mode (1.18 and older cannot keep a prepared statement across transactions)."""
    pool = await asyncpg.create_pool(
        dsn or settings.pg_dsn.get_secret_value(),
        min_size=1,
        max_size=settings.pg_pool_max,
        statement_cache_size=settings.pg_statement_cache_size,
        server_settings={"application_name": settings.producer_id[:63]},
    )
    assert pool is not None
    return pool
