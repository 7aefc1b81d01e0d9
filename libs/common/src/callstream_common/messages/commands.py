"""Messages on ari.commands and ari.command-results: what a service asks one PBX's gateway to do.

One message type, `ari.command`, whose `operation` is a discriminated union on `op`: one model per ARI
REST operation callstream uses (../shared/ari/NOTES.md §c). Command ids are deterministic (derived from
the input that caused the command), so a re-processed input yields the same id and the gateway runs it once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from callstream_common.messages.base import Body
from callstream_common.messages.common import AriId, Endpoint, Id
from callstream_common.topics import TopicName

HangupReason = Literal[
    "normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated",
    "normal_unspecified", "number_incomplete", "codec_mismatch", "interworking", "failure",
    "answered_elsewhere",
]
Direction = Literal["both", "in", "out"]
SpyWhisper = Literal["none", "both", "out", "in"]
IfExists = Literal["fail", "overwrite", "append"]
TerminateOn = Literal["none", "any", "*", "#"]


class Op(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Originate(Op):
    """POST /channels/{channelId}: dial an endpoint; the channel enters Stasis when answered."""

    op: Literal["originate"] = "originate"
    channel_id: AriId
    endpoint: Endpoint
    app: str
    app_args: str | None = None
    caller_id: str | None = None
    timeout_s: int = Field(default=30, ge=-1, le=3600)
    other_channel_id: AriId | None = None
    originator: AriId | None = None
    formats: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)


class CreateChannel(Op):
    """POST /channels/create: a channel in Stasis at once, not dialed until `dial`."""

    op: Literal["create_channel"] = "create_channel"
    channel_id: AriId
    endpoint: Endpoint
    app: str
    app_args: str | None = None
    other_channel_id: AriId | None = None
    originator: AriId | None = None
    formats: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)


class Dial(Op):
    op: Literal["dial"] = "dial"
    channel_id: AriId
    caller: AriId | None = None
    timeout_s: int = Field(default=0, ge=0, le=3600)


class Answer(Op):
    op: Literal["answer"] = "answer"
    channel_id: AriId


class Ring(Op):
    op: Literal["ring"] = "ring"
    channel_id: AriId


class RingStop(Op):
    op: Literal["ring_stop"] = "ring_stop"
    channel_id: AriId


class Hangup(Op):
    op: Literal["hangup"] = "hangup"
    channel_id: AriId
    reason: HangupReason = "normal"


class Continue(Op):
    op: Literal["continue"] = "continue"
    channel_id: AriId
    context: str | None = None
    extension: str | None = None
    priority: int | None = None
    label: str | None = None


class Redirect(Op):
    op: Literal["redirect"] = "redirect"
    channel_id: AriId
    endpoint: Endpoint


class Hold(Op):
    op: Literal["hold"] = "hold"
    channel_id: AriId


class Unhold(Op):
    op: Literal["unhold"] = "unhold"
    channel_id: AriId


class Mute(Op):
    op: Literal["mute"] = "mute"
    channel_id: AriId
    direction: Direction = "both"


class Unmute(Op):
    op: Literal["unmute"] = "unmute"
    channel_id: AriId
    direction: Direction = "both"


class MohStart(Op):
    """Music on hold on a channel, or on a bridge when `bridge_id` is given instead."""

    op: Literal["moh_start"] = "moh_start"
    channel_id: AriId | None = None
    bridge_id: AriId | None = None
    moh_class: str | None = None


class MohStop(Op):
    op: Literal["moh_stop"] = "moh_stop"
    channel_id: AriId | None = None
    bridge_id: AriId | None = None


class Play(Op):
    """Play media (sound:, recording:, number:, digits:, tone: URIs) to a channel or a bridge."""

    op: Literal["play"] = "play"
    playback_id: AriId
    channel_id: AriId | None = None
    bridge_id: AriId | None = None
    media: list[str] = Field(min_length=1)
    lang: str | None = None


class StopPlayback(Op):
    op: Literal["stop_playback"] = "stop_playback"
    playback_id: AriId


class _Recording(Op):
    """What a channel and a bridge recording have in common."""

    name: AriId
    format: str = Field(description="The call's own codec (e.g. wav, gsm, g722): never transcoded.")
    max_duration_s: int = Field(default=0, ge=0)
    max_silence_s: int = Field(default=0, ge=0)
    if_exists: IfExists = "fail"
    beep: bool = False
    terminate_on: TerminateOn = "none"


class RecordChannel(_Recording):
    op: Literal["record_channel"] = "record_channel"
    channel_id: AriId


class RecordBridge(_Recording):
    op: Literal["record_bridge"] = "record_bridge"
    bridge_id: AriId


class RecordingControl(Op):
    """Control a live recording by name."""

    op: Literal["recording_stop", "recording_pause", "recording_unpause", "recording_mute",
                "recording_unmute", "recording_discard"]
    name: AriId


class Snoop(Op):
    """A snoop channel on `channel_id` for a supervisor: spy (listen), whisper, or both (barge)."""

    op: Literal["snoop"] = "snoop"
    channel_id: AriId
    snoop_id: AriId
    app: str
    app_args: str | None = None
    spy: SpyWhisper = "both"
    whisper: SpyWhisper = "none"


class BridgeCreate(Op):
    op: Literal["bridge_create"] = "bridge_create"
    bridge_id: AriId
    bridge_type: str = Field(default="mixing", description="Comma list, e.g. 'mixing' or 'holding'.")
    name: str | None = None


class BridgeDestroy(Op):
    op: Literal["bridge_destroy"] = "bridge_destroy"
    bridge_id: AriId


class BridgeAddChannel(Op):
    op: Literal["bridge_add_channel"] = "bridge_add_channel"
    bridge_id: AriId
    channel_ids: list[AriId] = Field(min_length=1)
    role: str | None = None
    mute: bool = False


class BridgeRemoveChannel(Op):
    op: Literal["bridge_remove_channel"] = "bridge_remove_channel"
    bridge_id: AriId
    channel_ids: list[AriId] = Field(min_length=1)


class VariableGet(Op):
    op: Literal["variable_get"] = "variable_get"
    channel_id: AriId
    variable: str


class VariableSet(Op):
    op: Literal["variable_set"] = "variable_set"
    channel_id: AriId
    variable: str
    value: str


Operation = Annotated[
    Originate | CreateChannel | Dial | Answer | Ring | RingStop | Hangup | Continue | Redirect | Hold
    | Unhold | Mute | Unmute | MohStart | MohStop | Play | StopPlayback | RecordChannel | RecordBridge
    | RecordingControl | Snoop | BridgeCreate | BridgeDestroy | BridgeAddChannel | BridgeRemoveChannel
    | VariableGet | VariableSet,
    Field(discriminator="op"),
]


class AriCommand(Body):
    """One ARI operation for the gateway of the envelope's pbx_id."""

    TOPIC = TopicName.ARI_COMMANDS
    type: Literal["ari.command"] = "ari.command"
    command_id: Id = Field(description="Deterministic: derived from the input that caused it.")
    expires_at: AwareDatetime | None = Field(
        default=None, description="After this the gateway does not run it and answers 'expired'."
    )
    ordering_key: str | None = Field(
        default=None, description="Commands with the same key run in order (default: the channel or bridge id)."
    )
    operation: Operation


class AriCommandResult(Body):
    TOPIC = TopicName.ARI_COMMAND_RESULTS
    HINT_FIELD = "outcome"  # the router reads only what failed
    type: Literal["ari.command-result"] = "ari.command-result"
    command_id: Id
    op: str
    outcome: Literal["ok", "error", "expired", "rejected"]
    repeated: bool = Field(default=False, description="True when this repeats the stored result of a duplicate.")
    ari_status: int | None = Field(default=None, description="HTTP status ARI answered, when it was asked.")
    ari_body: Any = Field(default=None, description="What ARI answered (a Channel, Bridge, Playback, ...).")
    error: str | None = None
    executed_at: AwareDatetime
    duration_ms: float = Field(ge=0)
