"""Site configuration on a real PostgreSQL: the business and PBX schemas, idempotent loads, PJSIP realtime
provisioning, removals, the 2,000-agent site, and the configuration read back by services."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import yaml

from callstream_admin.databases import CommandError, migrate
from callstream_admin.sitecmd import load_site
from callstream_common.settings import ServiceSettings
from callstream_common.site import (
    CONFIG_COMPONENT,
    CONFIG_MIGRATIONS,
    PBX_COMPONENT,
    PBX_MIGRATIONS,
    ConfigNotFound,
    SiteError,
    apply_site,
    load_config,
    load_site_file,
    parse_site,
)
from callstream_common.sql import apply_migrations, load_migrations
from callstream_common.sql.migrations_runner import COMMON_MIGRATIONS

from conftest import ROOT, Stack

log = logging.getLogger(__name__)

EXAMPLE = ROOT / "docs" / "site.example.yaml"
BENCH = ROOT / "bench" / "site-2000.yaml"
BUSINESS_TABLES = ("tenants", "pbxs", "queues", "dids", "agents", "agent_skills", "pause_reasons")
PBX_TABLES = ("ps_endpoints", "ps_aors", "ps_auths", "callstream_endpoints")


async def _create(stack: Stack, name: str) -> str:
    admin = await asyncpg.connect(stack.pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = stack.pg_dsn.rpartition("/")
    return f"{base}/{name}"


async def _drop(stack: Stack, name: str) -> None:
    admin = await asyncpg.connect(stack.pg_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pbx_database(stack: Stack, prefix: str) -> AsyncIterator[str]:
    """A second empty database, for the PBX side; dropped afterwards."""
    name = f"test_{prefix}_pbx"
    dsn = await _create(stack, name)
    try:
        yield dsn
    finally:
        await _drop(stack, name)


@pytest.fixture
async def dbs(empty_database: str, pbx_database: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """(business, pbx) connections with every migration applied. The PBX connection has no statement cache,
    as behind pgbouncer in transaction mode."""
    business = await asyncpg.connect(empty_database)
    pbx = await asyncpg.connect(pbx_database, statement_cache_size=0)
    try:
        await apply_migrations(business, "common", load_migrations(COMMON_MIGRATIONS))
        await apply_migrations(business, CONFIG_COMPONENT, load_migrations(CONFIG_MIGRATIONS))
        await apply_migrations(pbx, PBX_COMPONENT, load_migrations(PBX_MIGRATIONS))
        yield business, pbx
    finally:
        await business.close()
        await pbx.close()


async def snapshot(business: asyncpg.Connection, pbx: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row of the configuration tables, with xmin: equal snapshots mean no row was even rewritten."""
    out: dict[str, list[dict[str, Any]]] = {}
    for conn, tables in ((business, BUSINESS_TABLES), (pbx, PBX_TABLES)):
        for table in tables:
            rows = await conn.fetch(f"SELECT xmin::text AS row_version, t.* FROM {table} t ORDER BY t::text")
            out[table] = [dict(row) for row in rows]
    return out


def example_data() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(data, dict)
    return data


async def public_tables(conn: asyncpg.Connection) -> list[str]:
    return [r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


async def count(conn: asyncpg.Connection, sql: str, *args: object) -> int:
    value = await conn.fetchval(f"SELECT count(*) FROM {sql}", *args)
    assert isinstance(value, int)
    return value


async def test_the_schemas_have_asterisks_column_names_and_types(
        dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, pbx = dbs
    assert set(BUSINESS_TABLES) <= set(await public_tables(business))
    rows = await pbx.fetch(
        "SELECT table_name, column_name, udt_name, character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name LIKE 'ps\\_%'")
    columns = {(r["table_name"], r["column_name"]): (r["udt_name"], r["character_maximum_length"]) for r in rows}
    boolean = ("ast_bool_values", None)
    assert columns == {
        ("ps_endpoints", "id"): ("varchar", 255), ("ps_endpoints", "transport"): ("varchar", 40),
        ("ps_endpoints", "aors"): ("varchar", 2048), ("ps_endpoints", "auth"): ("varchar", 255),
        ("ps_endpoints", "context"): ("varchar", 40), ("ps_endpoints", "disallow"): ("varchar", 200),
        ("ps_endpoints", "allow"): ("varchar", 200), ("ps_endpoints", "direct_media"): boolean,
        ("ps_endpoints", "force_rport"): boolean, ("ps_endpoints", "rewrite_contact"): boolean,
        ("ps_endpoints", "rtp_symmetric"): boolean, ("ps_endpoints", "ice_support"): boolean,
        ("ps_endpoints", "callerid"): ("varchar", 40), ("ps_endpoints", "mailboxes"): ("varchar", 40),
        ("ps_endpoints", "dtmf_mode"): ("pjsip_dtmf_mode_values_v3", None),
        ("ps_aors", "id"): ("varchar", 255), ("ps_aors", "max_contacts"): ("int4", None),
        ("ps_aors", "remove_existing"): boolean, ("ps_aors", "qualify_frequency"): ("int4", None),
        ("ps_auths", "id"): ("varchar", 255), ("ps_auths", "auth_type"): ("pjsip_auth_type_values_v2", None),
        ("ps_auths", "username"): ("varchar", 40), ("ps_auths", "password"): ("varchar", 80),
        ("ps_auths", "realm"): ("varchar", 255),
    }
    # Applying again is a no-op on both sides.
    assert await apply_migrations(business, CONFIG_COMPONENT, load_migrations(CONFIG_MIGRATIONS)) == []
    assert await apply_migrations(pbx, PBX_COMPONENT, load_migrations(PBX_MIGRATIONS)) == []


async def test_the_business_schema_enforces_the_documented_values(
        dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, _ = dbs
    await business.execute("INSERT INTO tenants (id, name, timezone) VALUES ('t', 'T', 'UTC')")
    insert = ("INSERT INTO queues (tenant_id, id, department, strategy, ring_timeout_s, wrapup_s, max_wait_s, "
              "overflow_action, overflow_queue_id, sl_threshold_s, required_skill) "
              "VALUES ('t', $1, 'd', $2, 20, 10, 300, $3, $4, 20, $5)")
    await business.execute(insert, "q1", "longest_idle", "hangup", None, None)
    for args in (("q2", "fastest", "hangup", None, None), ("q2", "ring_all", "transfer", None, None),
                 ("q2", "ring_all", "queue", None, None), ("q2", "ring_all", "queue", "nope", None),
                 ("q2", "skills_based", "hangup", None, None)):
        with pytest.raises((asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError)):
            await business.execute(insert, *args)
    await business.execute(insert, "q2", "skills_based", "queue", "q1", "sales")


async def test_loading_the_example_twice_changes_nothing_the_second_time(
        dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, pbx = dbs
    site = load_site_file(EXAMPLE)
    first = await apply_site(business, pbx, site)
    assert first.tables["agents"].inserted == 20 and first.tables["queues"].inserted == 5
    assert first.tables["dids"].inserted == 6 and first.tables["pause_reasons"].inserted == 4
    assert first.tables["agent_skills"].inserted == sum(len(a.skills) for a in site.agent_configs)
    for table in PBX_TABLES:
        assert first.tables[table].inserted == 20
    before = await snapshot(business, pbx)
    second = await apply_site(business, pbx, load_site_file(EXAMPLE))
    assert not second.changed and second.summary() == "no changes"
    assert await snapshot(business, pbx) == before


async def test_changing_a_skill_or_a_name_updates_just_that(dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, pbx = dbs
    await apply_site(business, pbx, load_site_file(EXAMPLE))
    data = example_data()
    data["agents"][0]["skills"] = {"sales": 2, "support": 1}
    data["agents"][1]["name"] = "Lucas Bernard-Petit"
    changes = await apply_site(business, pbx, parse_site(data))
    assert changes.summary() == "agents ~1, agent_skills +1 ~1, ps_endpoints ~1"
    skills = await business.fetch("SELECT skill, level FROM agent_skills WHERE agent_id = 'a1001' ORDER BY skill")
    assert [tuple(r) for r in skills] == [("sales", 2), ("support", 1)]
    assert await pbx.fetchval("SELECT callerid FROM ps_endpoints WHERE id = '1002'") == '"Lucas Bernard-Petit" <1002>'
    data["agents"][0]["skills"] = {"support": 1}
    changes = await apply_site(business, pbx, parse_site(data))
    assert changes.summary() == "agent_skills -1"


async def test_provisioned_pjsip_rows(dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, pbx = dbs
    site = load_site_file(EXAMPLE)
    await apply_site(business, pbx, site)
    endpoint = await pbx.fetchrow("SELECT * FROM ps_endpoints WHERE id = '1001'")
    assert dict(endpoint) == {
        "id": "1001", "transport": None, "aors": "1001", "auth": "1001", "context": "agents", "disallow": "all",
        "allow": "ulaw,alaw,g722", "direct_media": "no", "force_rport": "yes", "rewrite_contact": "yes",
        "rtp_symmetric": "yes", "ice_support": "no", "callerid": '"Camille Martin" <1001>', "mailboxes": None,
        "dtmf_mode": "rfc4733",
    }
    aor = await pbx.fetchrow("SELECT * FROM ps_aors WHERE id = '1001'")
    assert dict(aor) == {"id": "1001", "max_contacts": 1, "remove_existing": "yes", "qualify_frequency": 60}
    auth = await pbx.fetchrow("SELECT * FROM ps_auths WHERE id = '1001'")
    assert dict(auth) == {"id": "1001", "auth_type": "userpass", "username": "1001",
                          "password": site.sip_passwords["a1001"].get_secret_value(), "realm": None}
    assert await pbx.fetchval("SELECT password FROM ps_auths WHERE id = '1010'") == "k7Qe-2vLp-9xWm"
    owned = await pbx.fetchrow("SELECT tenant_id, agent_id FROM callstream_endpoints WHERE id = '2010'")
    assert tuple(owned) == ("acme", "a2010")
    assert await count(pbx, "ps_endpoints") == await count(pbx, "ps_aors") == await count(pbx, "ps_auths") == 20


async def test_agents_leaving_the_file_are_deactivated_and_lose_their_phones(
        dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, pbx = dbs
    await apply_site(business, pbx, load_site_file(EXAMPLE))
    data = example_data()
    data["agents"] = [a for a in data["agents"] if a["id"] != "a2010"]
    # A new hire takes the departed agent's extension in the same load (the uniqueness checks run at commit).
    data["agents"].append({"id": "a3001", "name": "Zoé Girard", "extension": 2010, "pbx": "pbx-02",
                           "skills": {"support": 1}})
    data["dids"] = data["dids"][:5]
    data["pause_reasons"] = [r for r in data["pause_reasons"] if r["id"] != "meeting"]
    changes = await apply_site(business, pbx, parse_site(data))
    assert changes.tables["agents"].inserted == 1 and changes.tables["agents"].removed == 1
    assert changes.tables["dids"].removed == 1 and changes.tables["pause_reasons"].removed == 1
    assert changes.tables["ps_endpoints"].updated == 1  # the phone 2010 now carries the new agent's name
    assert await business.fetchval("SELECT active FROM agents WHERE id = 'a2010'") is False
    assert await business.fetchval("SELECT active FROM pause_reasons WHERE id = 'meeting'") is False
    assert await pbx.fetchval("SELECT agent_id FROM callstream_endpoints WHERE id = '2010'") == "a3001"
    config = await load_config(business, "acme")
    assert "a2010" not in config.agents and config.agents["a3001"].endpoint == "2010"
    assert "meeting" not in config.pause_reasons and len(config.dids) == 5

    data["agents"] = [a for a in data["agents"] if a["id"] != "a3001"]
    await apply_site(business, pbx, parse_site(data))
    assert await count(pbx, "ps_endpoints WHERE id = '2010'") == 0
    assert await count(pbx, "ps_auths WHERE id = '2010'") == 0 and await count(pbx, "ps_aors WHERE id = '2010'") == 0
    assert await count(pbx, "ps_endpoints") == 19

    back = await apply_site(business, pbx, load_site_file(EXAMPLE))  # the original file: a2010 is active again
    assert back.tables["agents"].updated == 1 and back.tables["ps_endpoints"].inserted == 1
    assert await business.fetchval("SELECT active FROM agents WHERE id = 'a2010'") is True


async def test_endpoints_callstream_did_not_make_are_left_alone(
        dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, pbx = dbs
    await pbx.execute("INSERT INTO ps_endpoints (id, context) VALUES ('1001', 'from-carrier')")
    with pytest.raises(SiteError, match="did not provision for this tenant: 1001"):
        await apply_site(business, pbx, load_site_file(EXAMPLE))
    assert await count(business, "agents") == 0  # both transactions rolled back
    assert await pbx.fetchval("SELECT context FROM ps_endpoints WHERE id = '1001'") == "from-carrier"


async def test_the_2000_agent_site_loads(dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, pbx = dbs
    site = load_site_file(BENCH)
    started = time.perf_counter()
    changes = await apply_site(business, pbx, site)
    log.info("2,000-agent site applied in %.3f s", time.perf_counter() - started)
    assert changes.tables["agents"].inserted == 2000 and changes.tables["ps_auths"].inserted == 2000
    assert await count(business, "agents WHERE tenant_id = 'bench' AND active") == 2000
    assert await count(business, "agent_skills") == 2100
    assert await count(business, "(SELECT DISTINCT floor FROM agents) f") == 9
    assert await count(pbx, "ps_endpoints") == await count(pbx, "ps_aors") == await count(pbx, "ps_auths") == 2000
    started = time.perf_counter()
    again = await apply_site(business, pbx, site)
    log.info("2,000-agent site re-applied (no changes) in %.3f s", time.perf_counter() - started)
    assert not again.changed
    config = await load_config(business, "bench")
    assert config == site.config()
    assert [len(config.agents_on(p)) for p in sorted(config.pbxs)] == [500, 500, 500, 500]


async def test_load_config_returns_what_was_loaded(dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, pbx = dbs
    site = load_site_file(EXAMPLE)
    await apply_site(business, pbx, site)
    config = await load_config(business, "acme")
    assert config == site.config()
    assert config.queues["sales-vip"].overflow_queue == "sales" and config.dids["+33180000201"] == "collections"
    assert config.agents["a1002"].skills == {"sales": 4, "support": 2} and config.agents["a2001"].pbx == "pbx-02"
    with pytest.raises(ConfigNotFound):
        await load_config(business, "nobody")


async def test_sip_passwords_never_reach_the_business_database(
        dbs: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    business, pbx = dbs
    site = load_site_file(EXAMPLE)
    await apply_site(business, pbx, site)
    secrets = [password.get_secret_value() for password in site.sip_passwords.values()]
    assert site.pjsip.password_secret is not None
    secrets.append(site.pjsip.password_secret.get_secret_value())
    dump = [row[0] for table in await public_tables(business)
            for row in await business.fetch(f"SELECT t::text FROM {table} t")]
    everything = "\n".join(dump)
    assert "a1001" in everything  # the dump does see the configuration
    assert [secret for secret in secrets if secret in everything] == []
    stored = {r["password"] for r in await pbx.fetch("SELECT password FROM ps_auths")}
    assert stored == set(secrets[:-1])


# ------------------------------------------------------------------------------------- the admin commands' work

@pytest.fixture
async def missing_pbx_database(stack: Stack, prefix: str) -> AsyncIterator[str]:
    """The DSN of a PBX database that does not exist yet; dropped afterwards if something created it."""
    name = f"test_{prefix}_newpbx"
    base, _, _ = stack.pg_dsn.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        await _drop(stack, name)


def admin_settings(business: str, pbx: str) -> ServiceSettings:
    return ServiceSettings(service="admin-test", pg_dsn=business, pbx_pg_dsn=pbx)


async def test_migrate_creates_the_pbx_database_and_site_load_fills_both(
        empty_database: str, missing_pbx_database: str) -> None:
    settings = admin_settings(empty_database, missing_pbx_database)
    with pytest.raises(CommandError, match="run `callstream-admin migrate` first"):
        await load_site(settings, load_site_file(EXAMPLE))
    applied = await migrate(settings)
    assert applied == {"common": [1], "config": [1], "pbx": [1]}
    assert await migrate(settings) == {"common": [], "config": [], "pbx": []}
    changes = await load_site(settings, load_site_file(EXAMPLE))
    assert changes.tables["ps_endpoints"].inserted == 20
    pbx = await asyncpg.connect(missing_pbx_database)
    try:
        assert await count(pbx, "ps_auths") == 20
    finally:
        await pbx.close()


async def test_site_load_before_migrate_names_the_fix(empty_database: str, pbx_database: str) -> None:
    with pytest.raises(CommandError, match="run `callstream-admin migrate` first"):
        await load_site(admin_settings(empty_database, pbx_database), load_site_file(EXAMPLE))
