"""Encoding envelopes to Kafka records and decoding records back, with validation and upcasting.

Decoding either returns a valid, current-version envelope or raises DecodeError whose message is the
reason written into the dead-letter headers; it never half-succeeds.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from callstream_common.envelope import (
    Envelope,
    H_HINT,
    EnvelopeError,
    Headers,
    envelope_fields,
    header_map,
    new_message_id,
    utcnow,
)
from callstream_common.messages import CONTRACT
from callstream_common.messages.ari import ARI_EVENT_TYPE, ARI_EVENT_VERSION, RawAriEvent, RawAriEventError
from callstream_common.messages.base import Body, MessageRegistry, UpcastError
from callstream_common.topics import TopicName

AnyBody: TypeAlias = Body | RawAriEvent
Message: TypeAlias = Envelope[Any]


class DecodeError(ValueError):
    """The record cannot become a message; str(error) says why, for the dead-letter headers."""


def new_envelope(
    body: AnyBody,
    *,
    tenant: str,
    producer: str,
    pbx_id: str | None = None,
    causation_id: str | None = None,
    seq: int | None = None,
    message_id: str | None = None,
) -> Message:
    """Wrap a body, stamping type, version, id and time. Pass a deterministic message_id for replays."""
    if isinstance(body, RawAriEvent):
        type_name, version = ARI_EVENT_TYPE, ARI_EVENT_VERSION
    else:
        type_name, version = body.TYPE, body.VERSION
    return Envelope[Any](
        schema_version=version,
        message_id=message_id or new_message_id(),
        type=type_name,
        tenant=tenant,
        pbx_id=pbx_id,
        produced_at=utcnow(),
        producer=producer,
        causation_id=causation_id,
        seq=seq,
        body=body,
    )


def encode_value(body: AnyBody) -> bytes:
    if isinstance(body, RawAriEvent):
        return body.raw  # byte for byte, as Asterisk sent it
    return body.__pydantic_serializer__.to_json(body)


def encode(message: Message) -> tuple[list[tuple[str, bytes]], bytes]:
    """(headers, value) of the Kafka record for `message`: the envelope's headers, and the body's hint."""
    headers = message.headers()
    body = message.body
    if isinstance(body, Body):
        hint = body.hint()
        if hint is not None:
            headers.append((H_HINT, hint.encode()))
    return headers, encode_value(body)


class Codec:
    """Decodes the records of one registry's topics; one instance serves a whole service."""

    def __init__(self, registry: MessageRegistry = CONTRACT) -> None:
        self._registry = registry
        self._adapters: dict[TopicName, TypeAdapter[Any]] = {}

    def topic_adapter(self, topic: TopicName) -> TypeAdapter[Any]:
        """The discriminated union (on `type`) of every message type of `topic`."""
        adapter = self._adapters.get(topic)
        if adapter is None:
            models = tuple(self._registry.models(topic))
            if not models:
                raise KeyError(f"no message types on topic {topic}")
            union: Any = models[0] if len(models) == 1 else Annotated[_union(models), Field(discriminator="type")]
            adapter = self._adapters[topic] = TypeAdapter(union)
        return adapter

    def decode(self, topic: TopicName, headers: Headers | None, value: bytes | None) -> Message:
        try:
            fields = envelope_fields(header_map(headers))
        except EnvelopeError as exc:
            raise DecodeError(str(exc)) from exc
        if value is None:
            raise DecodeError("record has no value (a tombstone) where a message body was expected")
        type_name: str = fields["type"]
        version: int = fields["schema_version"]
        body = self._decode_body(topic, type_name, version, value)
        if isinstance(body, Body):
            fields["schema_version"] = body.VERSION  # the envelope describes the (upcast) body it holds
        try:
            return Envelope[Any](**fields, body=body)
        except ValidationError as exc:
            raise DecodeError(f"invalid envelope: {_brief(exc)}") from exc

    def _decode_body(self, topic: TopicName, type_name: str, version: int, value: bytes) -> AnyBody:
        if type_name == ARI_EVENT_TYPE:
            if topic != TopicName.ARI_EVENTS or version != ARI_EVENT_VERSION:
                raise DecodeError(f"{type_name} v{version} does not belong on {topic}")
            try:
                return RawAriEvent.checked(value)
            except RawAriEventError as exc:
                raise DecodeError(str(exc)) from exc
        model = self._registry.model_for(type_name)
        if model is None:
            raise DecodeError(f"unknown message type {type_name!r}")
        if model.TOPIC != topic:
            raise DecodeError(f"message type {type_name!r} belongs on {model.TOPIC}, not {topic}")
        try:
            if version == model.VERSION:
                body = self.topic_adapter(topic).validate_json(value)
            else:
                payload = orjson.loads(value)
                if not isinstance(payload, dict):
                    raise DecodeError(f"{type_name} body is not a JSON object")
                payload = self._registry.upcast(type_name, version, payload, model.VERSION)
                body = self.topic_adapter(topic).validate_python(payload)
        except ValidationError as exc:
            raise DecodeError(f"invalid {type_name} v{version}: {_brief(exc)}") from exc
        except (orjson.JSONDecodeError, UpcastError) as exc:
            raise DecodeError(f"{type_name} v{version}: {exc}") from exc
        if body.TYPE != type_name:
            raise DecodeError(f"header type {type_name!r} but body type {body.TYPE!r}")
        assert isinstance(body, Body)
        return body


def _union(models: tuple[type[Body], ...]) -> Any:
    union: Any = models[0]
    for model in models[1:]:
        union = union | model
    return union


def _brief(error: ValidationError, limit: int = 3) -> str:
    """The first few validation errors, as 'field.path: message'."""
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "(body)"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
