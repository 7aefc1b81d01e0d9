"""A site description loaded into one throw-away database, for the tests and the benchmarks.

In production the business tables and the PBX realtime tables (ps_endpoints, ...) live in two databases;
here one database holds both, migrated from nothing, and the site is applied to it as `callstream-admin site
load` would.
"""

from __future__ import annotations

import asyncpg

from callstream_common.site import (
    CONFIG_COMPONENT,
    CONFIG_MIGRATIONS,
    PBX_COMPONENT,
    PBX_MIGRATIONS,
    Site,
    apply_site,
)
from callstream_common.sql import apply_migrations, load_migrations
from callstream_common.sql.migrations_runner import COMMON_MIGRATIONS


async def load_site_into(dsn: str, site: Site) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, "common", load_migrations(COMMON_MIGRATIONS))
        await apply_migrations(conn, CONFIG_COMPONENT, load_migrations(CONFIG_MIGRATIONS))
        await apply_migrations(conn, PBX_COMPONENT, load_migrations(PBX_MIGRATIONS))
        await apply_site(conn, conn, site)
    finally:
        await conn.close()
