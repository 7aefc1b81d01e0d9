"""The HTTP routes. All are GET (aiohttp adds HEAD): the wallboard side never changes state, so anything else
is answered 405 by the router itself.

    /                          the boards, as links (server-rendered: works on a TV without JavaScript)
    /board/{kind}/{id}         the wallboard page (static HTML; its script opens the stream)
    /api/boards                every stored snapshot, with the board index
    /api/boards/{kind}/{id}    one stored snapshot, as the aggregator wrote it
    /stream/{kind}/{id}        Server-Sent Events: snapshot on connect, then every newer one, heartbeats
    /metrics, /health
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from callstream_common.metrics import STATS_WEB_DELIVERY_LATENCY, STATS_WEB_EVENTS_SENT, STATS_WEB_STREAMS_CLOSED

from callstream_stats.board import scope_of
from callstream_stats.web import sse
from callstream_stats.web.keys import HUB, SETTINGS, STORE
from callstream_stats.web.pages import index_page

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The route patterns keep a board's address to the scope kinds of the contract and to ids that can be part of
# a Redis key (no ':'); anything else is a plain 404.
_KINDS = "tenant|department|floor|queue"
_BOARD = "{kind:" + _KINDS + "}/{ident:[^/:]{1,128}}"
_NO_STORE = {"Cache-Control": "no-store"}


def setup(app: web.Application) -> None:
    app.router.add_get("/", boards_page)
    app.router.add_get("/board/" + _BOARD, board_page)
    app.router.add_get("/api/boards", api_boards)
    app.router.add_get("/api/boards/" + _BOARD, api_board)
    # No HEAD on the stream: a HEAD "stream" would send no body, so nothing would ever notice its client left.
    app.router.add_get("/stream/" + _BOARD, stream, allow_head=False)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_static("/static/", STATIC_DIR)
    app.on_response_prepare.append(_common_headers)


async def _common_headers(_: web.Request, response: web.StreamResponse) -> None:
    # No CDN, no third-party anything: the TVs may have no internet, and the page must not depend on it.
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # Pages and scripts revalidate (cheap, by Last-Modified) so a TV picks up a new release on its next load.
    response.headers.setdefault("Cache-Control", "no-cache")


def _scope(request: web.Request) -> str:
    kind = request.match_info["kind"]
    return scope_of(kind, request.match_info["ident"])  # type: ignore[arg-type]  # the route admits only ScopeKind


async def boards_page(request: web.Request) -> web.Response:
    index = await request.app[STORE].index()
    return web.Response(text=index_page(request.app[STORE].tenant, index), content_type="text/html")


async def board_page(_: web.Request) -> web.FileResponse:
    # One page for every board: its script reads kind and id from its own URL.
    return web.FileResponse(STATIC_DIR / "board.html")


async def api_boards(request: web.Request) -> web.Response:
    store = request.app[STORE]
    index = await store.index()
    stored = await store.get_many(list(index))
    boards: list[dict[str, Any]] = []
    for scope, title in index.items():
        kind, _, ident = scope.partition("/")
        snapshot = stored.get(scope)
        boards.append({
            "scope": scope, "kind": kind, "id": ident, "title": title,
            "page": f"/board/{scope}", "stream": f"/stream/{scope}", "api": f"/api/boards/{scope}",
            "snapshot": json.loads(snapshot.raw) if snapshot else None,
        })
    return web.json_response({"tenant": store.tenant, "boards": boards}, headers=_NO_STORE)


async def api_board(request: web.Request) -> web.Response:
    scope = _scope(request)
    stored = await request.app[STORE].get(scope)
    if stored is None:
        return web.json_response({"error": f"no snapshot for board {scope}"}, status=404, headers=_NO_STORE)
    return web.Response(body=stored.raw, content_type="application/json", headers=_NO_STORE)


async def stream(request: web.Request) -> web.StreamResponse:
    settings, hub = request.app[SETTINGS], request.app[HUB]
    if hub.stream_count >= settings.max_streams:
        raise web.HTTPServiceUnavailable(text="too many streams on this instance", headers={"Retry-After": "2"})
    last = sse.last_seq(request.headers.get("Last-Event-ID"), request.query.get("last_seq"))
    mailbox = await hub.attach(_scope(request), last)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # a reverse proxy (nginx) must not buffer the stream
    })
    reason = "client_gone"
    try:
        await response.prepare(request)
        # The first heartbeat tells the page the interval (for its silence watchdog) and the server's clock.
        await _write(response, sse.preamble() + sse.heartbeat(settings.heartbeat_s), settings.write_timeout_s)
        STATS_WEB_EVENTS_SENT.labels(event="heartbeat").inc()
        while True:
            frame = await mailbox.take(settings.heartbeat_s)
            if mailbox.closed:
                reason = "shutdown"
                break
            if frame is None:
                await _write(response, sse.heartbeat(settings.heartbeat_s), settings.write_timeout_s)
                STATS_WEB_EVENTS_SENT.labels(event="heartbeat").inc()
            else:
                await _write(response, frame.data, settings.write_timeout_s)
                STATS_WEB_EVENTS_SENT.labels(event="snapshot").inc()
                STATS_WEB_DELIVERY_LATENCY.observe(time.monotonic() - frame.arrived)
    except TimeoutError:
        reason = "write_timeout"
        # Drop the socket at once: finishing the response politely would wait on the same full buffer.
        if request.transport is not None:
            request.transport.abort()
    except ConnectionError:
        reason = "client_gone"  # the TV went away; nothing to report
    finally:
        hub.detach(mailbox)
        STATS_WEB_STREAMS_CLOSED.labels(reason=reason).inc()
    return response


async def _write(response: web.StreamResponse, data: bytes, timeout: float) -> None:
    # write() waits while the socket's buffer is full; a client that stays full that long is dead or stuck.
    async with asyncio.timeout(timeout):
        await response.write(data)


async def metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def health(request: web.Request) -> web.Response:
    """200 while the board subscription is live, else 503: an instance without it would show frozen figures,
    so a load balancer should send TVs elsewhere (liveness alone: any answer at all)."""
    hub = request.app[HUB]
    body = {"status": "ok" if hub.subscribed else "unsubscribed", "subscribed": hub.subscribed,
            "streams": hub.stream_count, "tenant": request.app[STORE].tenant}
    return web.json_response(body, status=200 if hub.subscribed else 503, headers=_NO_STORE)
