"""The service's resources and start-up state, opened in one exit stack: SQL pool (migrations applied,
configuration read), Redis availability (every configured agent upserted so the router can reserve it)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import asyncpg

from callstream_common.availability import Availability
from callstream_common.messages.agents import AgentState
from callstream_common.redis_store import create_redis
from callstream_common.site import CONFIG_COMPONENT, CONFIG_MIGRATIONS, SiteConfig, load_config
from callstream_common.sql import apply_migrations, create_pool, load_migrations
from callstream_common.sql.migrations_runner import COMMON_MIGRATIONS

from callstream_agent_state import history
from callstream_agent_state.config import Directory, build_directory, build_policy
from callstream_agent_state.machine import AgentPolicy
from callstream_agent_state.redis_effects import ensure_agent
from callstream_agent_state.settings import AgentStateSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    pool: asyncpg.Pool
    store: Availability
    directory: Directory
    policy: AgentPolicy
    config: SiteConfig  # as loaded at start; an agent's later changes (set-skills) live in the Processor
    technology: str


async def open_runtime(settings: AgentStateSettings, stack: AsyncExitStack) -> Runtime:
    """Open the resources in order (each closed by `stack` in reverse) and load the configuration."""
    pool = await create_pool(settings)
    stack.push_async_callback(pool.close)
    async with pool.acquire() as conn:
        for component, folder in (("common", COMMON_MIGRATIONS), (CONFIG_COMPONENT, CONFIG_MIGRATIONS),
                                  (history.COMPONENT, history.MIGRATIONS)):
            await apply_migrations(conn, component, load_migrations(folder), service=settings.service)
        site = await load_config(conn, settings.tenant)
    redis = create_redis(settings)
    stack.push_async_callback(redis.aclose)
    store = Availability(redis, settings.tenant)
    directory = build_directory(site, settings.endpoint_technology)
    now = datetime.now(UTC)
    for entry in directory.agents.values():
        current = await store.get(entry.agent_id)
        if current is not None and current.state != AgentState.LOGGED_OUT:
            entry = replace(entry, endpoint=current.endpoint)  # keep the phone it logged in on (hot-desking)
        await ensure_agent(store, entry, now)
    log.info("configuration loaded", extra={"agents": len(directory.agents), "queues": len(site.queues)})
    return Runtime(pool, store, directory, build_policy(site, settings), site, settings.endpoint_technology)
