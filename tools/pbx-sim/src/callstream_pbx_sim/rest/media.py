"""`/ari/recordings` (recordings.json) and `/ari/playbacks` (playbacks.json).

Recording names may contain `/` (`rec/2026/abc`, a file under the recording spool directory); in a path they
must be encoded (`rec%2F2026%2Fabc`): like Asterisk's router, an unencoded `/` splits the path and finds
no resource (404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .. import audio
from ..errors import AriError
from ..model import Playback
from .common import Params, no_content, ok, pbx_of

routes = web.RouteTableDef()
_S = "/ari/recordings/stored"
_L = "/ari/recordings/live"


@routes.get(_S)
async def list_stored(request: web.Request) -> web.Response:
    return ok([r.snapshot() for r in pbx_of(request).stored_recordings.values()])


@routes.get(_S + "/{name}/file")
async def stored_file(request: web.Request) -> web.StreamResponse:
    rec = pbx_of(request).media.stored(request.match_info["name"])
    response = web.StreamResponse(headers={"Content-Type": audio.content_type(rec.format)})
    response.content_length = audio.total_size(rec.format, rec.duration)
    await response.prepare(request)
    for chunk in audio.stream(rec.format, rec.duration):
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.post(_S + "/{name}/copy")
async def copy_stored(request: web.Request) -> web.Response:
    p = await Params.of(request)
    rec = pbx_of(request).media.copy(request.match_info["name"], p.text("destinationRecordingName"))
    return ok(rec.snapshot())


@routes.get(_S + "/{name}")
async def get_stored(request: web.Request) -> web.Response:
    return ok(pbx_of(request).media.stored(request.match_info["name"]).snapshot())


@routes.delete(_S + "/{name}")
async def delete_stored(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    rec = pbx.media.stored(request.match_info["name"])
    del pbx.stored_recordings[rec.name]
    return no_content()


def _live_op(operation: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        pbx_of(request).media.rec_operation(request.match_info["name"], operation)
        return no_content()

    handler.__name__ = f"live_{operation}"
    return handler


routes.post(_L + "/{name}/stop")(_live_op("stop"))
routes.post(_L + "/{name}/pause")(_live_op("pause"))
routes.delete(_L + "/{name}/pause")(_live_op("unpause"))
routes.post(_L + "/{name}/mute")(_live_op("mute"))
routes.delete(_L + "/{name}/mute")(_live_op("unmute"))


@routes.get(_L + "/{name}")
async def get_live(request: web.Request) -> web.Response:
    return ok(pbx_of(request).media.live(request.match_info["name"]).snapshot())


routes.delete(_L + "/{name}")(_live_op("cancel"))


# --- playbacks ---------------------------------------------------------------------------------------

def _playback(request: web.Request) -> Playback:
    pb = pbx_of(request).playbacks.get(request.match_info["playbackId"])
    if pb is None:
        raise AriError(404, "Playback not found")
    return pb


@routes.get("/ari/playbacks/{playbackId}")
async def get_playback(request: web.Request) -> web.Response:
    return ok(_playback(request).snapshot())


@routes.delete("/ari/playbacks/{playbackId}")
async def stop_playback(request: web.Request) -> web.Response:
    pbx_of(request).media.stop(_playback(request))
    return no_content()


@routes.post("/ari/playbacks/{playbackId}/control")
async def control_playback(request: web.Request) -> web.Response:
    p = await Params.of(request)
    pb = _playback(request)
    operation = p.text("operation")
    if not operation:
        raise AriError(400, "Missing parameter operation")
    pbx_of(request).media.control(pb, operation)
    return no_content()
