"""`/ari/channels` (channels.json). Checks, their order and messages follow res/ari/resource_channels.c."""

from __future__ import annotations

from aiohttp import web

from ..dialing import OriginateRequest, split_args
from ..errors import AriError
from ..model import HANGUP_REASONS, Channel
from .common import Params, created, no_content, ok, pbx_of

routes = web.RouteTableDef()
_C = "/ari/channels"


def _snap(request: web.Request, ch: Channel) -> dict[str, object]:
    return pbx_of(request).events.snap(ch)


@routes.get(_C)
async def list_channels(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    return ok([pbx.events.snap(ch) for ch in pbx.channels.values()])


async def _originate(request: web.Request, channel_id: str | None) -> web.Response:
    p = await Params.of(request)
    req = OriginateRequest(
        endpoint=p.text("endpoint"), app=p.text("app"), app_args=p.text("appArgs"), extension=p.text("extension"),
        context=p.text("context"), priority=p.integer("priority", 0), label=p.text("label"),
        caller_id=p.text("callerId"), timeout=p.integer("timeout", 30), variables=p.variables(),
        channel_id=channel_id if channel_id is not None else p.text("channelId"),
        other_channel_id=p.text("otherChannelId"), originator=p.text("originator"), formats=p.text("formats"),
    )
    ch = pbx_of(request).dialer.originate(req)
    return ok(_snap(request, ch))


@routes.post(_C)
async def originate(request: web.Request) -> web.Response:
    return await _originate(request, None)


@routes.post(_C + "/create")
async def create(request: web.Request) -> web.Response:
    p = await Params.of(request)
    ch = pbx_of(request).dialer.create(
        endpoint=p.text("endpoint"), app=p.text("app"), app_args=p.text("appArgs"), channel_id=p.text("channelId"),
        other_channel_id=p.text("otherChannelId"), originator=p.text("originator"), formats=p.text("formats"),
        variables=p.variables(),
    )
    return ok(_snap(request, ch))


@routes.get(_C + "/{channelId}")
async def get_channel(request: web.Request) -> web.Response:
    ch = pbx_of(request).channel(request.match_info["channelId"])
    if ch is None:
        raise AriError(404, "Channel not found")
    return ok(_snap(request, ch))


@routes.post(_C + "/{channelId}")
async def originate_with_id(request: web.Request) -> web.Response:
    return await _originate(request, request.match_info["channelId"])


@routes.delete(_C + "/{channelId}")
async def hangup(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    ch = pbx.channel(request.match_info["channelId"])
    if ch is None:
        raise AriError(404, "Channel not found")
    reason, code = p.text("reason"), p.text("reason_code")
    if reason and code:
        raise AriError(400, "The reason and reason_code can't both be specified")
    if code:
        try:
            cause = int(code.strip())
        except ValueError as exc:
            raise AriError(400, "Invalid reason for hangup reason code provided") from exc
    elif reason:
        if reason not in HANGUP_REASONS:
            raise AriError(400, "Invalid reason for hangup reason provided")
        cause = HANGUP_REASONS[reason]
    else:
        cause = 16
    pbx.lifecycle.request_hangup(ch, cause)
    return no_content()


def _controlled(request: web.Request, state_check: bool = True) -> Channel:
    pbx = pbx_of(request)
    ch = pbx.control(request.match_info["channelId"])
    if state_check:
        pbx.check_state(ch)
    return ch


@routes.post(_C + "/{channelId}/continue")
async def continue_in_dialplan(request: web.Request) -> web.Response:
    p = await Params.of(request)
    ch = _controlled(request)
    context_param, exten_param = p.text("context"), p.text("extension")
    if not context_param:
        context, exten = ch.context, exten_param or ch.exten
    else:
        context, exten = context_param, exten_param or "s"
    label, priority = p.text("label"), p.integer("priority", 0)
    if label:
        try:
            ipri = int(label)
        except ValueError as exc:
            raise AriError(404, "Requested label can not be found") from exc
        if ipri == 0:
            raise AriError(400, "Requested priority is illegal")
    elif priority:
        ipri = priority
    elif not context_param and not exten_param:
        ipri = ch.priority + 1
    else:
        ipri = 1
    pbx_of(request).lifecycle.continue_in_dialplan(ch, context, exten, ipri)
    return no_content()


@routes.post(_C + "/{channelId}/move")
async def move(request: web.Request) -> web.Response:
    p = await Params.of(request)
    ch = _controlled(request, state_check=False)
    app = p.text("app")
    if not app:
        raise AriError(400, "Missing parameter app")
    pbx_of(request).lifecycle.move(ch, app, split_args(p.text("appArgs")))
    return no_content()


@routes.post(_C + "/{channelId}/redirect")
async def redirect(request: web.Request) -> web.Response:
    p = await Params.of(request)
    ch = _controlled(request)
    endpoint = p.text("endpoint")
    if not endpoint:
        raise AriError(400, "Required parameter 'endpoint' not provided.")
    tech, slash, resource = endpoint.partition("/")
    if not slash or not tech:
        raise AriError(422, f"Endpoint parameter '{endpoint}' does not contain tech/resource")
    if not resource:
        raise AriError(422, f"No resource provided in endpoint parameter '{endpoint}'")
    if tech.lower() != ch.tech.lower():
        raise AriError(422, f"Endpoint technology '{tech}' does not match channel technology '{ch.tech}'")
    # A 302 (unanswered) or a REFER (answered) to the far end, which then drops this call.
    pbx = pbx_of(request)
    ch.timers["redirect"] = pbx.clock.call_later(0.2, pbx.world.far_hangup, ch, 16)
    return no_content()


@routes.post(_C + "/{channelId}/answer")
async def answer(request: web.Request) -> web.Response:
    ch = _controlled(request)
    pbx_of(request).lifecycle.answer(ch)
    return no_content()


def _simple(path: str, method: str, state_check: bool = True) -> None:
    async def handler(request: web.Request) -> web.Response:
        _controlled(request, state_check)
        return no_content()

    handler.__name__ = f"{method.lower()}_{path.strip('/').replace('/', '_')}"
    routes.route(method, _C + "/{channelId}/" + path)(handler)


# Indications and media the far end would hear: accepted, with no ARI event (hold/unhold here is the
# indication *to* the far end; ChannelHold/ChannelUnhold are for holds the far end initiates).
for _path, _method in (("ring", "POST"), ("ring", "DELETE"), ("progress", "POST"), ("hold", "POST"),
                       ("hold", "DELETE"), ("moh", "DELETE"), ("silence", "POST"), ("silence", "DELETE")):
    _simple(_path, _method)


@routes.post(_C + "/{channelId}/moh")
async def start_moh(request: web.Request) -> web.Response:
    await Params.of(request)
    _controlled(request)
    return no_content()


@routes.post(_C + "/{channelId}/dtmf")
async def send_dtmf(request: web.Request) -> web.Response:
    p = await Params.of(request)
    _controlled(request)
    if not p.text("dtmf"):
        raise AriError(400, "DTMF is required")
    return no_content()


async def _mute(request: web.Request) -> web.Response:
    p = await Params.of(request)
    _controlled(request)
    direction = p.text("direction", "both")
    if not direction:
        raise AriError(400, "Direction is required")
    if direction not in ("in", "out", "both"):
        raise AriError(400, "Invalid direction specified")
    return no_content()


routes.post(_C + "/{channelId}/mute")(_mute)
routes.delete(_C + "/{channelId}/mute")(_mute)


async def _play(request: web.Request, playback_id: str | None) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    ch = _controlled(request)
    media = p.values("media")
    if not media:
        raise AriError(400, "Missing parameter media")
    skipms, offsetms = p.integer("skipms", 3000), p.integer("offsetms", 0)
    if skipms < 0:
        raise AriError(400, "skipms cannot be negative")
    if offsetms < 0:
        raise AriError(400, "offsetms cannot be negative")
    pid = playback_id if playback_id is not None else p.text("playbackId")
    pb = pbx.media.play(ch, media, p.text("lang") or ch.language, pid, skipms)
    return created(pb.snapshot(), f"/playbacks/{pb.id}")


@routes.post(_C + "/{channelId}/play")
async def play(request: web.Request) -> web.Response:
    return await _play(request, None)


@routes.post(_C + "/{channelId}/play/{playbackId}")
async def play_with_id(request: web.Request) -> web.Response:
    return await _play(request, request.match_info["playbackId"])


@routes.post(_C + "/{channelId}/record")
async def record(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    max_duration, max_silence = p.integer("maxDurationSeconds", 0), p.integer("maxSilenceSeconds", 0)
    if max_duration < 0:
        raise AriError(400, "max_duration_seconds cannot be negative")
    if max_silence < 0:
        raise AriError(400, "max_silence_seconds cannot be negative")
    ch = pbx.control(request.match_info["channelId"])
    rec = pbx.media.record(
        ch, name=p.text("name"), fmt=p.text("format"), max_duration=max_duration, max_silence=max_silence,
        if_exists=p.text("ifExists") or "fail", beep=p.flag("beep"), terminate_on=p.text("terminateOn") or "none",
    )
    return created(rec.snapshot(), f"/recordings/live/{rec.name}")


@routes.get(_C + "/{channelId}/variable")
async def get_variable(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    name = p.text("variable")
    if not name:
        raise AriError(400, "Variable name is required")
    ch = pbx.channel(request.match_info["channelId"])
    if ch is None:
        raise AriError(404, "Provided channel was not found")
    value = pbx.lifecycle.get_var(ch, name)
    if value is None:
        raise AriError(404, "Provided variable was not found")
    return ok({"value": value})


@routes.post(_C + "/{channelId}/variable")
async def set_variable(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    name = p.text("variable")
    if not name:
        raise AriError(400, "Variable name is required")
    ch = pbx.control(request.match_info["channelId"])
    pbx.lifecycle.set_var(ch, name, p.text("value", "") or "", p.flag("report_events"))
    return no_content()


async def _snoop(request: web.Request, snoop_id: str | None) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    directions = ("none", "both", "out", "in")
    spy, whisper = p.text("spy") or "none", p.text("whisper") or "none"
    if spy not in directions:
        raise AriError(400, "Invalid direction specified for spy")
    if whisper not in directions:
        raise AriError(400, "Invalid direction specified for whisper")
    if spy == "none" and whisper == "none":
        raise AriError(400, "Direction must be specified for at least spy or whisper")
    app = p.text("app")
    if not app:
        raise AriError(400, "Application name is required")
    target = pbx.channel(request.match_info["channelId"])
    if target is None:
        raise AriError(404, "Provided channel was not found")
    sid = snoop_id if snoop_id is not None else p.text("snoopId")
    pbx.check_id(sid)
    snoop = pbx.lifecycle.snoop(target, app, split_args(p.text("appArgs")), sid)
    return ok(_snap(request, snoop))


@routes.post(_C + "/{channelId}/snoop")
async def snoop_channel(request: web.Request) -> web.Response:
    return await _snoop(request, None)


@routes.post(_C + "/{channelId}/snoop/{snoopId}")
async def snoop_channel_with_id(request: web.Request) -> web.Response:
    return await _snoop(request, request.match_info["snoopId"])


@routes.post(_C + "/{channelId}/dial")
async def dial(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    ch = pbx.channel(request.match_info["channelId"])
    if ch is None:
        raise AriError(404, "Channel not found")
    if ch.stasis_app is None:
        raise AriError(409, "Channel not in Stasis application")
    pbx.dialer.dial(ch, p.text("caller"), p.integer("timeout", 0))
    return no_content()
