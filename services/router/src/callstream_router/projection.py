"""The `calls` and `call_legs` tables, projected from the call events the router produced (topic `calls`).

Events are applied in batches, each in one transaction with its tracking records (`consumer_positions`, one
per partition): a redelivered or replayed event finds its position applied and writes nothing. One
transaction per batch rather than per event: a commit (and its WAL flush) per call event cost the routing
worker ~10 ms of each (docs/acd.md, bench-routing). Every statement is an upsert by natural key, so events of a
call may arrive for a row that does not exist yet (a direct call has no call.queued).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from callstream_common.messages.calls import (
    CallAbandoned,
    CallAgentMissed,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallTransferred,
)
from callstream_common.sql.positions import LogEnd, apply_batch

COMPONENT = "router"
MIGRATIONS = Path(__file__).parent / "migrations"
PROJECTION = "router.calls"

_ENSURE = """
INSERT INTO calls (tenant, call_id, pbx_id) VALUES ($1, $2, $3)
ON CONFLICT (tenant, call_id) DO NOTHING
"""
_QUEUED = """
INSERT INTO calls (tenant, call_id, pbx_id, queue_id, direction, caller_number, caller_name, did, priority,
                   queued_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant, call_id) DO UPDATE SET
    queue_id = EXCLUDED.queue_id, direction = EXCLUDED.direction, caller_number = EXCLUDED.caller_number,
    caller_name = EXCLUDED.caller_name, did = EXCLUDED.did, priority = EXCLUDED.priority,
    queued_at = COALESCE(calls.queued_at, EXCLUDED.queued_at), updated_at = now()
"""
_OFFERED = """
INSERT INTO call_legs (tenant, call_id, attempt, agent_id, agent_channel_id, endpoint, queue_id, offered_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (tenant, call_id, agent_channel_id) DO NOTHING
"""
_MISSED = """
UPDATE call_legs SET missed_at = $4, outcome = $5
WHERE tenant = $1 AND call_id = $2 AND agent_id = $3 AND outcome IS NULL
"""
_ANSWERED_CALL = """
UPDATE calls SET agent_id = $3, answered_at = COALESCE(answered_at, $4), wait_s = COALESCE(wait_s, $5),
    queue_id = COALESCE($6, queue_id), updated_at = now()
WHERE tenant = $1 AND call_id = $2
"""
_ANSWERED_LEG = """
UPDATE call_legs SET answered_at = $4, outcome = 'answered'
WHERE tenant = $1 AND call_id = $2 AND agent_id = $3 AND outcome IS NULL
"""
_ABANDONED = """
UPDATE calls SET outcome = 'abandoned', wait_s = $3, queue_id = COALESCE(queue_id, $4), updated_at = now()
WHERE tenant = $1 AND call_id = $2
"""
_TRANSFERRED = """
UPDATE calls SET transfers = transfers + 1, queue_id = COALESCE($3, queue_id), updated_at = now()
WHERE tenant = $1 AND call_id = $2
"""
_OVERFLOWED = """
UPDATE calls SET overflows = overflows + 1, queue_id = COALESCE($3, queue_id), updated_at = now()
WHERE tenant = $1 AND call_id = $2
"""
_ENDED = """
UPDATE calls SET ended_at = $3, outcome = $4, hangup_by = $5, talk_s = $6, hold_s = $7, cause = $8,
    agent_id = COALESCE($9, agent_id), queue_id = COALESCE(queue_id, $10),
    wait_s = COALESCE(wait_s, EXTRACT(EPOCH FROM ($3 - queued_at))), updated_at = now()
WHERE tenant = $1 AND call_id = $2
"""


@dataclass(frozen=True)
class Projected:
    """One call event read from `calls`, with where it was read (its tracking position)."""

    tenant: str
    pbx_id: str
    topic: str
    partition: int
    offset: int
    event: CallEvent


async def project_batch(pool: asyncpg.Pool, records: Sequence[Projected], *,
                        log_end: LogEnd | None = None) -> list[bool]:
    """Apply `records` (in the order read) in one transaction; per record, False when its position was
    applied before (nothing written for it)."""
    return await apply_batch(pool, PROJECTION, records, _apply_record, log_end=log_end)


async def _apply_record(conn: asyncpg.Connection, record: Projected) -> None:
    tenant, pbx_id, event = record.tenant, record.pbx_id, record.event
    call = event.call_id
    if isinstance(event, CallQueued):
        await conn.execute(_QUEUED, tenant, call, pbx_id, event.queue_id, event.direction, event.caller_number,
                           event.caller_name, event.did, event.priority, event.at)
        return
    await conn.execute(_ENSURE, tenant, call, pbx_id)
    if isinstance(event, CallOffered):
        await conn.execute(_OFFERED, tenant, call, event.attempt, event.agent_id, event.agent_channel_id,
                           event.endpoint, event.queue_id, event.at)
    elif isinstance(event, CallAgentMissed):
        await conn.execute(_MISSED, tenant, call, event.agent_id, event.at, event.reason)
    elif isinstance(event, CallAnswered):
        await conn.execute(_ANSWERED_CALL, tenant, call, event.agent_id, event.at, event.wait_s, event.queue_id)
        await conn.execute(_ANSWERED_LEG, tenant, call, event.agent_id, event.at)
    elif isinstance(event, CallAbandoned):
        await conn.execute(_ABANDONED, tenant, call, event.wait_s, event.queue_id)
    elif isinstance(event, CallTransferred):
        await conn.execute(_TRANSFERRED, tenant, call, event.to_queue_id)
    elif isinstance(event, CallOverflowed):
        await conn.execute(_OVERFLOWED, tenant, call, event.to_queue_id)
    elif isinstance(event, CallEnded):
        await conn.execute(_ENDED, tenant, call, event.at, event.outcome, event.hangup_by, event.talk_s,
                           event.hold_s, event.cause, event.agent_id, event.queue_id)
