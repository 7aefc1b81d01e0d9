"""Board snapshots to Redis: SET the board's key, HSET the boards index, then PUBLISH the same JSON.

The key is written before the publication so that a web instance that subscribes and then reads the key can
never miss a newer snapshot than the one it reads (board.py). Sequence numbers continue from the stored
snapshots, so a restarted aggregator's snapshots are never taken for stale ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
import redis.asyncio as aioredis

from callstream_common import metrics
from callstream_common.redis_store import board_channel, board_key, boards_index_key
from callstream_stats.board import BoardSnapshot


async def stored_seqs(redis: aioredis.Redis, tenant: str, scopes: Sequence[str]) -> dict[str, int]:
    """The `seq` of each board's stored snapshot (boards never published are absent)."""
    if not scopes:
        return {}
    values = await redis.mget([board_key(tenant, scope) for scope in scopes])
    seqs: dict[str, int] = {}
    for scope, value in zip(scopes, values, strict=True):
        if value is None:
            continue
        try:
            seq = orjson.loads(value).get("seq")
        except (orjson.JSONDecodeError, AttributeError):
            continue  # not a snapshot: it will be overwritten
        if isinstance(seq, int):
            seqs[scope] = seq
    return seqs


async def publish(redis: aioredis.Redis, tenant: str, snapshots: Iterable[BoardSnapshot]) -> int:
    """Write and announce the snapshots in one round trip (a pipeline keeps each board's three steps in order)."""
    channel = board_channel(tenant)
    index = boards_index_key(tenant)
    count = 0
    async with redis.pipeline(transaction=False) as pipe:
        for snapshot in snapshots:
            data = snapshot.model_dump_json()
            pipe.set(board_key(tenant, snapshot.scope), data)
            pipe.hset(index, snapshot.scope, snapshot.title)
            pipe.publish(channel, data)
            count += 1
        if count:
            await pipe.execute()
    metrics.STATS_SNAPSHOTS_PUBLISHED.inc(count)
    return count
