"""Messages on ari.events: raw ARI events and the gateway's own markers and snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, Field

from callstream_common.messages.base import Body
from callstream_common.messages.common import Id
from callstream_common.topics import TopicName

ARI_EVENT_TYPE = "ari.event"
ARI_EVENT_VERSION = 1


class RawAriEventError(ValueError):
    pass


@dataclass(frozen=True)
class RawAriEvent:
    """An ARI event exactly as Asterisk sent it (message type `ari.event`).

    Not a pydantic model on purpose: the bytes are the contract, and they are passed through untouched.
    `data` parses them once, on first use. Their shape is Asterisk's `Event` model (api-docs/events.json).
    """

    raw: bytes
    _parsed: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def checked(cls, raw: bytes) -> RawAriEvent:
        """Parse once to check it is an ARI event (a JSON object with a string `type`)."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RawAriEventError(f"ARI event is not JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise RawAriEventError("ARI event is not a JSON object with a string 'type'")
        return cls(raw, data)

    @property
    def data(self) -> dict[str, Any]:
        if self._parsed is None:
            object.__setattr__(self, "_parsed", orjson.loads(self.raw))
        assert self._parsed is not None
        return self._parsed

    @property
    def event_type(self) -> str:
        return str(self.data["type"])


# JSON Schema of the ari.event body: Asterisk's Event base model (application and type are required there,
# timestamp is always sent, asterisk_id since Asterisk 13.x). The subtypes are Asterisk's own api-docs.
ARI_EVENT_JSON_SCHEMA: dict[str, Any] = {
    "title": "AriEvent",
    "description": "An ARI event as Asterisk sent it, byte for byte; see Asterisk's api-docs/events.json.",
    "type": "object",
    "required": ["type", "application"],
    "properties": {
        "type": {"type": "string", "description": "ARI event type, e.g. StasisStart."},
        "application": {"type": "string"},
        "timestamp": {"type": "string"},
        "asterisk_id": {"type": "string"},
    },
    "additionalProperties": True,
}


class GatewayConnected(Body):
    """The gateway (re)connected to its PBX. Events between `last_seq_before` and this marker are lost."""

    TOPIC = TopicName.ARI_EVENTS
    type: Literal["gateway.connected"] = "gateway.connected"
    gateway_id: Id
    asterisk_id: str = Field(description="The PBX's entity id, from GET /asterisk/info.")
    asterisk_version: str | None = None
    application: str
    connection: int = Field(ge=1, description="Count of connections made by this gateway since it started.")
    last_seq_before: int | None = Field(
        default=None, description="Sequence number of the last event read before the drop; None at first connect."
    )
    disconnected_at: AwareDatetime | None = None


class GatewayDisconnected(Body):
    """The gateway lost its WebSocket; events until the next gateway.connected may be lost."""

    TOPIC = TopicName.ARI_EVENTS
    type: Literal["gateway.disconnected"] = "gateway.disconnected"
    gateway_id: Id
    asterisk_id: str | None = None
    last_seq: int | None = None
    reason: str


class GatewaySnapshot(Body):
    """A resync snapshot read from ARI REST after a (re)connect: what exists now on the PBX.

    Lists hold Asterisk's Channel, Bridge and Endpoint objects as ARI returned them.
    """

    TOPIC = TopicName.ARI_EVENTS
    type: Literal["gateway.snapshot"] = "gateway.snapshot"
    gateway_id: Id
    asterisk_id: str
    connection: int = Field(ge=1)
    taken_at: AwareDatetime
    channels: list[dict[str, Any]]
    bridges: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    application: dict[str, Any] | None = Field(
        default=None, description="GET /applications/{app}: the channel_ids and bridge_ids the app holds.")


class GatewayEntityChanged(Body):
    """The PBX behind this gateway's address has a new entity id: it was replaced, and its calls are gone."""

    TOPIC = TopicName.ARI_EVENTS
    type: Literal["gateway.entity-changed"] = "gateway.entity-changed"
    gateway_id: Id
    previous_asterisk_id: str
    asterisk_id: str
