"""Apply a Site to the business and PBX databases, and read the configuration back for services.

`apply_site` is idempotent: every write is an upsert that skips rows already equal (no rewrite, no updated_at
change, nothing for Asterisk's realtime caches to notice), so a second load of the same file changes nothing.
What left the file: PBXs, queues, agents and pause reasons are marked inactive in the business database (history
keeps naming them); DIDs and skills are deleted; the phones (ps_endpoints, ps_aors, ps_auths) of agents that
left are deleted from the PBX database, so they can no longer register.

Each database gets one transaction, with bulk statements (arrays through `unnest`): a handful of round trips
whatever the number of agents. The two commits are not atomic together; the business one goes first (its
deferred uniqueness checks are the likelier to fail) and a failed load is repaired by loading again.
SIP passwords are written to the PBX database only: the business side receives AgentConfig, which has none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from callstream_common.site.model import AgentConfig, Pbx, PauseReason, Queue, Site, SiteConfig, SiteError, Tenant

log = logging.getLogger(__name__)

CALLERID_MAX = 40  # ps_endpoints.callerid is varchar(40)


@dataclass(frozen=True)
class TableChanges:
    inserted: int = 0
    updated: int = 0
    removed: int = 0  # deleted, or marked inactive

    def __bool__(self) -> bool:
        return bool(self.inserted or self.updated or self.removed)


@dataclass(frozen=True)
class SiteChanges:
    tables: Mapping[str, TableChanges]

    @property
    def changed(self) -> bool:
        return any(self.tables.values())

    def summary(self) -> str:
        """'agents +20 ~1 -2, ps_endpoints +20' (inserted, updated, removed), or 'no changes'."""
        parts = []
        for name, changes in self.tables.items():
            if changes:
                counts = [f"{sign}{n}" for sign, n in (("+", changes.inserted), ("~", changes.updated),
                                                         ("-", changes.removed)) if n]
                parts.append(f"{name} {' '.join(counts)}")
        return ", ".join(parts) or "no changes"


async def apply_site(business: asyncpg.Connection, pbx: asyncpg.Connection, site: Site) -> SiteChanges:
    tables: dict[str, TableChanges] = {}
    async with pbx.transaction():
        async with business.transaction():
            # Two loads of the same tenant at once would interleave their removals; one waits for the other.
            await business.execute("SELECT pg_advisory_xact_lock(hashtext('callstream.site/' || $1))", site.tenant.id)
            tables.update(await _apply_business(business, site))
            tables.update(await _apply_pbx(pbx, site))
    changes = SiteChanges(tables)
    log.info("site applied", extra={"tenant": site.tenant.id, "agents": len(site.agent_configs),
                                    "changes": changes.summary()})
    return changes


# ---------------------------------------------------------------------------------------------- business database

def _counted(rows: Sequence[asyncpg.Record], removed: int = 0) -> TableChanges:
    inserted = sum(1 for row in rows if row["inserted"])
    return TableChanges(inserted=inserted, updated=len(rows) - inserted, removed=removed)


def _columns(rows: Iterable[Sequence[object]], width: int) -> list[list[object]]:
    """Rows to one list per column, for `unnest($1::text[], $2::int[], ...)`."""
    columns: list[list[object]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


_TENANT = """
INSERT INTO tenants (id, name, timezone) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, timezone = EXCLUDED.timezone, updated_at = now()
    WHERE (tenants.name, tenants.timezone) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.timezone)
RETURNING (xmax = 0) AS inserted
"""

_QUEUE_COLUMNS = ("id", "department", "strategy", "ring_timeout_s", "wrapup_s", "max_wait_s", "overflow_action",
                  "overflow_queue_id", "sl_threshold_s", "priority", "required_skill", "min_skill_level",
                  "relax_after_s", "moh_class")
_QUEUE_TYPES = ("text", "text", "text", "int4", "int4", "int4", "text", "text", "int4", "int4", "text", "int2",
                "int4", "text")


def _upsert_sql(table: str, columns: Sequence[str], types: Sequence[str], key: Sequence[str]) -> str:
    """INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE of the changed rows only; $1 is the tenant,
    $2... the arrays; the row becomes active again if it was not."""
    values = [column for column in columns if column not in key]
    arrays = ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(types, start=2))
    return f"""
INSERT INTO {table} (tenant_id, {", ".join(columns)}, active)
SELECT $1, n.*, true FROM unnest({arrays}) AS n({", ".join(columns)})
ON CONFLICT (tenant_id, {", ".join(key)}) DO UPDATE
    SET {", ".join(f"{c} = EXCLUDED.{c}" for c in values)}, active = true, updated_at = now()
    WHERE ({", ".join(f"{table}.{c}" for c in values)}, {table}.active)
        IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in values)}, true)
RETURNING (xmax = 0) AS inserted
"""


_PBXS = _upsert_sql("pbxs", ("id", "ari_url", "entity_id"), ("text", "text", "text"), ("id",))
_QUEUES = _upsert_sql("queues", _QUEUE_COLUMNS, _QUEUE_TYPES, ("id",))
_AGENTS = _upsert_sql("agents", ("id", "name", "extension", "endpoint", "pbx_id", "floor"),
                      ("text", "text", "text", "text", "text", "int2"), ("id",))
_PAUSE_REASONS = _upsert_sql("pause_reasons", ("id", "label", "paid", "max_duration_s"),
                             ("text", "text", "bool", "int4"), ("id",))


def _deactivate_sql(table: str) -> str:
    return f"""
UPDATE {table} SET active = false, updated_at = now()
WHERE tenant_id = $1 AND active AND NOT (id = ANY($2::text[]))
RETURNING id
"""


_DIDS_REMOVE = """
DELETE FROM dids WHERE tenant_id = $1 AND NOT (number = ANY($2::text[])) RETURNING number
"""

_DIDS = """
INSERT INTO dids (tenant_id, number, queue_id)
SELECT $1, n.number, n.queue_id FROM unnest($2::text[], $3::text[]) AS n(number, queue_id)
ON CONFLICT (tenant_id, number) DO UPDATE SET queue_id = EXCLUDED.queue_id, updated_at = now()
    WHERE dids.queue_id IS DISTINCT FROM EXCLUDED.queue_id
RETURNING (xmax = 0) AS inserted
"""

_SKILLS_REMOVE = """
DELETE FROM agent_skills s
WHERE s.tenant_id = $1
  AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) AS n(agent_id, skill)
                  WHERE n.agent_id = s.agent_id AND n.skill = s.skill)
RETURNING 1
"""

_SKILLS = """
INSERT INTO agent_skills (tenant_id, agent_id, skill, level)
SELECT $1, n.agent_id, n.skill, n.level FROM unnest($2::text[], $3::text[], $4::int2[]) AS n(agent_id, skill, level)
ON CONFLICT (tenant_id, agent_id, skill) DO UPDATE SET level = EXCLUDED.level, updated_at = now()
    WHERE agent_skills.level IS DISTINCT FROM EXCLUDED.level
RETURNING (xmax = 0) AS inserted
"""


def _queue_row(queue: Queue) -> tuple[object, ...]:
    return (queue.id, queue.department, queue.strategy, queue.ring_timeout_s, queue.wrapup_s, queue.max_wait_s,
            queue.overflow_action, queue.overflow_queue, queue.sl_threshold_s, queue.priority, queue.required_skill,
            queue.min_skill_level, queue.relax_after_s, queue.moh_class)


async def _apply_business(conn: asyncpg.Connection, site: Site) -> dict[str, TableChanges]:
    tenant = site.tenant.id
    agents = site.agent_configs
    out: dict[str, TableChanges] = {}
    out["tenants"] = _counted(await conn.fetch(_TENANT, tenant, site.tenant.name, site.tenant.timezone))

    pbx_rows = await conn.fetch(_PBXS, tenant, *_columns(((p.id, str(p.ari_url), p.entity_id) for p in site.pbxs), 3))
    queue_rows = await conn.fetch(_QUEUES, tenant, *_columns(map(_queue_row, site.queues), len(_QUEUE_COLUMNS)))
    dids_gone = await conn.fetch(_DIDS_REMOVE, tenant, [did.number for did in site.dids])
    did_rows = await conn.fetch(_DIDS, tenant, *_columns(((d.number, d.queue) for d in site.dids), 2))
    agent_rows = await conn.fetch(_AGENTS, tenant, *_columns(
        ((a.id, a.name, a.extension, a.endpoint, a.pbx, a.floor) for a in agents), 6))
    skills = [(agent.id, skill, level) for agent in agents for skill, level in sorted(agent.skills.items())]
    skill_ids, skill_names, skill_levels = _columns(skills, 3)
    skills_gone = await conn.fetch(_SKILLS_REMOVE, tenant, skill_ids, skill_names)
    skill_rows = await conn.fetch(_SKILLS, tenant, skill_ids, skill_names, skill_levels)
    reason_rows = await conn.fetch(_PAUSE_REASONS, tenant, *_columns(
        ((r.id, r.label, r.paid, r.max_duration_s) for r in site.pause_reasons), 4))

    # Deactivate what left the file, dependants first.
    gone: dict[str, int] = {}
    for table, ids in (("agents", [a.id for a in agents]), ("queues", [q.id for q in site.queues]),
                       ("pbxs", [p.id for p in site.pbxs]), ("pause_reasons", [r.id for r in site.pause_reasons])):
        gone[table] = len(await conn.fetch(_deactivate_sql(table), tenant, ids))

    out["pbxs"] = _counted(pbx_rows, gone["pbxs"])
    out["queues"] = _counted(queue_rows, gone["queues"])
    out["dids"] = _counted(did_rows, len(dids_gone))
    out["agents"] = _counted(agent_rows, gone["agents"])
    out["agent_skills"] = _counted(skill_rows, len(skills_gone))
    out["pause_reasons"] = _counted(reason_rows, gone["pause_reasons"])
    return out


# --------------------------------------------------------------------------------------------------- PBX database
# Casts name Asterisk's enum types (see pbx_migrations/0001_pjsip_realtime.sql); text does not assign to an enum.

_FOREIGN = """
SELECT taken.id FROM (
    SELECT id FROM ps_endpoints WHERE id = ANY($2::text[])
    UNION SELECT id FROM ps_aors WHERE id = ANY($2::text[])
    UNION SELECT id FROM ps_auths WHERE id = ANY($2::text[])
) AS taken
WHERE NOT EXISTS (SELECT 1 FROM callstream_endpoints c WHERE c.id = taken.id AND c.tenant_id = $1)
ORDER BY taken.id
LIMIT 20
"""

_PBX_REMOVE = """
WITH gone AS (
    DELETE FROM callstream_endpoints WHERE tenant_id = $1 AND NOT (id = ANY($2::text[])) RETURNING id
), endpoints AS (
    DELETE FROM ps_endpoints WHERE id IN (SELECT id FROM gone) RETURNING 1
), aors AS (
    DELETE FROM ps_aors WHERE id IN (SELECT id FROM gone) RETURNING 1
), auths AS (
    DELETE FROM ps_auths WHERE id IN (SELECT id FROM gone) RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS owned, (SELECT count(*) FROM endpoints) AS endpoints,
       (SELECT count(*) FROM aors) AS aors, (SELECT count(*) FROM auths) AS auths
"""

_ENDPOINTS = """
INSERT INTO ps_endpoints (id, transport, aors, auth, context, disallow, allow, direct_media, force_rport,
                          rewrite_contact, rtp_symmetric, ice_support, callerid, mailboxes, dtmf_mode)
SELECT n.id, $4::text, n.id, n.id, $5::text, $6::text, $7::text, $8::text::ast_bool_values,
       $9::text::ast_bool_values, $10::text::ast_bool_values, $11::text::ast_bool_values,
       $12::text::ast_bool_values, n.callerid, n.mailboxes, $13::text::pjsip_dtmf_mode_values_v3
FROM unnest($1::text[], $2::text[], $3::text[]) AS n(id, callerid, mailboxes)
ON CONFLICT (id) DO UPDATE SET
    transport = EXCLUDED.transport, aors = EXCLUDED.aors, auth = EXCLUDED.auth, context = EXCLUDED.context,
    disallow = EXCLUDED.disallow, allow = EXCLUDED.allow, direct_media = EXCLUDED.direct_media,
    force_rport = EXCLUDED.force_rport, rewrite_contact = EXCLUDED.rewrite_contact,
    rtp_symmetric = EXCLUDED.rtp_symmetric, ice_support = EXCLUDED.ice_support, callerid = EXCLUDED.callerid,
    mailboxes = EXCLUDED.mailboxes, dtmf_mode = EXCLUDED.dtmf_mode
WHERE (ps_endpoints.transport, ps_endpoints.aors, ps_endpoints.auth, ps_endpoints.context, ps_endpoints.disallow,
       ps_endpoints.allow, ps_endpoints.direct_media, ps_endpoints.force_rport, ps_endpoints.rewrite_contact,
       ps_endpoints.rtp_symmetric, ps_endpoints.ice_support, ps_endpoints.callerid, ps_endpoints.mailboxes,
       ps_endpoints.dtmf_mode)
    IS DISTINCT FROM
      (EXCLUDED.transport, EXCLUDED.aors, EXCLUDED.auth, EXCLUDED.context, EXCLUDED.disallow, EXCLUDED.allow,
       EXCLUDED.direct_media, EXCLUDED.force_rport, EXCLUDED.rewrite_contact, EXCLUDED.rtp_symmetric,
       EXCLUDED.ice_support, EXCLUDED.callerid, EXCLUDED.mailboxes, EXCLUDED.dtmf_mode)
RETURNING (xmax = 0) AS inserted
"""

_AORS = """
INSERT INTO ps_aors (id, max_contacts, remove_existing, qualify_frequency)
SELECT n.id, $2::int4, $3::text::ast_bool_values, $4::int4 FROM unnest($1::text[]) AS n(id)
ON CONFLICT (id) DO UPDATE SET max_contacts = EXCLUDED.max_contacts, remove_existing = EXCLUDED.remove_existing,
    qualify_frequency = EXCLUDED.qualify_frequency
WHERE (ps_aors.max_contacts, ps_aors.remove_existing, ps_aors.qualify_frequency)
    IS DISTINCT FROM (EXCLUDED.max_contacts, EXCLUDED.remove_existing, EXCLUDED.qualify_frequency)
RETURNING (xmax = 0) AS inserted
"""

# The auth username is the endpoint id: PJSIP identifies a registering phone by its From user, the endpoint name.
_AUTHS = """
INSERT INTO ps_auths (id, auth_type, username, password, realm)
SELECT n.id, 'userpass', n.id, n.password, $3::text FROM unnest($1::text[], $2::text[]) AS n(id, password)
ON CONFLICT (id) DO UPDATE SET auth_type = EXCLUDED.auth_type, username = EXCLUDED.username,
    password = EXCLUDED.password, realm = EXCLUDED.realm
WHERE (ps_auths.auth_type, ps_auths.username, ps_auths.password, ps_auths.realm)
    IS DISTINCT FROM (EXCLUDED.auth_type, EXCLUDED.username, EXCLUDED.password, EXCLUDED.realm)
RETURNING (xmax = 0) AS inserted
"""

_OWNED = """
INSERT INTO callstream_endpoints (id, tenant_id, agent_id)
SELECT n.id, $1, n.agent_id FROM unnest($2::text[], $3::text[]) AS n(id, agent_id)
ON CONFLICT (id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, agent_id = EXCLUDED.agent_id, updated_at = now()
WHERE (callstream_endpoints.tenant_id, callstream_endpoints.agent_id)
    IS DISTINCT FROM (EXCLUDED.tenant_id, EXCLUDED.agent_id)
RETURNING (xmax = 0) AS inserted
"""


def callerid(name: str, extension: str) -> str:
    """`"Alice Martin" <1001>`, the name shortened to fit Asterisk's 40 characters and stripped of the characters
    that would end the quoted part early."""
    room = CALLERID_MAX - len(extension) - len('"" <>')
    clean = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>\\').strip()
    return f'"{clean[:max(room, 0)].rstrip()}" <{extension}>'


def _yes(value: bool) -> str:
    return "yes" if value else "no"


async def _apply_pbx(conn: asyncpg.Connection, site: Site) -> dict[str, TableChanges]:
    tenant, pjsip = site.tenant.id, site.pjsip
    agents = site.agent_configs
    ids = [agent.endpoint for agent in agents]

    foreign = await conn.fetch(_FOREIGN, tenant, ids)
    if foreign:
        names = ", ".join(row["id"] for row in foreign)
        raise SiteError([f"the PBX database already has PJSIP objects that callstream did not provision for this "
                         f"tenant: {names}; remove them, or choose other endpoint names (pjsip.endpoint_template)"])
    removed = await conn.fetchrow(_PBX_REMOVE, tenant, ids)

    mailboxes = [f"{a.extension}@{pjsip.mailbox_context}" if pjsip.mailbox_context else None for a in agents]
    endpoint_rows = await conn.fetch(
        _ENDPOINTS, ids, [callerid(a.name, a.extension) for a in agents], mailboxes,
        pjsip.transport, pjsip.context, pjsip.disallow, pjsip.allow, _yes(pjsip.direct_media),
        _yes(pjsip.force_rport), _yes(pjsip.rewrite_contact), _yes(pjsip.rtp_symmetric), _yes(pjsip.ice_support),
        pjsip.dtmf_mode)
    aor_rows = await conn.fetch(_AORS, ids, pjsip.max_contacts, _yes(pjsip.remove_existing),
                                pjsip.qualify_frequency)
    passwords = site.sip_passwords
    auth_rows = await conn.fetch(_AUTHS, ids, [passwords[a.id].get_secret_value() for a in agents], pjsip.realm)
    owned_rows = await conn.fetch(_OWNED, tenant, ids, [agent.id for agent in agents])
    return {
        "ps_endpoints": _counted(endpoint_rows, removed["endpoints"]),
        "ps_aors": _counted(aor_rows, removed["aors"]),
        "ps_auths": _counted(auth_rows, removed["auths"]),
        "callstream_endpoints": _counted(owned_rows, removed["owned"]),
    }


# ------------------------------------------------------------------------------------------------------ read back

class ConfigNotFound(LookupError):
    """The tenant has no configuration in this database: `callstream-admin site load FILE` first."""


async def load_config(conn: asyncpg.Connection, tenant: str) -> SiteConfig:
    """The active configuration of a tenant, read in one snapshot (a load committing meanwhile is seen whole or
    not at all). Seven small queries: meant for a service's start, not for every call."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow("SELECT id, name, timezone FROM tenants WHERE id = $1", tenant)
        if row is None:
            raise ConfigNotFound(f"no configuration for tenant {tenant!r}; load a site file first")
        pbxs = await conn.fetch(
            "SELECT id, ari_url, entity_id FROM pbxs WHERE tenant_id = $1 AND active ORDER BY id", tenant)
        queues = await conn.fetch(
            f"SELECT {', '.join(_QUEUE_COLUMNS)} FROM queues WHERE tenant_id = $1 AND active ORDER BY id", tenant)
        dids = await conn.fetch("SELECT number, queue_id FROM dids WHERE tenant_id = $1 ORDER BY number", tenant)
        agents = await conn.fetch(
            "SELECT id, name, extension, endpoint, pbx_id, floor FROM agents WHERE tenant_id = $1 AND active "
            "ORDER BY id", tenant)
        skills = await conn.fetch(
            "SELECT s.agent_id, s.skill, s.level FROM agent_skills s JOIN agents a "
            "ON a.tenant_id = s.tenant_id AND a.id = s.agent_id WHERE s.tenant_id = $1 AND a.active "
            "ORDER BY s.agent_id, s.skill", tenant)
        reasons = await conn.fetch(
            "SELECT id, label, paid, max_duration_s FROM pause_reasons WHERE tenant_id = $1 AND active ORDER BY id",
            tenant)
    by_agent: dict[str, dict[str, int]] = {}
    for skill in skills:
        by_agent.setdefault(skill["agent_id"], {})[skill["skill"]] = skill["level"]
    return SiteConfig(
        tenant=Tenant.model_validate(dict(row)),
        pbxs={r["id"]: Pbx.model_validate(dict(r)) for r in pbxs},
        queues={r["id"]: _queue(r) for r in queues},
        dids={r["number"]: r["queue_id"] for r in dids},
        agents={r["id"]: AgentConfig(id=r["id"], name=r["name"], extension=r["extension"], endpoint=r["endpoint"],
                                     pbx=r["pbx_id"], floor=r["floor"], skills=by_agent.get(r["id"], {}))
                for r in agents},
        pause_reasons={r["id"]: PauseReason.model_validate(dict(r)) for r in reasons},
    )


def _queue(row: asyncpg.Record) -> Queue:
    values = dict(row)
    values["overflow_queue"] = values.pop("overflow_queue_id")
    return Queue.model_validate(values)
