"""The envelope every message travels in, and how it maps onto a Kafka record.

Wire format (Kafka's "binary" mode, as in CloudEvents' Kafka binding): the envelope's fields travel as
record headers and the record value is the body alone. Two reasons:
- a raw ARI event must reach consumers byte for byte as Asterisk sent it, so the gateway must not re-encode
  the body, and it must not pay for parsing and re-serialising 25,000 events a second;
- consumers route and filter on `type` and `schema_version` without parsing the body.
A dead-lettered record keeps headers and value unchanged and gains the `dlq.*` headers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

BodyT = TypeVar("BodyT")

# Header names are part of the contract: they are the envelope on the wire.
H_SCHEMA_VERSION = "schema_version"
H_MESSAGE_ID = "message_id"
H_TYPE = "type"
H_TENANT = "tenant"
H_PBX_ID = "pbx_id"
H_PRODUCED_AT = "produced_at"
H_PRODUCER = "producer"
H_CAUSATION_ID = "causation_id"
H_SEQ = "seq"
# Not part of the envelope: on a raw ARI event (type ari.event), the ARI event's own type, as the gateway read
# it, so a consumer can pass over the types it ignores without decoding the body (see kafka/pass_over.py).
H_ARI_TYPE = "ari_type"
# Not part of the envelope either: on the bodies that name one (Body.HINT_FIELD), that field's value, for the
# same purpose (an ari.command-result's outcome, an agent.state-changed's new state).
H_HINT = "hint"
ENVELOPE_HEADERS = (
    H_SCHEMA_VERSION,
    H_MESSAGE_ID,
    H_TYPE,
    H_TENANT,
    H_PBX_ID,
    H_PRODUCED_AT,
    H_PRODUCER,
    H_CAUSATION_ID,
    H_SEQ,
)
REQUIRED_HEADERS = (H_SCHEMA_VERSION, H_MESSAGE_ID, H_TYPE, H_TENANT, H_PRODUCED_AT, H_PRODUCER)

Headers = Sequence[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A record whose headers do not make a valid envelope: the reason names the header."""


class Envelope(BaseModel, Generic[BodyT]):
    """Metadata common to every message, around a typed body."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(ge=1, description="Version of the body's schema for this type.")
    message_id: str = Field(min_length=1, max_length=200, description="Unique id of this message.")
    type: str = Field(min_length=1, description="Message type, e.g. 'call.queued' or 'ari.event'.")
    tenant: str = Field(min_length=1, max_length=64)
    pbx_id: str | None = Field(default=None, max_length=64, description="PBX the message concerns.")
    produced_at: AwareDatetime = Field(description="When the producer made it (the gateway: when it read it).")
    producer: str = Field(min_length=1, max_length=200, description="Service and instance that produced it.")
    causation_id: str | None = Field(
        default=None, description="What caused it: a message id, or 'topic/partition/offset' of the input."
    )
    seq: int | None = Field(
        default=None, ge=0, description="Producer sequence number: never goes back for one producer."
    )
    body: BodyT

    def headers(self) -> list[tuple[str, bytes]]:
        """The envelope's fields as Kafka record headers (absent optional fields are left out)."""
        values: dict[str, str | None] = {
            H_SCHEMA_VERSION: str(self.schema_version),
            H_MESSAGE_ID: self.message_id,
            H_TYPE: self.type,
            H_TENANT: self.tenant,
            H_PBX_ID: self.pbx_id,
            H_PRODUCED_AT: format_timestamp(self.produced_at),
            H_PRODUCER: self.producer,
            H_CAUSATION_ID: self.causation_id,
            H_SEQ: None if self.seq is None else str(self.seq),
        }
        return [(name, value.encode()) for name, value in values.items() if value is not None]


def new_message_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, the one textual time format of the envelope."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def header_map(headers: Headers | None) -> dict[str, str]:
    """Record headers as text; for a repeated header the last one wins, as in Kafka's lastHeader()."""
    result: dict[str, str] = {}
    for name, raw in headers or ():
        try:
            result[name] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"header {name!r} is not UTF-8") from exc
    return result


def envelope_fields(headers: Mapping[str, str]) -> dict[str, Any]:
    """The envelope's fields (all but the body) read from record headers, not yet validated."""
    missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
    if missing:
        raise EnvelopeError(f"missing envelope header(s): {', '.join(missing)}")
    fields: dict[str, Any] = {name: headers[name] for name in ENVELOPE_HEADERS if name in headers}
    for numeric in (H_SCHEMA_VERSION, H_SEQ):
        if numeric in fields:
            try:
                fields[numeric] = int(fields[numeric])
            except ValueError as exc:
                raise EnvelopeError(f"header {numeric!r} is not an integer: {fields[numeric]!r}") from exc
    return fields
