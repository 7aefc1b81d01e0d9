"""Reading the boards the aggregator stores in Redis (keys from callstream_common.redis_store).

The web side only reads: the snapshot of a board, several at once, and the index of boards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from pydantic import ValidationError

from callstream_common.redis_store import board_key, boards_index_key

from callstream_stats.board import BoardSnapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored snapshot: the bytes as the aggregator wrote them (served as they are) and their model."""

    raw: bytes
    snapshot: BoardSnapshot


def parse(raw: bytes, where: str) -> Stored | None:
    """The snapshot in `raw`, or None (logged) if it does not match the contract: one bad snapshot must not
    break a stream or the relay for every other board."""
    try:
        return Stored(raw, BoardSnapshot.model_validate_json(raw))
    except ValidationError as exc:
        log.warning("invalid board snapshot in %s: %s", where, exc.errors(include_url=False)[:3])
        return None


class BoardStore:
    def __init__(self, redis: aioredis.Redis, tenant: str) -> None:
        self._redis = redis
        self.tenant = tenant

    async def get(self, scope: str) -> Stored | None:
        key = board_key(self.tenant, scope)
        raw = await self._redis.get(key)
        return None if raw is None else parse(_bytes(raw), key)

    async def get_many(self, scopes: list[str]) -> dict[str, Stored]:
        if not scopes:
            return {}
        keys = [board_key(self.tenant, scope) for scope in scopes]
        values = await self._redis.mget(keys)
        found = {}
        for scope, key, raw in zip(scopes, keys, values, strict=True):
            if raw is not None and (stored := parse(_bytes(raw), key)) is not None:
                found[scope] = stored
        return found

    async def index(self) -> dict[str, str]:
        """scope -> title of every board the aggregator maintains, sorted by scope."""
        raw = await self._redis.hgetall(boards_index_key(self.tenant))
        return dict(sorted((_text(k), _text(v)) for k, v in raw.items()))


# The client is built with decode_responses=False, so replies are bytes; redis-py's types admit str as well.


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
