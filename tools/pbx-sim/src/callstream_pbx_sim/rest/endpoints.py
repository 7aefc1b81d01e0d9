"""`/ari/endpoints` (endpoints.json) and `/ari/deviceStates` (deviceStates.json).

Only `Stasis:` device states are controlled by ARI (res_stasis_device_state.c); the states of the PJSIP
phones are read-only and follow their registration and calls.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import AriError
from .common import Params, no_content, ok, pbx_of

routes = web.RouteTableDef()

DEVICE_STATES = ("NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING", "RINGINUSE", "ONHOLD")


@routes.get("/ari/endpoints")
async def list_endpoints(request: web.Request) -> web.Response:
    return ok([ep.snapshot() for ep in pbx_of(request).endpoints.values()])


@routes.get("/ari/endpoints/{tech}")
async def list_by_tech(request: web.Request) -> web.Response:
    tech = request.match_info["tech"]
    eps = [ep.snapshot() for ep in pbx_of(request).endpoints.values() if ep.tech.lower() == tech.lower()]
    if not eps:
        raise AriError(404, f"No Endpoints found - invalid tech {tech}")
    return ok(eps)


@routes.get("/ari/endpoints/{tech}/{resource}")
async def get_endpoint(request: web.Request) -> web.Response:
    ep = pbx_of(request).endpoint(request.match_info["tech"], request.match_info["resource"])
    if ep is None:
        raise AriError(404, "Endpoint not found")
    return ok(ep.snapshot())


@routes.get("/ari/deviceStates")
async def list_device_states(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    return ok([{"name": n, "state": s} for n, s in pbx.device_states.items()])


@routes.get("/ari/deviceStates/{deviceName}")
async def get_device_state(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    name = request.match_info["deviceName"]
    if name.startswith("Stasis:"):
        state = pbx.device_states.get(name, "UNKNOWN")
    else:
        state = pbx.world.known_device_state(name) or "INVALID"
    return ok({"name": name, "state": state})


def _controlled(name: str) -> str:
    if not name.startswith("Stasis:") or len(name) <= len("Stasis:"):
        raise AriError(409, "Uncontrolled device specified")
    return name


@routes.put("/ari/deviceStates/{deviceName}")
async def update_device_state(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    name = _controlled(request.match_info["deviceName"])
    state = p.text("deviceState")
    if state not in DEVICE_STATES:
        raise AriError(400, "Invalid device state")
    if pbx.device_states.get(name) != state:
        pbx.device_states[name] = state
        pbx.events.device_state_changed(name, state)
    return no_content()


@routes.delete("/ari/deviceStates/{deviceName}")
async def delete_device_state(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    name = _controlled(request.match_info["deviceName"])
    if name not in pbx.device_states:
        raise AriError(404, "Device not found")
    del pbx.device_states[name]
    pbx.events.device_state_changed(name, "UNKNOWN")
    return no_content()
