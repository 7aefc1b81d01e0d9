"""Fan-out: one Redis subscription per web instance, relayed to every open stream of the board it concerns.

The aggregator writes a board's snapshot to its key and then publishes it on the tenant's channel. This
instance holds one subscription to that channel (not one per client: 150 TVs cost one Redis connection) and
hands each publication to the mailboxes of that board's streams; a mailbox keeps only the newest snapshot,
so a slow client never holds the relay up nor grows a queue. Every instance subscribes, so any number of
them serve the same figures.

Nothing is lost across a gap in the subscription: on every (re)subscription the hub re-reads the stored
snapshot of each board that has streams, and the mailboxes drop what a client already has (by `seq`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from callstream_common.metrics import STATS_WEB_PUBLICATIONS, STATS_WEB_STREAMS, STATS_WEB_SUBSCRIBED
from callstream_common.redis_store import board_channel

from callstream_stats.web.mailbox import Mailbox
from callstream_stats.web.sse import Frame, snapshot_frame
from callstream_stats.web.store import BoardStore, Stored, parse

log = logging.getLogger(__name__)

# Poll interval of the subscription read: how often the connection's health check can run while the
# channel is quiet (a half-open TCP connection is otherwise noticed only when the kernel gives up).
_READ_TIMEOUT_S = 5.0
_BACKOFF_MAX_S = 5.0


class BoardHub:
    def __init__(self, redis: aioredis.Redis, store: BoardStore) -> None:
        self._redis = redis
        self._store = store
        self._channel = board_channel(store.tenant)
        self._streams: dict[str, set[Mailbox]] = defaultdict(set)
        self._count = 0
        self.subscribed = False

    @property
    def stream_count(self) -> int:
        return self._count

    # --- streams ---------------------------------------------------------------------------------------

    async def attach(self, scope: str, last_seq: int | None) -> Mailbox:
        """A mailbox for a new stream of `scope`, holding the stored snapshot unless the client has it.

        The mailbox is registered before the stored snapshot is read, so a publication in between is not
        missed; whichever of the two is newer wins in the mailbox.
        """
        mailbox = Mailbox(scope, last_seq)
        self._streams[scope].add(mailbox)
        self._count += 1
        STATS_WEB_STREAMS.set(self._count)
        try:
            stored = await self._store.get(scope)
        except BaseException:
            self.detach(mailbox)
            raise
        if stored is not None:
            if last_seq is not None and stored.snapshot.seq < last_seq:
                # The stored snapshot is always the newest one, so a client ahead of it saw a sequence that
                # has since started over (the aggregator's state was rebuilt from scratch): skipping by seq
                # would freeze this TV until the new sequence caught up, so start from the stored one.
                log.info("board %s: client has seq %d, store has %d; resending", scope, last_seq,
                         stored.snapshot.seq)
                mailbox.restart_sequence()
            mailbox.offer(_frame(stored))
        return mailbox

    def detach(self, mailbox: Mailbox) -> None:
        mailboxes = self._streams.get(mailbox.scope)
        if mailboxes is None or mailbox not in mailboxes:
            return
        mailboxes.discard(mailbox)
        if not mailboxes:
            del self._streams[mailbox.scope]
        self._count -= 1
        STATS_WEB_STREAMS.set(self._count)

    def close_all(self) -> None:
        """End every stream (shutdown): each handler returns, its client reconnects to another instance."""
        for mailboxes in self._streams.values():
            for mailbox in mailboxes:
                mailbox.close()

    # --- the subscription ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Hold the subscription for as long as the task runs, re-subscribing after any Redis failure."""
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=_READ_TIMEOUT_S)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # Also after redis-py's own reconnect, which re-subscribes: publications may have been
                        # missed meanwhile, and only the stored snapshots can tell.
                        await self._subscribed()
                        backoff = 0.1
                    elif message["type"] == "message":
                        self.relay(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("board subscription lost (%s); re-subscribing in %.1f s", exc, backoff)
            finally:
                self._set_subscribed(False)
                await _close_quietly(pubsub)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _subscribed(self) -> None:
        self._set_subscribed(True)
        scopes = list(self._streams)
        for scope, stored in (await self._store.get_many(scopes)).items():
            frame = _frame(stored)
            for mailbox in self._streams.get(scope, ()):
                mailbox.offer(frame)
        log.info("subscribed to %s; %d board(s) with streams re-read", self._channel, len(scopes))

    def relay(self, raw: bytes) -> None:
        """Hand one published snapshot to the streams of its board (never waits: see module docstring)."""
        stored = parse(raw, self._channel)
        if stored is None:
            STATS_WEB_PUBLICATIONS.labels(outcome="invalid").inc()
            return
        mailboxes = self._streams.get(stored.snapshot.scope)
        if not mailboxes:
            STATS_WEB_PUBLICATIONS.labels(outcome="no_streams").inc()
            return
        frame = _frame(stored)
        for mailbox in mailboxes:
            mailbox.offer(frame)
        STATS_WEB_PUBLICATIONS.labels(outcome="relayed").inc()

    def _set_subscribed(self, value: bool) -> None:
        self.subscribed = value
        STATS_WEB_SUBSCRIBED.set(1 if value else 0)


def _frame(stored: Stored) -> Frame:
    return snapshot_frame(stored.snapshot.scope, stored.snapshot.seq, stored.raw)


async def _close_quietly(pubsub: PubSub) -> None:
    try:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    except (RedisError, OSError):
        pass  # the connection is already gone; nothing to release cleanly
