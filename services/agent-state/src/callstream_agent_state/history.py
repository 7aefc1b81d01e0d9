"""Agent history in the business database: sessions and state intervals, from the machine's outputs.

One transaction per input: the tracking record (`advance_position`) first, then the upserts, so an input
applied before (a redelivery after a crash, a replay) writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import asyncpg

from callstream_common.messages.agents import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentReassigned,
    AgentSkillsChanged,
    AgentStateChanged,
)
from callstream_common.sql.positions import advance_position

from callstream_agent_state.machine import AgentEventOut
from callstream_agent_state.positions import Position
from callstream_agent_state.site_sql import REASSIGN

COMPONENT = "agent_state"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PROJECTION = "agent_state"

_LOGIN = """
INSERT INTO agent_sessions (tenant, session_id, agent_id, login_at, endpoint, station)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant, session_id) DO NOTHING
"""
_LOGOUT = """
UPDATE agent_sessions SET logout_at = $3 WHERE tenant = $1 AND session_id = $2 AND logout_at IS NULL
"""
_CLOSE = """
UPDATE agent_state_intervals SET ended_at = $3 WHERE tenant = $1 AND agent_id = $2 AND ended_at IS NULL
"""
# cms.agent-set-skills changes the configuration itself (agent_skills, component config), so that a restart
# loads the new skills; a later `site load` of the YAML sets them back to the file's.
_SKILLS_CLEAR = "DELETE FROM agent_skills WHERE tenant_id = $1 AND agent_id = $2"
_SKILL_SET = "INSERT INTO agent_skills (tenant_id, agent_id, skill, level) VALUES ($1, $2, $3, $4)"
_OPEN = """
INSERT INTO agent_state_intervals (tenant, agent_id, started_at, state, reason, call_id, cause)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (tenant, agent_id, started_at, state) DO NOTHING
"""


HistoryEvent = AgentEventOut | AgentSkillsChanged | AgentReassigned


async def record(pool: asyncpg.Pool, tenant: str, position: Position, events: Sequence[HistoryEvent]) -> bool:
    """Write what `events` (the outputs of the input at `position`) change; False if it was applied before."""
    if not events:
        return False
    async with pool.acquire() as conn, conn.transaction():
        if not await advance_position(conn, PROJECTION, position.topic, position.partition, position.offset):
            return False
        for event in events:
            match event:
                case AgentLoggedIn():
                    await conn.execute(_LOGIN, tenant, event.session_id, event.agent_id, event.at, event.endpoint,
                                       event.station)
                case AgentLoggedOut():
                    await conn.execute(_LOGOUT, tenant, event.session_id, event.at)
                case AgentStateChanged():
                    await conn.execute(_CLOSE, tenant, event.agent_id, event.at)
                    await conn.execute(_OPEN, tenant, event.agent_id, event.at, event.state.value,
                                       event.pause_reason, event.call_id, position.causation)
                case AgentSkillsChanged():
                    await conn.execute(_SKILLS_CLEAR, tenant, event.agent_id)
                    await conn.executemany(_SKILL_SET, [(tenant, event.agent_id, skill, level)
                                                        for skill, level in sorted(event.skills.items())])
                case AgentReassigned():
                    await conn.execute(REASSIGN, tenant, event.agent_id, event.to_pbx_id)
    return True
