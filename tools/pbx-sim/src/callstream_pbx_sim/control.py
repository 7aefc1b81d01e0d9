"""The control API under `/_sim/` (same credentials as ARI), for tests, demos and benchmarks.

Bodies are JSON and validated; an invalid body answers 400 `{"message": "<field>: <problem>"}`.
Documented endpoint by endpoint in docs/pbx-sim.md.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import firehose
from .config import DidConfig, OutcomeRule, format_validation_error
from .errors import AriError
from .model import Channel
from .rest.common import json_response, pbx_of

routes = web.RouteTableDef()

M = TypeVar("M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallIn(_Body):
    did: str = Field(min_length=1)
    caller_number: str = Field(min_length=1)
    caller_name: str = ""
    app: str | None = None
    args: list[str] | None = None
    patience_s: float | None = Field(default=None, ge=0)
    talk_s: float | None = Field(default=None, ge=0)
    hangup_by: Literal["caller", "agent"] | None = None


class HangupIn(_Body):
    cause: int = Field(default=16, ge=0, le=127)


class DtmfIn(_Body):
    digits: str = Field(pattern=r"^[0-9A-Da-d*#]+$")
    duration_ms: int = Field(default=100, ge=1, le=10_000)
    between_ms: int = Field(default=100, ge=0, le=10_000)


class HoldIn(_Body):
    musicclass: str | None = None


class BlindTransferIn(_Body):
    exten: str = Field(min_length=1)
    context: str = "from-internal"
    app: str | None = None


class AttendedTransferIn(_Body):
    other: str = Field(min_length=1)


class DropIn(_Body):
    app: str | None = None
    mode: Literal["abort", "close"] = "abort"


class RefuseIn(_Body):
    refuse: bool = True
    mode: Literal["503", "close"] = "503"


class OutcomesIn(_Body):
    rules: list[OutcomeRule]
    amd: bool | None = None


class TrafficIn(_Body):
    enabled: bool | None = None
    rate_scale: float | None = Field(default=None, ge=0)
    dids: list[DidConfig] | None = None


class RawFrameIn(_Body):
    text: str
    app: str | None = None


class FirehoseIn(_Body):
    count: int = Field(ge=1, le=100_000_000)
    app: str | None = None


async def _body(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        data: Any = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise AriError(400, "body: not valid JSON") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AriError(400, format_validation_error(exc)) from exc


def _channel(request: web.Request) -> Channel:
    ch = pbx_of(request).channel(request.match_info["channelId"])
    if ch is None:
        raise AriError(404, "Channel not found")
    return ch


@routes.get("/_sim")
async def index(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    return json_response({
        "pbx": pbx.name, "entity_id": pbx.entity_id, "app": pbx.default_app,
        "time_scale": pbx.clock.scale, "trunk": pbx.cfg.trunk,
        "endpoints": [ep.key for ep in pbx.endpoints.values()],
        "agents": [ep.resource for ep in pbx.endpoints.values() if ep.kind == "agent"],
        "supervisors": [ep.resource for ep in pbx.endpoints.values() if ep.kind == "supervisor"],
        "dids": [d.number for d in pbx.traffic.dids],
    })


@routes.post("/_sim/calls")
async def inject_call(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    body = await _body(request, CallIn)
    did_cfg = next((d for d in pbx.traffic.dids if d.number == body.did), None)
    rng = pbx.rng_calls
    patience = body.patience_s
    talk = body.talk_s
    if did_cfg is not None:
        patience = patience if patience is not None else did_cfg.patience_s.sample(rng)
        talk = talk if talk is not None else did_cfg.talk_s.sample(rng)
    hangup_by = body.hangup_by or (did_cfg.hangup_by if did_cfg is not None else "caller")
    app = body.app or (did_cfg.app if did_cfg is not None and did_cfg.app else pbx.default_app)
    args = body.args if body.args is not None else ["inbound", body.did]
    pbx.counters.calls_injected += 1
    ch, in_stasis = pbx.world.inbound_call(
        did=body.did, caller_number=body.caller_number, caller_name=body.caller_name, app=app, args=args,
        patience_s=patience, talk_s=talk, hangup_by=hangup_by,
    )
    return json_response({"channel_id": ch.id, "name": ch.name, "app": app, "args": args,
                          "stasis": in_stasis}, status=201)


@routes.put("/_sim/endpoints/{tech}/{resource}")
async def set_endpoint(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    ep = pbx.endpoint(request.match_info["tech"], request.match_info["resource"])
    if ep is None or ep.kind == "trunk":
        raise AriError(404, "Endpoint not found")
    raw = await request.read()
    try:
        patch = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise AriError(400, "body: not valid JSON") from exc
    if not isinstance(patch, dict):
        raise AriError(400, "body: must be an object")
    try:
        pbx.world.set_behaviour(ep, patch)
    except ValidationError as exc:
        raise AriError(400, format_validation_error(exc)) from exc
    return json_response({"endpoint": ep.snapshot(), "behaviour": ep.behaviour.model_dump(mode="json"),
                          "device_state": pbx.world.device_state(ep)})


@routes.post("/_sim/channels/{channelId}/hangup")
async def far_hangup(request: web.Request) -> web.Response:
    ch = _channel(request)
    body = await _body(request, HangupIn)
    pbx_of(request).world.far_hangup(ch, body.cause)
    return web.Response(status=204)


@routes.post("/_sim/channels/{channelId}/answer")
async def far_answer(request: web.Request) -> web.Response:
    ch = _channel(request)
    if not ch.dialing:
        raise AriError(409, "Channel is not being dialled")
    pbx_of(request).dialer.answer_now(ch)
    return web.Response(status=204)


@routes.post("/_sim/channels/{channelId}/dtmf")
async def far_dtmf(request: web.Request) -> web.Response:
    ch = _channel(request)
    body = await _body(request, DtmfIn)
    pbx_of(request).world.dtmf(ch, body.digits.upper(), body.duration_ms, body.between_ms)
    return web.Response(status=204)


@routes.post("/_sim/channels/{channelId}/hold")
async def far_hold(request: web.Request) -> web.Response:
    ch = _channel(request)
    body = await _body(request, HoldIn)
    pbx_of(request).world.hold(ch, body.musicclass)
    return web.Response(status=204)


@routes.post("/_sim/channels/{channelId}/unhold")
async def far_unhold(request: web.Request) -> web.Response:
    pbx_of(request).world.unhold(_channel(request))
    return web.Response(status=204)


@routes.post("/_sim/channels/{channelId}/blind_transfer")
async def blind_transfer(request: web.Request) -> web.Response:
    ch = _channel(request)
    body = await _body(request, BlindTransferIn)
    result = pbx_of(request).transfers.blind(ch, body.exten, body.context, body.app)
    return json_response(result)


@routes.post("/_sim/channels/{channelId}/attended_transfer")
async def attended_transfer(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    ch = _channel(request)
    body = await _body(request, AttendedTransferIn)
    other = pbx.channel(body.other)
    if other is None:
        raise AriError(404, "Channel not found")
    return json_response(pbx.transfers.attended(ch, other))


@routes.post("/_sim/websocket/drop")
async def drop_websockets(request: web.Request) -> web.Response:
    body = await _body(request, DropIn)
    dropped = pbx_of(request).sessions.drop(body.app, body.mode)
    return json_response({"dropped": dropped})


@routes.put("/_sim/websocket/refuse")
async def refuse_websockets(request: web.Request) -> web.Response:
    sessions = pbx_of(request).sessions
    body = await _body(request, RefuseIn)
    sessions.refuse = body.refuse
    sessions.refuse_mode = body.mode
    return json_response({"refuse": sessions.refuse, "mode": sessions.refuse_mode})


@routes.post("/_sim/websocket/raw")
async def send_raw_frame(request: web.Request) -> web.Response:
    """A text frame sent as is to the app's event WebSockets, for testing clients against garbage (a broken
    proxy, a truncated message): Asterisk itself never sends one. Not counted as an event."""
    pbx = pbx_of(request)
    body = await _body(request, RawFrameIn)
    name = body.app or pbx.default_app
    targets = [c for c in pbx.sessions.clients if name in c.apps]
    for client in targets:
        client.send(body.text.encode())
    return json_response({"sent": len(targets), "app": name})


@routes.get("/_sim/outcomes")
async def get_outcomes(request: web.Request) -> web.Response:
    dialer = pbx_of(request).dialer
    return json_response({"rules": [r.model_dump(mode="json") for r in dialer.outcomes], "amd": dialer.amd})


@routes.put("/_sim/outcomes")
async def set_outcomes(request: web.Request) -> web.Response:
    dialer = pbx_of(request).dialer
    body = await _body(request, OutcomesIn)
    dialer.outcomes = list(body.rules)
    if body.amd is not None:
        dialer.amd = body.amd
    return json_response({"rules": [r.model_dump(mode="json") for r in dialer.outcomes], "amd": dialer.amd})


@routes.get("/_sim/traffic")
async def get_traffic(request: web.Request) -> web.Response:
    return json_response(pbx_of(request).traffic.to_json())


@routes.put("/_sim/traffic")
async def set_traffic(request: web.Request) -> web.Response:
    traffic = pbx_of(request).traffic
    body = await _body(request, TrafficIn)
    traffic.configure(enabled=body.enabled, rate_scale=body.rate_scale, dids=body.dids)
    return json_response(traffic.to_json())


@routes.post("/_sim/firehose")
async def run_firehose(request: web.Request) -> web.Response:
    body = await _body(request, FirehoseIn)
    result = await firehose.run(pbx_of(request), body.count, body.app)
    return json_response(result, status=200 if result.get("sent") else 409)


@routes.get("/_sim/requests")
async def requests_log(request: web.Request) -> web.Response:
    log = pbx_of(request).requests
    try:
        since = int(request.query.get("since", "0"))
        limit = int(request.query.get("limit", "10000"))
    except ValueError as exc:
        raise AriError(400, "since, limit: must be integers") from exc
    items = log.since(since, limit)
    return json_response({"next": items[-1]["seq"] if items else since, "total": log.total, "requests": items})


@routes.get("/_sim/stasis_starts")
async def stasis_starts_log(request: web.Request) -> web.Response:
    """When each StasisStart was written to its app's WebSocket (epoch seconds, the clock of /_sim/requests)."""
    log = pbx_of(request).stasis_starts
    try:
        since = int(request.query.get("since", "0"))
        limit = int(request.query.get("limit", "10000"))
    except ValueError as exc:
        raise AriError(400, "since, limit: must be integers") from exc
    items = log.since(since, limit)
    return json_response({"next": items[-1]["seq"] if items else since, "total": log.total,
                          "stasis_starts": items})


@routes.get("/_sim/counters")
async def counters(request: web.Request) -> web.Response:
    return json_response(pbx_of(request).counters_json())
