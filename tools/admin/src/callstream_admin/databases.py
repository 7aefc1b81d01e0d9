"""The two databases: connections, schema migrations, and creating the PBX database on a local stack.

The business database (`pg_dsn`) gets the common and config migrations; the PBX database (`pbx_pg_dsn`, PJSIP
realtime, read by every Asterisk node) gets the pbx migrations. Services apply their own migrations themselves.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit

import asyncpg

from callstream_common.settings import ServiceSettings
from callstream_common.site import CONFIG_COMPONENT, CONFIG_MIGRATIONS, PBX_COMPONENT, PBX_MIGRATIONS
from callstream_common.sql import apply_migrations, load_migrations
from callstream_common.sql.migrations_runner import COMMON_MIGRATIONS

log = logging.getLogger("callstream_admin")


class CommandError(RuntimeError):
    """An admin command cannot go on; the message says what to do."""


async def connect_business(settings: ServiceSettings) -> asyncpg.Connection:
    return await asyncpg.connect(settings.pg_dsn.get_secret_value(),
                                 statement_cache_size=settings.pg_statement_cache_size)


async def connect_pbx(settings: ServiceSettings, *, create: bool = False) -> asyncpg.Connection:
    """The PBX database sits behind pgbouncer in transaction mode in production, where a prepared statement does
    not survive its transaction: no statement cache (the admin commands send a handful of statements anyway).
    `create`: make the database first if it does not exist (the local stack; production creates it by hand)."""
    dsn = settings.pbx_pg_dsn.get_secret_value()
    try:
        return await asyncpg.connect(dsn, statement_cache_size=0)
    except asyncpg.InvalidCatalogNameError:
        if not create:
            raise CommandError("the PBX database does not exist: run `callstream-admin migrate` first") from None
    await create_database(dsn)
    return await asyncpg.connect(dsn, statement_cache_size=0)


async def create_database(dsn: str) -> None:
    """CREATE DATABASE for the database a DSN names, through the server's `postgres` database. Needs the
    role's CREATEDB, which the local stack's role has."""
    name = unquote(urlsplit(dsn).path.lstrip("/"))
    if not name:
        raise CommandError("the PBX database DSN names no database")
    admin = await asyncpg.connect(dsn, database="postgres", statement_cache_size=0)
    try:
        await admin.execute(f'CREATE DATABASE "{name.replace(chr(34), chr(34) * 2)}"')
    except asyncpg.DuplicateDatabaseError:
        return  # another migrate created it meanwhile
    except asyncpg.InsufficientPrivilegeError as exc:
        raise CommandError(f"cannot create the PBX database {name!r} ({exc}): create it, or grant CREATEDB") from None
    finally:
        await admin.close()
    log.info("PBX database created", extra={"database": name})


async def migrate(settings: ServiceSettings) -> dict[str, list[int]]:
    """Apply what is missing; returns the versions applied now, per component."""
    applied: dict[str, list[int]] = {}
    business = await connect_business(settings)
    try:
        for component, folder in (("common", COMMON_MIGRATIONS), (CONFIG_COMPONENT, CONFIG_MIGRATIONS)):
            applied[component] = await apply_migrations(business, component, load_migrations(folder),
                                                        service=settings.service)
    finally:
        await business.close()
    pbx = await connect_pbx(settings, create=True)
    try:
        applied[PBX_COMPONENT] = await apply_migrations(pbx, PBX_COMPONENT, load_migrations(PBX_MIGRATIONS),
                                                        service=settings.service)
    finally:
        await pbx.close()
    log.info("migrations applied", extra={"versions": applied})
    return applied
