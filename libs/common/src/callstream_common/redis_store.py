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
