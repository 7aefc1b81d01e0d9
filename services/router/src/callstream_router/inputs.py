"""What the router decides on: a small typed view of the ARI events it needs, and its other inputs.

Every input has an `origin`, the prefix of the ids of the commands and requests it causes (see ids.py), and
`at`, when it happened (the ARI event's timestamp when there is one; otherwise the decider uses `now`).
Raw ARI events are parsed once by `parse_ari_event`; event types the router does not act on give None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from callstream_common.messages.ari import GatewayEntityChanged, GatewaySnapshot
from callstream_common.messages.cms import TransferAttendedFinish, TransferAttendedStart, TransferBlind
from callstream_common.messages.commands import AriCommandResult
from callstream_router import ids


@dataclass(frozen=True)
class ChannelView:
    id: str
    name: str = ""
    state: str = ""
    caller_number: str | None = None
    caller_name: str | None = None
    exten: str | None = None


# ---- ARI events ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StasisStart:
    origin: str
    channel: ChannelView
    args: tuple[str, ...] = ()
    replace_channel_id: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class StasisEnd:
    origin: str
    channel_id: str
    at: datetime | None = None


@dataclass(frozen=True)
class ChannelHangupRequest:
    origin: str
    channel_id: str
    cause: int | None = None
    soft: bool = False
    at: datetime | None = None


@dataclass(frozen=True)
class ChannelDestroyed:
    origin: str
    channel_id: str
    cause: int = 0
    at: datetime | None = None


@dataclass(frozen=True)
class DialEvent:
    """`Dial`: the progress of an originated leg (`peer`); dialstatus "" at start, then RINGING ... final."""

    origin: str
    peer_id: str
    dialstatus: str
    at: datetime | None = None


@dataclass(frozen=True)
class ChannelStateChange:
    origin: str
    channel_id: str
    state: str
    at: datetime | None = None


@dataclass(frozen=True)
class ChannelEnteredBridge:
    origin: str
    bridge_id: str
    channel_id: str
    at: datetime | None = None


@dataclass(frozen=True)
class ChannelLeftBridge:
    origin: str
    bridge_id: str
    channel_id: str
    at: datetime | None = None


# ---- gateway markers ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What exists on the PBX now (gateway.snapshot); gateway.entity-changed is a snapshot with nothing."""

    origin: str
    taken_at: datetime
    channel_ids: frozenset[str]
    bridge_ids: frozenset[str] = frozenset()
    at: datetime | None = None


# ---- other inputs -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReservedAgent:
    agent_id: str
    endpoint: str


@dataclass(frozen=True)
class ReservationResult:
    """The answer to a ReserveAgent intent: the agents Redis reserved (none, one, or several for ring-all)."""

    request_id: str
    call_id: str
    agents: tuple[ReservedAgent, ...] = ()
    at: datetime | None = None

    @property
    def origin(self) -> str:
        return ids.answer_origin(self.request_id)


DeadlineKind = Literal["ring", "max_wait", "retry", "reserve", "consult_ring", "consult_reserve", "stale"]


@dataclass(frozen=True)
class Deadline:
    """A timer of a call came due; `due_deadlines(state, now)` lists them, the service's tick feeds them in."""

    call_id: str
    kind: DeadlineKind
    attempt: int
    at: datetime | None = None

    @property
    def origin(self) -> str:
        return ids.deadline_origin(self.call_id, self.kind, self.attempt)


@dataclass(frozen=True)
class AgentFreed:
    """An agent of this PBX became available (agents topic): queues waiting for one are asked again."""

    origin: str
    agent_id: str
    at: datetime | None = None


TransferCommand = TransferBlind | TransferAttendedStart | TransferAttendedFinish


@dataclass(frozen=True)
class CmsTransfer:
    origin: str
    command: TransferCommand
    at: datetime | None = None


@dataclass(frozen=True)
class CommandFailed:
    """A command the router sent did not run (ARI error, expired, rejected); only originates matter here."""

    origin: str
    command_id: str
    op: str
    ari_status: int | None = None
    at: datetime | None = None


RouterInput = (
    StasisStart | StasisEnd | ChannelHangupRequest | ChannelDestroyed | DialEvent | ChannelStateChange
    | ChannelEnteredBridge | ChannelLeftBridge | Snapshot | ReservationResult | Deadline | AgentFreed
    | CmsTransfer | CommandFailed
)


# ---- parsing ------------------------------------------------------------------------------------------------

def parse_timestamp(value: object) -> datetime | None:
    """ARI's `2025-04-22T17:26:05.072+0200` (Python 3.11 reads it); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def channel_view(data: object) -> ChannelView | None:
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not data["id"]:
        return None
    caller = data.get("caller")
    dialplan = data.get("dialplan")
    caller = caller if isinstance(caller, Mapping) else {}
    dialplan = dialplan if isinstance(dialplan, Mapping) else {}
    return ChannelView(
        id=data["id"], name=str(data.get("name") or ""), state=str(data.get("state") or ""),
        caller_number=_text(caller.get("number")), caller_name=_text(caller.get("name")),
        exten=_text(dialplan.get("exten")),
    )


def _channel_id(data: Mapping[str, Any], key: str = "channel") -> str | None:
    view = channel_view(data.get(key))
    return view.id if view is not None else None


# The ARI event types parse_ari_event reads; the router passes over the others without decoding them.
ARI_TYPES = frozenset({"StasisStart", "StasisEnd", "Dial", "ChannelStateChange", "ChannelHangupRequest",
                       "ChannelDestroyed", "ChannelEnteredBridge", "ChannelLeftBridge"})


def parse_ari_event(data: Mapping[str, Any], origin: str) -> RouterInput | None:  # noqa: C901 - one branch per type
    """The typed view of a raw ARI event, or None for types (or malformed events) the router ignores."""
    kind = data.get("type")
    at = parse_timestamp(data.get("timestamp"))
    if kind == "StasisStart":
        channel = channel_view(data.get("channel"))
        if channel is None:
            return None
        raw_args = data.get("args")
        args = tuple(str(a) for a in raw_args) if isinstance(raw_args, list) else ()
        replaced = channel_view(data.get("replace_channel"))
        return StasisStart(origin, channel, args, replaced.id if replaced else None, at)
    if kind == "Dial":
        peer = _channel_id(data, "peer")
        status = data.get("dialstatus")
        return DialEvent(origin, peer, status if isinstance(status, str) else "", at) if peer else None
    if kind == "ChannelStateChange":
        channel = channel_view(data.get("channel"))
        return ChannelStateChange(origin, channel.id, channel.state, at) if channel else None
    channel_id = _channel_id(data)
    if channel_id is None:
        return None
    if kind == "StasisEnd":
        return StasisEnd(origin, channel_id, at)
    if kind == "ChannelHangupRequest":
        cause = data.get("cause")
        return ChannelHangupRequest(origin, channel_id, cause if isinstance(cause, int) else None,
                                    bool(data.get("soft", False)), at)
    if kind == "ChannelDestroyed":
        cause = data.get("cause")
        return ChannelDestroyed(origin, channel_id, cause if isinstance(cause, int) else 0, at)
    if kind in ("ChannelEnteredBridge", "ChannelLeftBridge"):
        bridge = data.get("bridge")
        bridge_id = bridge.get("id") if isinstance(bridge, Mapping) else None
        if not isinstance(bridge_id, str):
            return None
        if kind == "ChannelEnteredBridge":
            return ChannelEnteredBridge(origin, bridge_id, channel_id, at)
        return ChannelLeftBridge(origin, bridge_id, channel_id, at)
    return None


def from_snapshot(snapshot: GatewaySnapshot, origin: str) -> Snapshot:
    channel_ids = frozenset(str(c["id"]) for c in snapshot.channels if isinstance(c.get("id"), str))
    bridge_ids = frozenset(str(b["id"]) for b in snapshot.bridges if isinstance(b.get("id"), str))
    return Snapshot(origin, snapshot.taken_at, channel_ids, bridge_ids, snapshot.taken_at)


def from_entity_changed(marker: GatewayEntityChanged, origin: str, now: datetime) -> Snapshot:
    """A replaced PBX lost every call: the same repair as a snapshot listing nothing."""
    return Snapshot(origin, now, frozenset(), frozenset(), None)


def from_command_result(result: AriCommandResult, origin: str) -> CommandFailed | None:
    """Only failures matter; a 409 on a create is the idempotent repeat of a command that did run."""
    if result.outcome == "ok" or result.ari_status == 409:
        return None
    return CommandFailed(origin, result.command_id, result.op, result.ari_status, result.executed_at)

