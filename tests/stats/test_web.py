"""The wallboard web server against the real Redis: stream, fan-out, API, GET-only.

Each test has its own tenant (the `prefix` fixture), hence its own board keys and channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from wallboard_support import SseReader, WebServer, snapshot, store, web_settings

from callstream_common.redis_store import board_channel
from conftest import Stack
from helpers import until


@pytest.fixture
async def server(stack: Stack, prefix: str) -> AsyncIterator[WebServer]:
    web = await WebServer(web_settings(stack.redis_url, prefix)).start()
    try:
        await until(web.subscribed, timeout=10, what="the board subscription")
        yield web
    finally:
        await web.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # No connection limit: the fan-out test opens 150 streams at once.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def open_stream(http: aiohttp.ClientSession, url: str, **headers: str) -> SseReader:
    response = await http.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=None, sock_read=30))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return SseReader(response)


async def test_stream_starts_with_a_heartbeat_then_the_stored_snapshot(
        server: WebServer, http: aiohttp.ClientSession, redis_client: aioredis.Redis, prefix: str) -> None:
    snap = snapshot(prefix, seq=3)
    await store(redis_client, snap, announce=False)
    reader = await open_stream(http, f"{server.url}/stream/queue/sales")
    hello = await reader.next(skip_heartbeats=False)
    assert hello.event == "heartbeat" and hello.json()["interval_s"] == 1.0
    first = await reader.next()
    assert (first.event, first.id) == ("snapshot", "3")
    assert first.json() == snap.model_dump(mode="json")


async def test_a_published_snapshot_is_relayed(
        server: WebServer, http: aiohttp.ClientSession, redis_client: aioredis.Redis, prefix: str) -> None:
    await store(redis_client, snapshot(prefix, seq=1, waiting=2), announce=False)
    reader = await open_stream(http, f"{server.url}/stream/queue/sales")
    assert (await reader.next()).json()["now"]["waiting"] == 2
    await store(redis_client, snapshot(prefix, seq=2, waiting=9))
    relayed = await reader.next(timeout=5)
    assert relayed.id == "2" and relayed.json()["now"]["waiting"] == 9


async def test_a_board_without_a_snapshot_streams_heartbeats_until_its_first_one(
        server: WebServer, http: aiohttp.ClientSession, redis_client: aioredis.Redis, prefix: str) -> None:
    reader = await open_stream(http, f"{server.url}/stream/floor/3")
    assert (await reader.next(skip_heartbeats=False)).event == "heartbeat"
    assert (await reader.next(skip_heartbeats=False)).event == "heartbeat"  # the idle one, after an interval
    await store(redis_client, snapshot(prefix, kind="floor", ident="3", seq=1))
    assert (await reader.next(timeout=5)).json()["scope"] == "floor/3"


async def test_nothing_older_than_what_the_client_has_is_sent(
        server: WebServer, http: aiohttp.ClientSession, redis_client: aioredis.Redis, prefix: str) -> None:
    await store(redis_client, snapshot(prefix, seq=5), announce=False)
    reader = await open_stream(http, f"{server.url}/stream/queue/sales")
    assert (await reader.next()).id == "5"
    # An older snapshot arriving late, the same one again, then a newer one: only the newer one comes.
    await redis_client.publish(board_channel(prefix), snapshot(prefix, seq=4).model_dump_json())
    await redis_client.publish(board_channel(prefix), snapshot(prefix, seq=5).model_dump_json())
    await store(redis_client, snapshot(prefix, seq=6))
    assert (await reader.next(timeout=5)).id == "6"

    # The browser's reconnect sends Last-Event-ID: the stored snapshot (6) is not sent again, a newer one is.
    again = await open_stream(http, f"{server.url}/stream/queue/sales", **{"Last-Event-ID": "6"})
    await store(redis_client, snapshot(prefix, seq=7))
    assert (await again.next(timeout=5)).id == "7"
    # The page's own reconnect (a new EventSource) passes ?last_seq= instead.
    by_query = await open_stream(http, f"{server.url}/stream/queue/sales?last_seq=7")
    await store(redis_client, snapshot(prefix, seq=8))
    assert (await by_query.next(timeout=5)).id == "8"


async def test_a_client_ahead_of_the_store_gets_the_stored_snapshot(
        server: WebServer, http: aiohttp.ClientSession, redis_client: aioredis.Redis, prefix: str) -> None:
    # The aggregator was rebuilt and its sequence started over: a TV that saw seq 900 must not freeze.
    await store(redis_client, snapshot(prefix, seq=2), announce=False)
    reader = await open_stream(http, f"{server.url}/stream/queue/sales", **{"Last-Event-ID": "900"})
    assert (await reader.next(timeout=5)).id == "2"


async def test_150_concurrent_streams_all_receive_an_update(
        server: WebServer, http: aiohttp.ClientSession, redis_client: aioredis.Redis, prefix: str) -> None:
    await store(redis_client, snapshot(prefix, seq=1), announce=False)
    readers = await asyncio.gather(*(open_stream(http, f"{server.url}/stream/queue/sales") for _ in range(150)))
    assert [e.id for e in await asyncio.gather(*(r.next() for r in readers))] == ["1"] * 150
    await store(redis_client, snapshot(prefix, seq=2, waiting=11))
    updates = await asyncio.gather(*(r.next(timeout=10) for r in readers))
    assert {(e.id, e.json()["now"]["waiting"]) for e in updates} == {("2", 11)}
    health = await (await http.get(f"{server.url}/health")).json()
    assert health["streams"] == 150


async def test_two_instances_both_relay_the_same_publication(
        stack: Stack, http: aiohttp.ClientSession, redis_client: aioredis.Redis, prefix: str) -> None:
    servers = [await WebServer(web_settings(stack.redis_url, prefix, instance=f"{prefix}-{i}")).start() for i in (1, 2)]
    try:
        for web in servers:
            await until(web.subscribed, timeout=10, what="the board subscription")
        readers = [await open_stream(http, f"{web.url}/stream/department/collections") for web in servers]
        await store(redis_client, snapshot(prefix, kind="department", ident="collections", seq=1, waiting=7))
        for reader in readers:
            event = await reader.next(timeout=5)
            assert (event.id, event.json()["now"]["waiting"]) == ("1", 7)
    finally:
        for web in servers:
            await web.stop()


async def test_the_stream_survives_a_lost_subscription(
        server: WebServer, http: aiohttp.ClientSession, redis_client: aioredis.Redis, prefix: str) -> None:
    """Publications made while the subscription is down are made up for by re-reading the stored snapshots."""
    await store(redis_client, snapshot(prefix, seq=1), announce=False)
    reader = await open_stream(http, f"{server.url}/stream/queue/sales")
    assert (await reader.next()).id == "1"
    clients = await redis_client.client_list(_type="pubsub")
    ours = [c["id"] for c in clients if c.get("name") == f"stats-web/{prefix}"]
    assert len(ours) == 1, clients
    # Kill our subscription and store a new snapshot without publishing it (as if its publication was lost).
    for client_id in ours:
        await redis_client.client_kill_filter(_id=client_id)
    await store(redis_client, snapshot(prefix, seq=2, waiting=5), announce=False)
    event = await reader.next(timeout=10)
    assert (event.id, event.json()["now"]["waiting"]) == ("2", 5)


async def test_only_get_is_served(server: WebServer, http: aiohttp.ClientSession) -> None:
    for path in ("/", "/board/queue/sales", "/api/boards", "/api/boards/queue/sales", "/stream/queue/sales",
                 "/metrics", "/health", "/static/board.js"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            async with http.request(method, server.url + path) as response:
                assert response.status == 405, (method, path, response.status)
    async with http.head(f"{server.url}/stream/queue/sales") as response:
        assert response.status == 405  # a body-less stream would never notice its client leave


async def test_pages_api_metrics_and_health(
        server: WebServer, http: aiohttp.ClientSession, redis_client: aioredis.Redis, prefix: str) -> None:
    snap = snapshot(prefix, seq=4)
    await store(redis_client, snap, announce=False)
    async with http.get(f"{server.url}/api/boards/queue/sales") as response:
        assert response.status == 200 and response.content_type == "application/json"
        assert await response.json() == snap.model_dump(mode="json")
    async with http.get(f"{server.url}/api/boards/queue/unknown") as response:
        assert response.status == 404
    async with http.get(f"{server.url}/api/boards") as response:
        boards = (await response.json())["boards"]
        assert [(b["scope"], b["title"], b["page"]) for b in boards] == [
            ("queue/sales", snap.title, "/board/queue/sales")]
        assert boards[0]["snapshot"]["seq"] == 4
    async with http.get(f"{server.url}/") as response:
        assert 'href="/board/queue/sales"' in await response.text()
    async with http.get(f"{server.url}/board/queue/sales") as response:
        assert response.status == 200 and response.content_type == "text/html"
    for bad in ("/board/agent/7", "/api/boards/shelf/x", "/stream/queue/a:b"):
        async with http.get(server.url + bad) as response:
            assert response.status == 404, bad
    async with http.get(f"{server.url}/health") as response:
        assert response.status == 200 and (await response.json())["subscribed"] is True
    reader = await open_stream(http, f"{server.url}/stream/queue/sales")
    await reader.next()
    async with http.get(f"{server.url}/metrics") as response:
        text = await response.text()
        assert "callstream_stats_web_streams" in text
        assert 'callstream_stats_web_events_sent_total{event="snapshot"}' in text
        assert "callstream_stats_web_subscribed 1.0" in text
