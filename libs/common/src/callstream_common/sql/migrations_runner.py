"""Versioned SQL migrations: files `NNNN_name.sql` applied in order, each once, each in a transaction.

Each component (common, router, agent-state, ...) has its own folder and its own version sequence,
recorded in `schema_migrations`. An advisory lock serialises replicas starting together, so a migration
runs once however many workers boot at the same moment. A migration already applied whose file has changed
is an error: published migrations are never edited, a change is a new migration.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from callstream_common import metrics

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant: the key of the advisory lock that serialises migrations across processes.
_LOCK_KEY = 0x63616C6C  # "call"

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_lower_snake.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"{folder}: versions must run 1, 2, 3 ... without gaps, found {versions}")
    return found


async def apply_migrations(
    connection: asyncpg.Connection, component: str, migrations: list[Migration], *, service: str = ""
) -> list[int]:
    """Apply what is not applied yet; returns the versions applied by this call."""
    applied_now: list[int] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await connection.execute(_BOOKKEEPING)
        rows = await connection.fetch(
            "SELECT version, checksum FROM schema_migrations WHERE component = $1", component
        )
        done = {row["version"]: row["checksum"] for row in rows}
        for migration in migrations:
            recorded = done.get(migration.version)
            if recorded is not None:
                if recorded != migration.checksum:
                    raise MigrationError(
                        f"{component} migration {migration.version:04d}_{migration.name} was changed after it "
                        "was applied; add a new migration instead"
                    )
                continue
            # A savepoint per migration: a failing one names itself and leaves nothing half-applied.
            async with connection.transaction():
                try:
                    await connection.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        f"{component} migration {migration.version:04d}_{migration.name} failed: {exc}"
                    ) from exc
                await connection.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                    component, migration.version, migration.name, migration.checksum,
                )
            applied_now.append(migration.version)
            metrics.MIGRATIONS_APPLIED.labels(service or component).inc()
    return applied_now


COMMON_MIGRATIONS = Path(__file__).parent / "migrations"
