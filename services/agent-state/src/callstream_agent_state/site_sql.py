"""One agent's configuration read again from SQL, and its PBX changed there (cms.agent-reassign).

At start the service loads the whole configuration (`load_config`); an agent's row is read again at each login,
since another worker may have changed it since (a reassignment to this worker's PBX, new skills).
"""

from __future__ import annotations

import asyncpg

from callstream_common.site import AgentConfig

_AGENT = """
SELECT id, name, extension, endpoint, pbx_id, floor FROM agents WHERE tenant_id = $1 AND id = $2 AND active
"""
_SKILLS = "SELECT skill, level FROM agent_skills WHERE tenant_id = $1 AND agent_id = $2"
# A later `site load` of the YAML sets the PBX back to the file's: reassignments are operational moves.
REASSIGN = "UPDATE agents SET pbx_id = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2"


async def read_agent(pool: asyncpg.Pool, tenant: str, agent_id: str) -> AgentConfig | None:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(_AGENT, tenant, agent_id)
        if row is None:
            return None
        skills = await conn.fetch(_SKILLS, tenant, agent_id)
    return AgentConfig(id=row["id"], name=row["name"], extension=row["extension"], endpoint=row["endpoint"],
                       pbx=row["pbx_id"], floor=row["floor"], skills={r["skill"]: r["level"] for r in skills})
