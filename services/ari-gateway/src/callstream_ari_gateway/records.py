"""Building the gateway's Kafka records: raw ARI events (fast path), markers and snapshots, dead letters."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from callstream_ari_gateway.sequence import Sequence
from callstream_ari_gateway.spool import OutRecord
from callstream_common.codec import encode, new_envelope
from callstream_common.envelope import H_ARI_TYPE, format_timestamp
from callstream_common.kafka.dlq import dlq_headers
from callstream_common.messages.ari import ARI_EVENT_TYPE, ARI_EVENT_VERSION
from callstream_common.messages.base import Body


class RecordFactory:
    """Stamps every record with the envelope headers and the next sequence number."""

    def __init__(self, *, tenant: str, pbx_id: str, producer: str, sequence: Sequence) -> None:
        self._pbx_id = pbx_id
        self._producer = producer
        self._tenant = tenant
        self._sequence = sequence
        # Built once: the headers every raw event shares (the envelope of ari.event, see envelope.py).
        self._constant = [
            ("schema_version", str(ARI_EVENT_VERSION).encode()),
            ("type", ARI_EVENT_TYPE.encode()),
            ("tenant", tenant.encode()),
            ("pbx_id", pbx_id.encode()),
            ("producer", producer.encode()),
        ]

    @property
    def last_seq(self) -> int:
        return self._sequence.last

    def message_id(self, seq: int) -> str:
        # Unique without a random draw: one producer per PBX, and its seq never repeats.
        return f"{self._producer}/{seq}"

    def ari_event(self, raw: bytes, received_at: datetime, kind: str | None = None) -> OutRecord:
        """The frame exactly as read; `produced_at` is when the gateway read it, `kind` its ARI type (a header
        consumers filter on without parsing the frame)."""
        seq = self._sequence.next()
        headers = [
            *self._constant,
            ("message_id", self.message_id(seq).encode()),
            ("produced_at", format_timestamp(received_at).encode()),
            ("seq", str(seq).encode()),
        ]
        if kind is not None:
            headers.append((H_ARI_TYPE, kind.encode()))
        return OutRecord(seq, headers, raw)

    def message(self, body: Body) -> OutRecord:
        seq = self._sequence.next()
        envelope = new_envelope(body, tenant=self._tenant, producer=self._producer, pbx_id=self._pbx_id, seq=seq,
                                message_id=self.message_id(seq))
        headers, value = encode(envelope)
        return OutRecord(seq, headers, value)

    def dead_frame(self, raw: bytes, reason: str, topic: str) -> OutRecord:
        """A frame that is not an ARI event: it goes to `<ari.events>.dlq`, in sequence, with the reason."""
        record = self.ari_event(raw, datetime.now(UTC))
        return OutRecord(record.seq, dlq_headers(record.headers, reason=reason, topic=topic, partition=-1,
                                                 offset=-1, service=self._producer), raw)


def check_frame(raw: bytes) -> str | None:
    """The ARI event type of a frame, or None when it is not an ARI event (a JSON object with a type)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict):
        kind = data.get("type")
        if isinstance(kind, str):
            return kind
    return None


def is_dead_letter(record: OutRecord) -> bool:
    return any(name == "dlq.reason" for name, _ in record.headers)
