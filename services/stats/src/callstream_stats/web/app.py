"""Builds the wallboard web application: Redis, the fan-out hub and the routes, opened and closed in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from callstream_stats.web import routes
from callstream_stats.web.hub import BoardHub
from callstream_stats.web.keys import HUB, SETTINGS, STORE
from callstream_stats.web.settings import StatsWebSettings
from callstream_stats.web.store import BoardStore


def build_app(settings: StatsWebSettings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_resources)
    # Before aiohttp waits for handlers to finish: streams never finish by themselves, so end them first.
    app.on_shutdown.append(_end_streams)
    routes.setup(app)
    return app


def _redis(settings: StatsWebSettings) -> aioredis.Redis:
    # A blocking pool: a burst of connecting TVs (every TV reconnects when an instance restarts) queues for a
    # connection instead of opening one each.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(),
        max_connections=settings.redis_pool_max, timeout=5,
        health_check_interval=30, socket_connect_timeout=5,
        client_name=settings.producer_id[:60].replace(" ", "_"),
    )
    return aioredis.Redis(connection_pool=pool)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with contextlib.AsyncExitStack() as stack:
        redis = _redis(settings)
        stack.push_async_callback(redis.aclose, close_connection_pool=True)
        store = BoardStore(redis, settings.tenant)
        hub = BoardHub(redis, store)
        app[STORE], app[HUB] = store, hub
        relay = asyncio.create_task(hub.run(), name="board-relay")
        stack.push_async_callback(_cancel, relay)
        yield


async def _end_streams(app: web.Application) -> None:
    if HUB in app:
        app[HUB].close_all()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
