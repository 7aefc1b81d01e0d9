"""`/ari/bridges` (bridges.json). Checks and messages follow res/ari/resource_bridges.c."""

from __future__ import annotations

from aiohttp import web

from ..dialing import KNOWN_FORMATS
from ..errors import AriError
from ..model import Bridge, Channel
from .common import Params, created, no_content, ok, pbx_of

routes = web.RouteTableDef()
_B = "/ari/bridges"


@routes.get(_B)
async def list_bridges(request: web.Request) -> web.Response:
    return ok([b.snapshot() for b in pbx_of(request).bridges.values()])


async def _create(request: web.Request, bridge_id: str | None) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    bid = bridge_id if bridge_id is not None else p.text("bridgeId")
    variables = p.variables("Each object value in 'variables' must include string field 'value'")
    bridge = pbx.bridging.create(bid, p.text("type"), p.text("name"))
    for name, value, report in variables:
        bridge.variables[name] = value
        if report and name not in bridge.reported:
            bridge.reported.append(name)
    return ok(bridge.snapshot())


@routes.post(_B)
async def create(request: web.Request) -> web.Response:
    return await _create(request, None)


@routes.get(_B + "/{bridgeId}")
async def get_bridge(request: web.Request) -> web.Response:
    return ok(pbx_of(request).stasis_bridge(request.match_info["bridgeId"]).snapshot())


@routes.post(_B + "/{bridgeId}")
async def create_with_id(request: web.Request) -> web.Response:
    return await _create(request, request.match_info["bridgeId"])


@routes.delete(_B + "/{bridgeId}")
async def destroy(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    pbx.bridging.destroy(pbx.stasis_bridge(request.match_info["bridgeId"]))
    return no_content()


def _channels(request: web.Request, p: Params) -> list[Channel]:
    """control_list_create(): 400 for no or unknown channels, 422 for channels not in Stasis."""
    pbx = pbx_of(request)
    ids = p.values("channel")
    if not ids:
        raise AriError(400, "Missing parameter channel")
    out = []
    for cid in ids:
        ch = pbx.channel(cid)
        if ch is None:
            raise AriError(400, "Channel not found")
        if ch.stasis_app is None:
            raise AriError(422, "Channel not in Stasis application")
        out.append(ch)
    return out


@routes.post(_B + "/{bridgeId}/addChannel")
async def add_channel(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    bridge = pbx.stasis_bridge(request.match_info["bridgeId"])
    pbx.bridging.add(bridge, _channels(request, p), p.text("role"))
    return no_content()


@routes.post(_B + "/{bridgeId}/removeChannel")
async def remove_channel(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    bridge = pbx.stasis_bridge(request.match_info["bridgeId"])
    pbx.bridging.remove(bridge, _channels(request, p))
    return no_content()


@routes.post(_B + "/{bridgeId}/moh")
async def start_moh(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    bridge = pbx.stasis_bridge(request.match_info["bridgeId"])
    bridge.moh_class = p.text("mohClass") or "default"
    return no_content()


@routes.delete(_B + "/{bridgeId}/moh")
async def stop_moh(request: web.Request) -> web.Response:
    bridge = pbx_of(request).stasis_bridge(request.match_info["bridgeId"])
    if bridge.moh_class is None:
        raise AriError(409, "Bridge isn't playing music")
    bridge.moh_class = None
    return no_content()


async def _play(request: web.Request, playback_id: str | None) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    bridge: Bridge = pbx.stasis_bridge(request.match_info["bridgeId"])
    media = p.values("media")
    if not media:
        raise AriError(400, "Missing parameter media")
    fmt = p.text("announcer_format")
    if fmt and fmt not in KNOWN_FORMATS:
        raise AriError(422, "specified announcer_format is unknown on this system")
    pid = playback_id if playback_id is not None else p.text("playbackId")
    pb = pbx.media.play(bridge, media, p.text("lang") or "en", pid, p.integer("skipms", 3000))
    return created(pb.snapshot(), f"/playbacks/{pb.id}")


@routes.post(_B + "/{bridgeId}/play")
async def play(request: web.Request) -> web.Response:
    return await _play(request, None)


@routes.post(_B + "/{bridgeId}/play/{playbackId}")
async def play_with_id(request: web.Request) -> web.Response:
    return await _play(request, request.match_info["playbackId"])


@routes.post(_B + "/{bridgeId}/record")
async def record(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    bridge = pbx.stasis_bridge(request.match_info["bridgeId"])
    fmt = p.text("format")
    recorder_format = p.text("recorder_format")
    if recorder_format and recorder_format not in KNOWN_FORMATS:
        raise AriError(422, "specified recorder_format is unknown on this system")
    rec = pbx.media.record(
        bridge, name=p.text("name"), fmt=fmt, max_duration=p.integer("maxDurationSeconds", 0),
        max_silence=p.integer("maxSilenceSeconds", 0), if_exists=p.text("ifExists") or "fail", beep=p.flag("beep"),
        terminate_on=p.text("terminateOn") or "none",
    )
    return created(rec.snapshot(), f"/recordings/live/{rec.name}")
