"""The Redis client and the one place Redis key names are built.

Keys are namespaced `cs:<tenant>:...` so that tenants sharing a Redis never collide, and so a test can use
a tenant of its own. Services add their key builders here, next to each other, so the whole key space can
be read in one file.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from callstream_common.settings import ServiceSettings

ROOT = "cs"


def key(tenant: str, *parts: str) -> str:
    if not tenant or any(not part or ":" in part for part in parts):
        raise ValueError(f"invalid Redis key parts: tenant={tenant!r}, parts={parts!r}")
    return ":".join((ROOT, tenant, *parts))


# Agents' availability (availability.py). Its Lua scripts meet agents and queues while they run, so they get
# the `*_prefix` forms below and append `<agent_id>`, `<pbx_id>` or `<pbx_id>:<queue_id>` exactly as the
# full builders do (tests/stack/test_availability.py checks that both spell the same keys).


def agent_key(tenant: str, agent_id: str) -> str:
    """Hash of one agent: state, PBX, endpoint, call, skills, queues, ordering inputs (availability.py)."""
    return key(tenant, "agent", agent_id)


def agent_key_prefix(tenant: str) -> str:
    return key(tenant, "agent") + ":"


def ready_key(tenant: str, pbx_id: str, queue_id: str) -> str:
    """Sorted set of the agents available for a queue on a PBX, scored by the queue's strategy."""
    return key(tenant, "ready", pbx_id, queue_id)


def ready_key_prefix(tenant: str) -> str:
    return key(tenant, "ready") + ":"


def pbx_agents_key(tenant: str, pbx_id: str) -> str:
    """Set of the ids of the agents assigned to a PBX, whatever their state (snapshot, counts)."""
    return key(tenant, "pbx-agents", pbx_id)


def pbx_agents_key_prefix(tenant: str) -> str:
    return key(tenant, "pbx-agents") + ":"


def call_agents_key(tenant: str) -> str:
    """Hash: call id -> the space-separated ids of the agents holding that call (a field, since call ids
    may contain ':')."""
    return key(tenant, "call-agents")


def tenant_pattern(tenant: str) -> str:
    """A SCAN pattern matching every key of a tenant."""
    return f"{ROOT}:{tenant}:*"


def create_redis(settings: ServiceSettings, *, url: str | None = None) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url or settings.redis_url.get_secret_value(),
        decode_responses=False,
        health_check_interval=30,
        socket_connect_timeout=5,
        client_name=settings.producer_id[:60].replace(" ", "_"),
    )


# Live statistics (services/stats): the aggregator writes one snapshot per board and announces it; every web
# instance reads the snapshots on a client's connect and relays the announcements (fan-out through Redis).


def board_key(tenant: str, scope: str) -> str:
    """String: the JSON BoardSnapshot of one board (`scope` as `kind/id`, e.g. `queue/sales`, `tenant/all`)."""
    return key(tenant, "board", scope)


def boards_index_key(tenant: str) -> str:
    """Hash: scope -> the board's title, every board the aggregator maintains (the web's board list)."""
    return key(tenant, "boards")


def board_channel(tenant: str) -> str:
    """Pub/sub channel: each message is one BoardSnapshot JSON, published after its key was written."""
    return key(tenant, "board-updates")
