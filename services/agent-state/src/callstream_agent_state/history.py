"""Agent history in the business database, and the configuration changes agents' commands make.

- **History** (sessions and state intervals) is a projection of the `agents` topic, applied in batches, one
  transaction per batch with its tracking records (`consumer_positions`, projection `agent_state.history`): a
  redelivered or replayed event writes nothing. It is off the state machine's path on purpose: written per
  input, its transaction (and WAL flush) was over half of the ~11 ms agent-state spent on each call event,
  and every agent event — which the router waits for before offering a freed agent the next call, and the
  wallboards show — waited for it (docs/acd.md, bench-routing).
- **Configuration** (set-skills, reassign) is written while the command is processed, one transaction per
  command with its tracking record (projection `agent_state`): a login right after reads it from SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from callstream_common.messages.agents import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentReassigned,
    AgentSkillsChanged,
    AgentStateChanged,
)
from callstream_common.sql.positions import LogEnd, advance_position, apply_batch

from callstream_agent_state.machine import AgentEventOut
from callstream_agent_state.positions import Position
from callstream_agent_state.site_sql import REASSIGN

COMPONENT = "agent_state"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PROJECTION = "agent_state"  # the configuration changes, tracked by the commands' positions
HISTORY_PROJECTION = "agent_state.history"  # sessions and intervals, tracked by positions in `agents`

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
ConfigEvent = AgentSkillsChanged | AgentReassigned
SessionEvent = AgentLoggedIn | AgentLoggedOut | AgentStateChanged


async def record_config(pool: asyncpg.Pool, tenant: str, position: Position, event: ConfigEvent) -> bool:
    """Write the configuration change the command at `position` made; False if it was applied before."""
    async with pool.acquire() as conn, conn.transaction():
        if not await advance_position(conn, PROJECTION, position.topic, position.partition, position.offset):
            return False
        match event:
            case AgentSkillsChanged():
                await conn.execute(_SKILLS_CLEAR, tenant, event.agent_id)
                await conn.executemany(_SKILL_SET, [(tenant, event.agent_id, skill, level)
                                                    for skill, level in sorted(event.skills.items())])
            case AgentReassigned():
                await conn.execute(REASSIGN, tenant, event.agent_id, event.to_pbx_id)
    return True


@dataclass(frozen=True)
class Recorded:
    """One session or state event read from `agents`: where it was read, and the input that caused it."""

    tenant: str
    topic: str
    partition: int
    offset: int
    causation: str | None
    event: SessionEvent


async def project_batch(pool: asyncpg.Pool, records: Sequence[Recorded], *,
                        log_end: LogEnd | None = None) -> list[bool]:
    """Apply `records` (in the order read) in one transaction; per record, False if applied before."""
    return await apply_batch(pool, HISTORY_PROJECTION, records, _apply, log_end=log_end)


async def _apply(conn: asyncpg.Connection, record: Recorded) -> None:
    tenant, event = record.tenant, record.event
    match event:
        case AgentLoggedIn():
            await conn.execute(_LOGIN, tenant, event.session_id, event.agent_id, event.at, event.endpoint,
                               event.station)
        case AgentLoggedOut():
            await conn.execute(_LOGOUT, tenant, event.session_id, event.at)
        case AgentStateChanged():
            await conn.execute(_CLOSE, tenant, event.agent_id, event.at)
            await conn.execute(_OPEN, tenant, event.agent_id, event.at, event.state.value, event.pause_reason,
                               event.call_id, record.causation)
