"""`callstream-admin site check FILE` and `callstream-admin site load FILE [settings]`.

check: validate the site description and print what it holds; no database is touched.
load: validate, then apply it to the business database (`--pg-dsn`) and provision the agents' phones into the
PBX database (`--pbx-pg-dsn`); idempotent, so run it after every edit of the file. Run `migrate` once before.

Exit status: 0 done, 1 failed (database), 2 invalid file, settings or command line.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import asyncpg

from callstream_admin.databases import CommandError, connect_business, connect_pbx
from callstream_common.logs import setup_logging
from callstream_common.settings import ServiceSettings, SettingsError, load_settings
from callstream_common.site import Site, SiteChanges, SiteError, apply_site, load_site_file

log = logging.getLogger("callstream_admin")
ACTIONS = ("check", "load")


def describe(site: Site) -> str:
    return (f"tenant {site.tenant.id}: {len(site.pbxs)} PBXs, {len(site.queues)} queues, {len(site.dids)} DIDs, "
            f"{len(site.agent_configs)} agents, {len(site.pause_reasons)} pause reasons")


async def load_site(settings: ServiceSettings, site: Site) -> SiteChanges:
    business = await connect_business(settings)
    try:
        pbx = await connect_pbx(settings)
        try:
            return await apply_site(business, pbx, site)
        finally:
            await pbx.close()
    except asyncpg.UndefinedTableError as exc:
        raise CommandError(f"{exc}: run `callstream-admin migrate` first") from None
    finally:
        await business.close()


def site_main(args: list[str]) -> int:
    if len(args) < 2 or args[0] not in ACTIONS or args[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    action, path, rest = args[0], Path(args[1]), args[2:]
    if action == "check" and rest:
        print(f"callstream-admin: site check takes only a file, not {' '.join(rest)}", file=sys.stderr)
        return 2
    settings: ServiceSettings | None = None
    if action == "load":
        try:
            settings = load_settings(ServiceSettings, rest, service="admin")
        except SettingsError as exc:
            print(f"callstream-admin: {exc}", file=sys.stderr)
            return 2
        setup_logging(settings.service, settings.instance, settings.log_level)
    try:
        site = load_site_file(path)
    except SiteError as exc:
        print(f"callstream-admin: {exc}", file=sys.stderr)
        return 2
    if settings is None:
        print(f"{path}: valid; {describe(site)}")
        return 0
    try:
        changes = asyncio.run(load_site(settings, site))
    except (SiteError, CommandError, asyncpg.PostgresError, OSError) as exc:
        log.error("site load failed: %s", exc)
        return 1
    print(f"{path}: loaded; {describe(site)}; {changes.summary()}")
    return 0
