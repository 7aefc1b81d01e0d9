"""`/ari/applications` (applications.json) and `POST /ari/events/user/{eventName}` (events.json).

Messages follow res/ari/resource_applications.c and resource_events.c.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import AriError
from ..stasis import App
from .common import Params, no_content, ok, pbx_of

if TYPE_CHECKING:
    from ..pbx import Pbx

routes = web.RouteTableDef()
_A = "/ari/applications"


def _app(pbx: Pbx, name: str) -> App:
    app = pbx.router.get(name)
    if app is None or app not in pbx.router.listed():
        raise AriError(404, "Application not found")
    return app


@routes.get(_A)
async def list_apps(request: web.Request) -> web.Response:
    return ok([a.to_json() for a in pbx_of(request).router.listed()])


@routes.get(_A + "/{applicationName}")
async def get_app(request: web.Request) -> web.Response:
    return ok(_app(pbx_of(request), request.match_info["applicationName"]).to_json())


def _source(pbx: Pbx, source: str) -> tuple[str, str, bool]:
    """(kind, key, exists) of an event source URI; 400 for an unknown scheme."""
    scheme, _, rest = source.partition(":")
    if scheme == "channel":
        return "channel", rest, rest in pbx.channels
    if scheme == "bridge":
        return "bridge", rest, rest in pbx.bridges
    if scheme == "endpoint":
        tech, _, resource = rest.partition("/")
        if not resource:
            exists = any(ep.tech.lower() == tech.lower() for ep in pbx.endpoints.values())
            return "endpoint", tech, exists
        return "endpoint", rest, pbx.endpoint(tech, resource) is not None
    if scheme == "deviceState":
        return "deviceState", rest, bool(rest)
    raise AriError(400, "Invalid event source URI scheme")


async def _subscription(request: web.Request, delta: int) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    sources = p.values("eventSource")
    if not sources:
        raise AriError(400, "Missing parameter eventSource")
    app = _app(pbx, request.match_info["applicationName"])
    parsed = [_source(pbx, s) for s in sources]
    tables = {"channel": app.channels, "bridge": app.bridges, "endpoint": app.endpoints,
              "deviceState": app.devices}
    for kind, key, exists in parsed:
        if delta > 0 and not exists:
            raise AriError(422, "Event source does not exist")
        if delta < 0 and key not in tables[kind]:
            raise AriError(422, "Event source was not subscribed to")
    router = pbx.router
    for kind, key, _ in parsed:
        if kind == "channel":
            router.sub_channel(app.name, key, delta)
        elif kind == "bridge":
            router.sub_bridge(app.name, key, delta)
        elif kind == "endpoint":
            router.sub_endpoint(app.name, key, delta)
        else:
            router.sub_device(app.name, key, delta)
    return ok(app.to_json())


@routes.post(_A + "/{applicationName}/subscription")
async def subscribe(request: web.Request) -> web.Response:
    return await _subscription(request, +1)


@routes.delete(_A + "/{applicationName}/subscription")
async def unsubscribe(request: web.Request) -> web.Response:
    return await _subscription(request, -1)


def _filters(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(f, dict) and isinstance(f.get("type"), str)
                                              for f in value):
        raise AriError(400, "Invalid format definition")
    return value


@routes.put(_A + "/{applicationName}/eventFilter")
async def event_filter(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    app = _app(pbx, request.match_info["applicationName"])
    nested = p.body.get("filter")
    body: dict[str, Any] = nested if isinstance(nested, dict) else p.body
    unknown = set(body) - {"allowed", "disallowed"}
    if unknown:
        raise AriError(400, "Invalid format definition")
    app.set_filter(_filters(body, "allowed"), _filters(body, "disallowed"))
    return ok(app.to_json())


@routes.post("/ari/events/user/{eventName}")
async def user_event(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    application = p.text("application")
    if not application:
        raise AriError(400, "Missing parameter application")
    _app(pbx, application)
    ch = bridge = None
    for source in p.values("source"):
        kind, key, exists = _source(pbx, source)
        if not exists:
            raise AriError(422, "Event source was not found")
        if kind == "channel":
            ch = pbx.channels[key]
        elif kind == "bridge":
            bridge = pbx.bridges[key]
    variables = p.body.get("variables", {})
    if not isinstance(variables, dict):
        raise AriError(400, "Invalid userevnet data")
    pbx.events.channel_userevent(request.match_info["eventName"], application, variables, ch, bridge)
    return no_content()
