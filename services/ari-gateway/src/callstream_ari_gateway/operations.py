"""Pure translation of a command's operation into the ARI REST request that performs it.

No I/O here: `to_request` is unit-tested for every operation against Asterisk's paths and parameter names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from callstream_common.messages import commands as c


@dataclass(frozen=True)
class AriRequest:
    method: str
    path: str  # below the ARI base URL, e.g. "/channels/123/answer"
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


def _id(value: str) -> str:
    return quote(value, safe="")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _drop_none(params: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in params.items() if v is not None}


def _media_target(channel_id: str | None, bridge_id: str | None) -> str:
    if (channel_id is None) == (bridge_id is None):
        raise ValueError("exactly one of channel_id and bridge_id is required")
    return f"/channels/{_id(channel_id)}" if channel_id is not None else f"/bridges/{_id(bridge_id or '')}"


def ordering_key(command: c.AriCommand) -> str:
    """Commands with the same key run one after another, in the order they were received."""
    if command.ordering_key:
        return command.ordering_key
    op = command.operation
    for name in ("channel_id", "bridge_id", "playback_id", "name", "snoop_id"):
        value = getattr(op, name, None)
        if value:
            return f"{name}:{value}"
    return f"command:{command.command_id}"


def to_request(op: c.Operation) -> AriRequest:  # noqa: C901 - one branch per operation is the clearest form
    match op:
        case c.Originate():
            body = {"variables": op.variables} if op.variables else None
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}", _drop_none({
                "endpoint": op.endpoint, "app": op.app, "appArgs": op.app_args, "callerId": op.caller_id,
                "timeout": op.timeout_s, "otherChannelId": op.other_channel_id, "originator": op.originator,
                "formats": op.formats}), body)
        case c.CreateChannel():
            body = {"variables": op.variables} if op.variables else None
            return AriRequest("POST", "/channels/create", _drop_none({
                "endpoint": op.endpoint, "app": op.app, "appArgs": op.app_args, "channelId": op.channel_id,
                "otherChannelId": op.other_channel_id, "originator": op.originator, "formats": op.formats}), body)
        case c.Dial():
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}/dial",
                              _drop_none({"caller": op.caller, "timeout": op.timeout_s}))
        case c.Answer():
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}/answer")
        case c.Ring():
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}/ring")
        case c.RingStop():
            return AriRequest("DELETE", f"/channels/{_id(op.channel_id)}/ring")
        case c.Hangup():
            return AriRequest("DELETE", f"/channels/{_id(op.channel_id)}", {"reason": op.reason})
        case c.Continue():
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}/continue", _drop_none({
                "context": op.context, "extension": op.extension, "priority": op.priority, "label": op.label}))
        case c.Redirect():
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}/redirect", {"endpoint": op.endpoint})
        case c.Hold():
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}/hold")
        case c.Unhold():
            return AriRequest("DELETE", f"/channels/{_id(op.channel_id)}/hold")
        case c.Mute():
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}/mute", {"direction": op.direction})
        case c.Unmute():
            return AriRequest("DELETE", f"/channels/{_id(op.channel_id)}/mute", {"direction": op.direction})
        case c.MohStart():
            return AriRequest("POST", f"{_media_target(op.channel_id, op.bridge_id)}/moh",
                              _drop_none({"mohClass": op.moh_class}))
        case c.MohStop():
            return AriRequest("DELETE", f"{_media_target(op.channel_id, op.bridge_id)}/moh")
        case c.Play():
            # ARI takes `media` repeated or comma-separated; a comma list keeps params a flat mapping.
            return AriRequest("POST", f"{_media_target(op.channel_id, op.bridge_id)}/play/{_id(op.playback_id)}",
                              _drop_none({"media": ",".join(op.media), "lang": op.lang}))
        case c.StopPlayback():
            return AriRequest("DELETE", f"/playbacks/{_id(op.playback_id)}")
        case c.RecordChannel() | c.RecordBridge():
            target = f"/channels/{_id(op.channel_id)}" if isinstance(op, c.RecordChannel) \
                else f"/bridges/{_id(op.bridge_id)}"
            return AriRequest("POST", f"{target}/record", {
                "name": op.name, "format": op.format, "maxDurationSeconds": str(op.max_duration_s),
                "maxSilenceSeconds": str(op.max_silence_s), "ifExists": op.if_exists, "beep": _flag(op.beep),
                "terminateOn": op.terminate_on})
        case c.RecordingControl():
            live = f"/recordings/live/{_id(op.name)}"
            return {
                "recording_stop": AriRequest("POST", f"{live}/stop"),
                "recording_discard": AriRequest("DELETE", live),
                "recording_pause": AriRequest("POST", f"{live}/pause"),
                "recording_unpause": AriRequest("DELETE", f"{live}/pause"),
                "recording_mute": AriRequest("POST", f"{live}/mute"),
                "recording_unmute": AriRequest("DELETE", f"{live}/mute"),
            }[op.op]
        case c.Snoop():
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}/snoop/{_id(op.snoop_id)}", _drop_none({
                "app": op.app, "appArgs": op.app_args, "spy": op.spy, "whisper": op.whisper}))
        case c.BridgeCreate():
            return AriRequest("POST", f"/bridges/{_id(op.bridge_id)}",
                              _drop_none({"type": op.bridge_type, "name": op.name}))
        case c.BridgeDestroy():
            return AriRequest("DELETE", f"/bridges/{_id(op.bridge_id)}")
        case c.BridgeAddChannel():
            return AriRequest("POST", f"/bridges/{_id(op.bridge_id)}/addChannel", _drop_none({
                "channel": ",".join(op.channel_ids), "role": op.role, "mute": _flag(op.mute) if op.mute else None}))
        case c.BridgeRemoveChannel():
            return AriRequest("POST", f"/bridges/{_id(op.bridge_id)}/removeChannel",
                              {"channel": ",".join(op.channel_ids)})
        case c.VariableGet():
            return AriRequest("GET", f"/channels/{_id(op.channel_id)}/variable", {"variable": op.variable})
        case c.VariableSet():
            return AriRequest("POST", f"/channels/{_id(op.channel_id)}/variable",
                              {"variable": op.variable, "value": op.value})
    raise ValueError(f"no ARI request for operation {op!r}")
