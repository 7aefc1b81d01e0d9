"""callstream-admin: create the catalogue's topics, set up the databases, load the site configuration.

  python -m callstream_admin topics            # idempotent; fails on a topic with the wrong partition count
  python -m callstream_admin migrate           # idempotent; common + config migrations to the business database,
                                               # pbx migrations to the PBX database (created if missing)
  python -m callstream_admin plan              # print the topics that `topics` would create
  python -m callstream_admin site check FILE   # validate a site description (docs/site.example.yaml)
  python -m callstream_admin site load FILE    # apply it: business database + agents' phones in the PBX database

Settings are the common ones (CALLSTREAM_* variables, --config FILE, --kafka-bootstrap ..., --pg-dsn ...,
--pbx-pg-dsn ..., see libs/common/src/callstream_common/settings.py).
Exit status: 0 done, 1 failed, 2 invalid settings or input.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import asyncpg

from callstream_admin.databases import CommandError, migrate
from callstream_admin.sitecmd import site_main
from callstream_common.kafka.admin import TopicMismatch, ensure_topics, plan_topics
from callstream_common.logs import setup_logging
from callstream_common.settings import ServiceSettings, SettingsError, load_settings
from callstream_common.sql import MigrationError

log = logging.getLogger("callstream_admin")
COMMANDS = ("topics", "migrate", "plan", "site")


def _plan(settings: ServiceSettings) -> list:  # type: ignore[type-arg]
    return plan_topics(settings.topic_prefix, pbx_partitions=settings.pbx_partitions,
                       tenant_partitions=settings.tenant_partitions)


async def topics(settings: ServiceSettings) -> None:
    created = await ensure_topics(settings.kafka_bootstrap, _plan(settings))
    log.info("topics ready", extra={"topics_created": created, "topic_prefix": settings.topic_prefix})


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    if command == "site":
        return site_main(rest)
    try:
        settings = load_settings(ServiceSettings, rest, service="admin")
    except SettingsError as exc:
        print(f"callstream-admin: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.service, settings.instance, settings.log_level)
    if command == "plan":
        for topic in _plan(settings):
            print(f"{topic.name}\t{topic.partitions}\t{topic.config['retention.ms']}")
        return 0
    try:
        asyncio.run(topics(settings) if command == "topics" else migrate(settings))
    except (TopicMismatch, MigrationError, CommandError, asyncpg.PostgresError, OSError) as exc:
        log.error("%s failed: %s", command, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
