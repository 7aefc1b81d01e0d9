"""PostgreSQL: the asyncpg pool and versioned migrations."""

from callstream_common.sql.migrations_runner import Migration, MigrationError, apply_migrations, load_migrations
from callstream_common.sql.pool import create_pool

__all__ = ["Migration", "MigrationError", "apply_migrations", "create_pool", "load_migrations"]
