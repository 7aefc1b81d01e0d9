"""The PBX's state: channels, bridges, endpoints, playbacks and recordings, and their ARI JSON snapshots.

Snapshots carry exactly the fields of the api-docs models (required ones always, optional ones when Asterisk
would send them), so every event and REST body built from them conforms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .clock import Timer
from .config import PhoneBehaviour

CHANNEL_STATES = ("Down", "Rsrved", "OffHook", "Dialing", "Ring", "Ringing", "Up", "Busy")

# Q.850 causes Asterisk names in ChannelDestroyed.cause_txt (ast_cause2str); anything else is "Unknown".
CAUSE_TEXT = {
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    26: "Answered elsewhere",
    27: "Destination out of order",
    28: "Invalid number format",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    58: "Bearer capability not available",
    127: "Interworking, unspecified",
}

# DELETE /channels/{id}?reason=... (resource_channels.c convert_reason_to_hangup_code).
HANGUP_REASONS = {
    "normal": 16,
    "busy": 17,
    "congestion": 34,
    "no_answer": 19,
    "timeout": 18,
    "rejected": 21,
    "unallocated": 1,
    "normal_unspecified": 31,
    "number_incomplete": 28,
    "codec_mismatch": 58,
    "interworking": 127,
    "failure": 38,
    "answered_elsewhere": 26,
}


def cause_text(cause: int) -> str:
    return CAUSE_TEXT.get(cause, "Unknown")


def dial_status_for_cause(cause: int) -> str:
    """main/dial.c ast_hangup_cause_to_dial_status()."""
    if cause == 17:
        return "BUSY"
    if cause == 34:
        return "CONGESTION"
    if cause in (3, 20):
        return "CHANUNAVAIL"
    return "NOANSWER"


@dataclass(eq=False)
class Channel:
    id: str
    name: str
    tech: str
    resource: str
    protocol_id: str
    creationtime: str
    kind: str  # inbound | outbound | created | snoop
    state: str = "Down"
    caller_name: str = ""
    caller_number: str = ""
    connected_name: str = ""
    connected_number: str = ""
    accountcode: str = ""
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    app_name: str = ""
    app_data: str = ""
    language: str = "en"
    variables: dict[str, str] = field(default_factory=dict)
    reported: list[str] = field(default_factory=list)
    # --- simulation state, never serialised ---
    base_dialplan: tuple[str, str, int, str, str] | None = None
    stasis_app: str | None = None
    stasis_args: list[str] = field(default_factory=list)
    originate_app: str | None = None
    dialstring: str | None = None
    dial_caller: str | None = None
    dialing: bool = False
    in_dial_bridge: bool = False
    bridge_id: str | None = None
    role: str = ""
    hangup_cause: int = 16
    dying: bool = False
    had_media: bool = False
    talk_detect: bool = False
    held: bool = False
    spied_id: str | None = None
    snoop_ids: list[str] = field(default_factory=list)
    recording: str | None = None
    playbacks: list[str] = field(default_factory=list)
    did: str | None = None
    # Timers of the far end / dial engine, by purpose ("ring", "answer", "timeout", "patience", "talk", ...).
    timers: dict[str, Timer] = field(default_factory=dict)
    # Per-call far-end parameters (patience, talk time, who hangs up, outcome rule ...).
    far: dict[str, Any] = field(default_factory=dict)

    def snapshot(self, channelvars: tuple[str, ...] = ()) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": self.protocol_id,
            "caller": {"name": self.caller_name, "number": self.caller_number},
            "connected": {"name": self.connected_name, "number": self.connected_number},
            "accountcode": self.accountcode,
            "dialplan": {
                "context": self.context,
                "exten": self.exten,
                "priority": self.priority,
                "app_name": self.app_name,
                "app_data": self.app_data,
            },
            "creationtime": self.creationtime,
            "language": self.language,
        }
        names = list(channelvars) + [n for n in self.reported if n not in channelvars]
        if names:
            snap["channelvars"] = {n: self.variables.get(n, "") for n in names}
        return snap

    def cancel_timers(self, *purposes: str) -> None:
        keys = purposes or tuple(self.timers)
        for key in keys:
            timer = self.timers.pop(key, None)
            if timer is not None:
                timer.cancel()


@dataclass(eq=False)
class Bridge:
    id: str
    name: str
    bridge_type: str  # mixing | holding
    types: list[str]
    creationtime: str
    channels: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    reported: list[str] = field(default_factory=list)
    # Recorder / Announcer channels pushed in by bridge record / play: invisible, but they count for mixing.
    internal: int = 0
    moh_class: str | None = None
    recordings: list[str] = field(default_factory=list)
    playbacks: list[str] = field(default_factory=list)
    # Apps subscribed because one of their channels entered (stays until the bridge is destroyed).
    subscribed: list[str] = field(default_factory=list)

    @property
    def technology(self) -> str:
        if self.bridge_type == "holding":
            return "holding_bridge"
        # The smart bridge starts as a two-party bridge and becomes softmix once a third party joins
        # (another caller, a recorder, an announcer).
        return "softmix" if len(self.channels) + self.internal > 2 else "simple_bridge"

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "id": self.id,
            "technology": self.technology,
            "bridge_type": self.bridge_type,
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": self.name,
            "channels": list(self.channels),
            "video_mode": "talker",
            "creationtime": self.creationtime,
        }
        if self.reported:
            snap["bridgevars"] = {n: self.variables.get(n, "") for n in self.reported}
        return snap


@dataclass(eq=False)
class Endpoint:
    tech: str
    resource: str
    kind: str  # agent | supervisor | trunk
    context: str
    behaviour: PhoneBehaviour
    registered: bool = True
    address: str = "192.0.2.10"
    channel_ids: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.tech}/{self.resource}"

    @property
    def state(self) -> str:
        return "online" if self.registered else "offline"

    def snapshot(self) -> dict[str, Any]:
        return {
            "technology": self.tech,
            "resource": self.resource,
            "state": self.state,
            "channel_ids": list(self.channel_ids),
        }


@dataclass(eq=False)
class Playback:
    id: str
    media: list[str]
    target_uri: str
    language: str
    state: str = "queued"
    skipms: int = 3000
    index: int = 0
    paused: bool = False
    controllable: bool = False
    timer: Timer | None = None
    remaining: float = 0.0
    started_at: float = 0.0

    @property
    def target_kind(self) -> str:
        return self.target_uri.split(":", 1)[0]

    @property
    def target_id(self) -> str:
        return self.target_uri.split(":", 1)[1]

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "id": self.id,
            "media_uri": self.media[min(self.index, len(self.media) - 1)],
            "target_uri": self.target_uri,
            "language": self.language,
            # `paused` is outside the Playback model's values, yet it is what Asterisk reports.
            "state": self.state,
        }
        if self.index + 1 < len(self.media):
            snap["next_media_uri"] = self.media[self.index + 1]
        return snap


@dataclass(eq=False)
class LiveRecording:
    name: str
    format: str
    target_uri: str
    state: str = "queued"
    max_duration: int = 0
    max_silence: int = 0
    terminate_on: str = "none"
    if_exists: str = "fail"
    started_at: float | None = None
    paused_at: float | None = None
    paused_total: float = 0.0
    muted: bool = False
    duration: int | None = None
    cause: str | None = None
    timer: Timer | None = None

    @property
    def target_kind(self) -> str:
        return self.target_uri.split(":", 1)[0]

    @property
    def target_id(self) -> str:
        return self.target_uri.split(":", 1)[1]

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "name": self.name,
            "format": self.format,
            "target_uri": self.target_uri,
            "state": self.state,
        }
        if self.duration is not None:
            snap["duration"] = self.duration
            if self.max_silence > 0:
                # Energy detection only runs with silence detection on; the far end talks ~60 % of the time.
                snap["talking_duration"] = (self.duration * 3) // 5
                snap["silence_duration"] = self.duration - (self.duration * 3) // 5
        if self.cause is not None:
            snap["cause"] = self.cause
        return snap


@dataclass(eq=False)
class StoredRecording:
    name: str
    format: str
    duration: float

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "format": self.format}
