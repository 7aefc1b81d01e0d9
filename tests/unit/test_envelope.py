"""Envelope and codec: round trips, upcasting, and every way a record can fail to decode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import orjson
import pytest
from pydantic import ValidationError

from callstream_common.codec import Codec, DecodeError, encode, new_envelope
from callstream_common.envelope import Envelope
from callstream_common.messages import CONTRACT, MessageRegistry
from callstream_common.messages.agents import AgentState, AgentStateChanged
from callstream_common.messages.ari import RawAriEvent
from callstream_common.messages.base import Body, UpcastError
from callstream_common.messages.calls import CallQueued
from callstream_common.messages.cms import AgentPause
from callstream_common.messages.commands import AriCommand, Hangup, Originate
from callstream_common.topics import TopicName

NOW = datetime(2026, 11, 27, 9, 30, 0, 123456, tzinfo=UTC)


def queued() -> CallQueued:
    return CallQueued(call_id="call-1", at=NOW, queue_id="sales", channel_id="1732700000.11",
                      caller_number="+4915112345678", did="+4930123456", waiting_since=NOW)


def test_round_trip_keeps_every_field() -> None:
    message = new_envelope(queued(), tenant="acme", producer="router/1", pbx_id="pbx-01",
                           causation_id="ari.events/3/42", seq=7)
    headers, value = encode(message)
    assert dict(headers)["type"] == b"call.queued"
    assert Codec().decode(TopicName.CALLS, headers, value) == message


def test_decoding_picks_the_member_of_the_topic_union() -> None:
    body = AgentStateChanged(agent_id="agent-7", at=NOW, state=AgentState.PAUSED,
                             previous_state=AgentState.AVAILABLE, pause_reason="lunch")
    headers, value = encode(new_envelope(body, tenant="acme", producer="agent-state/1", pbx_id="pbx-01"))
    decoded = Codec().decode(TopicName.AGENTS, headers, value)
    assert isinstance(decoded.body, AgentStateChanged)
    assert decoded.body.pause_reason == "lunch"


def test_commands_decode_their_operation_union() -> None:
    command = AriCommand(command_id="cmd-1", operation=Originate(
        channel_id="agent-leg-1", endpoint="PJSIP/1001", app="callstream", timeout_s=20))
    headers, value = encode(new_envelope(command, tenant="acme", producer="router/1", pbx_id="pbx-01"))
    decoded = Codec().decode(TopicName.ARI_COMMANDS, headers, value)
    assert isinstance(decoded.body.operation, Originate)
    assert decoded.body.operation.timeout_s == 20


def test_raw_ari_event_passes_byte_for_byte() -> None:
    # Odd spacing and key order on purpose: nothing may normalise it.
    raw = b'{ "type":"StasisStart","application":"callstream",  "timestamp":"2026-11-27T09:30:00.123+0000",' \
          b'"args":["inbound","+4930123456"],"channel":{"id":"1732700000.11"},"asterisk_id":"00:11:22"}'
    message = new_envelope(RawAriEvent(raw), tenant="acme", producer="gw/pbx-01", pbx_id="pbx-01", seq=1)
    headers, value = encode(message)
    assert value is raw
    decoded = Codec().decode(TopicName.ARI_EVENTS, headers, value)
    assert decoded.body.raw == raw
    assert decoded.body.event_type == "StasisStart"
    assert decoded.seq == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, v: ([x for x in h if x[0] != "tenant"], v), "missing envelope header(s): tenant"),
        (lambda h, v: ([(k, b"x" if k == "schema_version" else x) for k, x in h], v), "not an integer"),
        (lambda h, v: ([(k, b"call.nope" if k == "type" else x) for k, x in h], v), "unknown message type"),
        (lambda h, v: ([(k, b"agent.logged-out" if k == "type" else x) for k, x in h], v), "belongs on agents"),
        (lambda h, v: (h, b"{not json"), "invalid call.queued"),
        (lambda h, v: (h, None), "tombstone"),
        (lambda h, v: (h, v.replace(b'"queue_id":"sales"', b'"queue_id":""')), "queue_id"),
        (lambda h, v: (h, v[:-1] + b',"balance":1200}'), "balance: Extra inputs are not permitted"),
        (lambda h, v: ([(k, b"2026-13-99" if k == "produced_at" else x) for k, x in h], v), "produced_at"),
        (lambda h, v: ([(k, b"\xff" if k == "producer" else x) for k, x in h], v), "not UTF-8"),
    ],
)
def test_undecodable_records_say_why(mutate: object, reason: str) -> None:
    headers, value = encode(new_envelope(queued(), tenant="acme", producer="router/1", pbx_id="pbx-01"))
    bad_headers, bad_value = mutate(headers, value)  # type: ignore[operator]
    with pytest.raises(DecodeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        Codec().decode(TopicName.CALLS, bad_headers, bad_value)


def test_header_type_must_match_body_type() -> None:
    headers, _ = encode(new_envelope(queued(), tenant="acme", producer="router/1"))
    other = AgentStateChanged(agent_id="a", at=NOW, state=AgentState.AVAILABLE,
                              previous_state=AgentState.WRAP_UP)
    foreign_value = encode(new_envelope(other, tenant="acme", producer="x"))[1]
    with pytest.raises(DecodeError):
        Codec().decode(TopicName.CALLS, headers, foreign_value)


def test_raw_ari_event_that_is_not_an_event_is_refused() -> None:
    message = new_envelope(RawAriEvent(b'["StasisStart"]'), tenant="acme", producer="gw", pbx_id="pbx-01")
    with pytest.raises(DecodeError, match="string 'type'"):
        Codec().decode(TopicName.ARI_EVENTS, *encode(message))


def test_models_are_frozen_and_strict() -> None:
    body = queued()
    with pytest.raises(ValidationError):
        body.queue_id = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        AgentPause(command_id="c1", requested_at=NOW, agent_id="a1", reason="lunch", balance=10)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Hangup(channel_id="x", reason="because")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Envelope[CallQueued](schema_version=1, message_id="m", type="call.queued", tenant="t",
                             produced_at=datetime(2026, 1, 1), producer="p", body=body)  # naive time


# An evolving message of a registry of its own, so the contract's registry stays untouched: v1 had one
# `name` field; v2 split it into given and family names; v3 added a required channel with a default of "".
DEMO = MessageRegistry()


class DemoPerson(Body):
    REGISTRY = DEMO
    TOPIC = TopicName.CALLS
    VERSION = 3
    type: Literal["demo.person"] = "demo.person"
    given: str
    family: str
    channel: str


@DEMO.upcaster("demo.person", 1)
def _v1_to_v2(body: dict[str, object]) -> dict[str, object]:
    given, _, family = str(body.pop("name")).partition(" ")
    return {**body, "given": given, "family": family}


@DEMO.upcaster("demo.person", 2)
def _v2_to_v3(body: dict[str, object]) -> dict[str, object]:
    return {**body, "channel": ""}


def test_old_versions_are_upcast_on_read() -> None:
    current = new_envelope(DemoPerson(given="Ada", family="Lovelace", channel="c1"), tenant="t", producer="p")
    headers, _ = encode(current)
    v1_headers = [(k, b"1" if k == "schema_version" else v) for k, v in headers]
    v1_value = orjson.dumps({"type": "demo.person", "name": "Ada Lovelace"})
    decoded = Codec(DEMO).decode(TopicName.CALLS, v1_headers, v1_value)
    assert decoded.body == DemoPerson(given="Ada", family="Lovelace", channel="")
    assert decoded.schema_version == 3
    assert DEMO.old_versions("demo.person") == [1, 2]


def test_versions_without_upcaster_or_from_the_future_are_refused() -> None:
    with pytest.raises(UpcastError, match="newer"):
        DEMO.upcast("demo.person", 4, {}, 3)
    headers, _ = encode(new_envelope(DemoPerson(given="A", family="B", channel="c"), tenant="t", producer="p"))
    v0 = [(k, b"0" if k == "schema_version" else v) for k, v in headers]
    with pytest.raises(DecodeError, match="no upcaster"):
        Codec(DEMO).decode(TopicName.CALLS, v0, b'{"type": "demo.person"}')


def test_contract_registry_holds_only_contract_types() -> None:
    assert CONTRACT.model_for("demo.person") is None
    assert DEMO.model_for("call.queued") is None
