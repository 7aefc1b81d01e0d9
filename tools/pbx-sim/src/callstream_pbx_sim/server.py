"""HTTP plumbing: one aiohttp application per simulated PBX, and the runner that serves them all.

Middlewares, outermost first:
1. request log: every `/ari` request (method, path, parameters with `api_key` redacted, arrival time,
   status, duration) for `GET /_sim/requests`;
2. authentication (res_ari.c authenticate_user): HTTP Basic if the header is there, else `?api_key=user:pass`;
   401 `{"message": "Authentication required"}` with a `WWW-Authenticate` challenge otherwise;
3. errors: AriError bodies, and Asterisk's 404 / 405 messages for unknown paths and methods.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import control, rest
from .config import PbxConfig, SiteConfig
from .errors import AriError
from .pbx import Pbx
from .keys import PBX
from .rest.common import PARAMS_KEY, Params, json_response
from .ws import events_websocket

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REALM = "Asterisk REST Interface"


def _credentials_ok(request: web.Request, user: str, password: str) -> bool:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        got_user, sep, got_password = decoded.partition(":")
    else:
        key = request.query.get("api_key")
        if key is None:
            return False
        got_user, sep, got_password = key.partition(":")
    if not sep:
        return False
    return hmac.compare_digest(got_user, user) and hmac.compare_digest(got_password, password)


def build_app(pbx: Pbx) -> web.Application:
    site = pbx.site

    @web.middleware
    async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/ari"):
            return await handler(request)
        arrived = time.time()
        t0 = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            params = request.get(PARAMS_KEY)
            if isinstance(params, Params):
                logged = params.loggable()
            else:
                logged = {k: ("***" if k == "api_key" else v) for k, v in request.query.items()}
            pbx.requests.add({
                "method": request.method, "path": request.path, "params": logged, "time": arrived,
                "status": status, "duration_ms": round((time.perf_counter() - t0) * 1000.0, 3),
            })

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(("/ari", "/_sim")) and not _credentials_ok(request, site.user, site.password):
            return json_response({"message": "Authentication required"}, status=401,
                                 headers={"WWW-Authenticate": f'Basic realm="{REALM}"'})
        return await handler(request)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/ari/") and path.endswith("/") and len(path) > 5:
            return json_response({"message": f"ARI URLs do not end with a slash. Try /ari/{path[5:-1]}"},
                                 status=404)
        try:
            return await handler(request)
        except AriError as exc:
            return json_response(exc.body(), status=exc.status)
        except web.HTTPMethodNotAllowed as exc:
            return json_response({"message": "Invalid method"}, status=405,
                                 headers={"Allow": ",".join(sorted(exc.allowed_methods))})
        except web.HTTPNotFound:
            return json_response({"message": "Resource not found"}, status=404)

    app = web.Application(middlewares=[request_log, authenticate, errors], client_max_size=16 * 1024 * 1024)
    app[PBX] = pbx
    app.router.add_get("/ari/events", events_websocket)
    rest.add_routes(app)
    app.router.add_routes(control.routes)

    async def server_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = f"Asterisk/{site.asterisk_version}"
        response.headers.setdefault("Cache-Control", "no-cache, no-store")

    app.on_response_prepare.append(server_header)
    return app


class Simulator:
    """Every PBX of a site, each on its own port, in one process and one event loop."""

    def __init__(self, site: SiteConfig) -> None:
        self.site = site
        self.pbxs: list[Pbx] = []
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for cfg in self.site.pbx_list():
            await self._start_one(cfg, loop)

    async def _start_one(self, cfg: PbxConfig, loop: asyncio.AbstractEventLoop) -> None:
        pbx = Pbx(self.site, cfg, loop)
        app = build_app(pbx)
        # No aiohttp access log: it would print request lines, and `api_key` travels in the query string.
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host = cfg.host or self.site.host
        tcp = web.TCPSite(runner, host, cfg.port, reuse_address=True)
        await tcp.start()
        port = cfg.port
        if port == 0:
            # An ephemeral port was asked for: read the one the listening socket got.
            sockets = getattr(tcp._server, "sockets", None) or []  # noqa: SLF001
            if sockets:
                port = int(sockets[0].getsockname()[1])
        self.ports[pbx.name] = port
        self.pbxs.append(pbx)
        self._runners.append(runner)
        pbx.start()
        log.info("PBX %s listening on %s:%d (entity id %s, app %s, %d endpoints, %d DIDs, time scale %g)",
                 pbx.name, host, port, pbx.entity_id, pbx.default_app, len(pbx.endpoints),
                 len(pbx.traffic.dids), pbx.clock.scale)

    async def stop(self) -> None:
        for pbx in self.pbxs:
            await pbx.stop()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        log.info("simulator stopped")
