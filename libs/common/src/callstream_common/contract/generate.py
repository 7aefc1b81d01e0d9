"""Generate schemas/, the published contract of every topic, from the message models and the topic catalogue.

    python -m callstream_common.contract.generate --out schemas           # write (make schemas)
    python -m callstream_common.contract.generate --out schemas --check   # exit 1 and list drift (CI)

What it writes (see schemas/README.md, which it also writes):
- `envelope.schema.json`: the envelope, i.e. the record headers every message carries;
- per topic `<topic>/topic.json` (the catalogue entry), `<topic>/<type>.v<N>.schema.json` (JSON Schema of the
  body, the record value) and `<topic>/examples/<type>.v<N>.json` (one record: key, headers, value);
- `asyncapi.yaml`: one AsyncAPI 3.0 document for all topics and their dead-letter topics.

Body schemas describe what consumers accept (pydantic's validation mode), with one deliberate difference:
tag fields (`type`, and `op` inside ari.command) are required. The models give them a default for the
producers' convenience, but every producer sends them and a topic's discriminated union cannot decode a body
without its tag.

A published version never changes: files of a version below the current VERSION (`<type>.v<N>`, N in
`CONTRACT.old_versions(type)`) are never rewritten or deleted, and the check only asks that they exist.
Nothing is ever deleted: a file the registry does not know is reported, for a person to decide.

Every file is rendered deterministically (sorted keys, 2-space indent, trailing newline; examples use fixed
ids and times) so that regenerating is byte-stable and `--check` can compare bytes.
"""

from __future__ import annotations

import argparse
import builtins
import json
import re
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import yaml

from callstream_common.codec import AnyBody, encode, new_envelope
from callstream_common.envelope import ENVELOPE_HEADERS, REQUIRED_HEADERS, Envelope
from callstream_common.kafka import dlq
from callstream_common.messages import CONTRACT, MessageRegistry, agents, calls, cms, commands, dialer
from callstream_common.messages.ari import (
    ARI_EVENT_JSON_SCHEMA,
    ARI_EVENT_TYPE,
    ARI_EVENT_VERSION,
    GatewayConnected,
    GatewayDisconnected,
    GatewayEntityChanged,
    GatewaySnapshot,
    RawAriEvent,
)
from callstream_common.messages.base import Body
from callstream_common.topics import CATALOGUE, DLQ_RETENTION_MS, Key, TopicName, TopicSpec, dlq_name

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# $id of every schema: a stable name, not a promise that the URL is served.
BASE_URI = "https://callstream.dev/schemas/"
# How AsyncAPI is told that payload and header schemas are JSON Schema 2020-12, not AsyncAPI's own dialect.
ASYNCAPI_SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
KAFKA_BINDING_VERSION = "0.5.0"
# The broker of the local stack (tools/stack) and of compose.yaml, as seen from the host.
LOCAL_KAFKA = "127.0.0.1:19092"

ENVELOPE_FILE = "envelope.schema.json"
ASYNCAPI_FILE = "asyncapi.yaml"
README_FILE = "README.md"
TOPIC_FILE = "topic.json"
EXAMPLES_DIR = "examples"
DEAD_LETTER_MESSAGE = "dead-letter"

_VERSIONED_FILE = re.compile(r"^(?P<type>.+)\.v(?P<version>[0-9]+)(?P<suffix>\.schema\.json|\.json)$")


# --------------------------------------------------------------------------------------------------------------
# What the contract is made of


@dataclass(frozen=True)
class MessageType:
    """One message type of one topic, at its current version."""

    topic: TopicSpec
    type: str
    version: int
    title: str
    summary: str  # the model's first docstring line; empty when it has none
    body_schema: dict[str, Any]
    old_versions: tuple[int, ...]
    model: builtins.type[Body] | None  # None for ari.event, a raw ARI event

    @property
    def stem(self) -> str:
        return f"{self.type}.v{self.version}"

    @property
    def schema_path(self) -> str:
        return f"{self.topic.name}/{self.stem}.schema.json"

    @property
    def example_path(self) -> str:
        return f"{self.topic.name}/{EXAMPLES_DIR}/{self.stem}.json"

    @property
    def schema_id(self) -> str:
        return BASE_URI + self.schema_path


def message_types(registry: MessageRegistry = CONTRACT) -> list[MessageType]:
    """Every message type of every catalogued topic, by topic (catalogue order) then type name."""
    result: list[MessageType] = []
    for topic in CATALOGUE:
        found: list[MessageType] = []
        if topic.name == TopicName.ARI_EVENTS:
            found.append(
                MessageType(
                    topic=topic,
                    type=ARI_EVENT_TYPE,
                    version=ARI_EVENT_VERSION,
                    title=str(ARI_EVENT_JSON_SCHEMA["title"]),
                    summary="An ARI event exactly as Asterisk sent it (the value is Asterisk's bytes, untouched).",
                    body_schema=json.loads(json.dumps(ARI_EVENT_JSON_SCHEMA)),
                    old_versions=tuple(registry.old_versions(ARI_EVENT_TYPE)),
                    model=None,
                )
            )
        for model in registry.models(topic.name):
            found.append(
                MessageType(
                    topic=topic,
                    type=model.TYPE,
                    version=model.VERSION,
                    title=model.__name__,
                    summary=_first_line(model.__doc__),
                    body_schema=body_schema(model),
                    old_versions=tuple(registry.old_versions(model.TYPE)),
                    model=model,
                )
            )
        result.extend(sorted(found, key=lambda m: m.type))
    return result


def body_schema(model: type[Body]) -> dict[str, Any]:
    """JSON Schema of a body as consumers validate it, with its tag fields required (see the module doc)."""
    schema = model.model_json_schema(mode="validation")
    _require_tags(schema)
    for definition in schema.get("$defs", {}).values():
        _require_tags(definition)
    return schema


def _require_tags(schema: dict[str, Any]) -> None:
    """A property that is a single constant is a union tag: producers always send it, so require it."""
    properties: dict[str, Any] = schema.get("properties", {})
    tags = [name for name, prop in properties.items() if "const" in prop]
    if not tags:
        return
    required: list[str] = schema.setdefault("required", [])
    for name in reversed(tags):
        if name not in required:
            required.insert(0, name)


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


def record_key_field(message: MessageType) -> str:
    """Which envelope field is the record key of this message type: `pbx_id` or `tenant`.

    On cms.commands (keyed by pbx_id or tenant), commands about an agent (they all name one: login, pause,
    transfers, click-to-call, ...) go to that agent's PBX; campaigns, leads and do-not-call lists are the
    tenant's.
    """
    if message.topic.key == Key.PBX_ID:
        return "pbx_id"
    if message.topic.key == Key.TENANT:
        return "tenant"
    about_an_agent = message.model is not None and "agent_id" in message.model.model_fields
    return "pbx_id" if about_an_agent else "tenant"


# --------------------------------------------------------------------------------------------------------------
# Examples: one realistic record per message type, built through the models (valid by construction) and encoded
# with the real encoder. Ids and times are fixed so that the files are byte-stable.

# 2024-11-27 09:33:20 UTC, i.e. epoch 1732700000: the time of the ARI channel ids below.
T0 = datetime(2024, 11, 27, 9, 33, 20, tzinfo=UTC)
TENANT = "acme"
PBX = "pbx-01"
ASTERISK_ID = "52:54:00:3a:7c:01"
CALLER = "+14155550123"
DID = "+18005550100"
CALLER_CHANNEL = "1732700000.1234"
AGENT_CHANNEL = "1732700012.1240"
CALL_ID = f"{PBX}:{CALLER_CHANNEL}"
AGENT = "agent-1042"
QUEUE = "support-en"
CAMPAIGN = "collections-nov"


@dataclass(frozen=True)
class Example:
    """An example body and the envelope fields a real producer would give it."""

    body: AnyBody
    producer: str
    pbx_id: str | None = PBX
    causation_id: str | None = None
    seq: int | None = None
    after_ms: int = 0  # produced_at = T0 + after_ms


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _ari_time(moment: datetime) -> str:
    """Asterisk's own timestamp format: milliseconds and a numeric UTC offset."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _ari_channel(channel_id: str, name: str, state: str, caller: str, exten: str, created: datetime,
                 app_data: str) -> dict[str, Any]:
    """A Channel object as ARI returns it (api-docs/channels.json), as Asterisk 20+ sends it."""
    return {
        "id": channel_id,
        "name": name,
        "state": state,
        "protocol_id": f"{uuid.uuid5(uuid.NAMESPACE_DNS, channel_id).hex}@203.0.113.45:5060",
        "caller": {"name": "", "number": caller},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": "from-carrier", "exten": exten, "priority": 1, "app_name": "Stasis",
                     "app_data": app_data},
        "creationtime": _ari_time(created),
        "language": "en",
    }


def _stasis_start() -> RawAriEvent:
    event = {
        "type": "StasisStart",
        "timestamp": _ari_time(_t(0.412)),
        "args": ["inbound", TENANT],
        "channel": _ari_channel(CALLER_CHANNEL, "PJSIP/carrier-a-00000a3f", "Ring", CALLER, DID, _t(0.398),
                                f"callstream,inbound,{TENANT}"),
        "asterisk_id": ASTERISK_ID,
        "application": "callstream",
    }
    return RawAriEvent.checked(orjson.dumps(event))


def examples() -> dict[str, Example]:
    """One example per message type, by type name."""
    # Producer ids as ServiceSettings.producer_id makes them: service/instance.
    gateway = f"ari-gateway/gw-{PBX}-1"
    router = "router/router-2-1"
    agent_state = "agent-state/agent-state-0-1"
    dialer_ = "dialer/dialer-1-1"
    cms_ = "cms/cms-api-1"
    caller_channel = _ari_channel(CALLER_CHANNEL, "PJSIP/carrier-a-00000a3f", "Up", CALLER, DID, _t(0.398),
                                  f"callstream,inbound,{TENANT}")
    from_event = "ari.events/7/1048576"
    bodies: list[Example] = [
        # ari.events
        Example(_stasis_start(), gateway, seq=481517, after_ms=415),
        Example(GatewayConnected(gateway_id=f"gw-{PBX}", asterisk_id=ASTERISK_ID, asterisk_version="22.5.2",
                                 application="callstream", connection=2, last_seq_before=481516,
                                 disconnected_at=_t(-3.2)), gateway, seq=481517),
        Example(GatewayDisconnected(gateway_id=f"gw-{PBX}", asterisk_id=ASTERISK_ID, last_seq=481516,
                                    reason="websocket closed: 1006 abnormal closure"), gateway, seq=481516),
        Example(GatewaySnapshot(
            gateway_id=f"gw-{PBX}", asterisk_id=ASTERISK_ID, connection=2, taken_at=_t(0.05),
            channels=[caller_channel],
            bridges=[{"id": f"hold-{QUEUE}", "technology": "holding_bridge", "bridge_type": "holding",
                      "bridge_class": "stasis", "creator": "Stasis", "name": f"hold-{QUEUE}",
                      "channels": [CALLER_CHANNEL], "creationtime": _ari_time(_t(-3600)),
                      "video_mode": "talker"}],
            endpoints=[{"technology": "PJSIP", "resource": "1042", "state": "online", "channel_ids": []}],
        ), gateway, seq=481518, after_ms=90),
        Example(GatewayEntityChanged(gateway_id=f"gw-{PBX}", previous_asterisk_id=ASTERISK_ID,
                                     asterisk_id="52:54:00:9e:21:07"), gateway, seq=481519, after_ms=160),
        # ari.commands and ari.command-results
        Example(commands.AriCommand(
            command_id="ari.events:7:1048590:originate", expires_at=_t(27),
            operation=commands.Originate(
                channel_id=AGENT_CHANNEL, endpoint="PJSIP/1042", app="callstream",
                app_args=f"agent,{CALL_ID}", caller_id=f'"Acme support" <{CALLER}>', timeout_s=20,
                originator=CALLER_CHANNEL, variables={"CALLSTREAM_CALL_ID": CALL_ID}),
        ), router, causation_id="ari.events/7/1048590", after_ms=12_004),
        Example(commands.AriCommandResult(
            command_id="ari.events:7:1048590:originate", op="originate", outcome="ok", ari_status=200,
            ari_body={"id": AGENT_CHANNEL, "name": "PJSIP/1042-00000a41", "state": "Down",
                      "caller": {"name": "Acme support", "number": CALLER},
                      "connected": {"name": "", "number": ""}, "accountcode": "",
                      "dialplan": {"context": "default", "exten": "s", "priority": 1, "app_name": "",
                                   "app_data": ""},
                      "creationtime": _ari_time(_t(12.021)), "language": "en"},
            executed_at=_t(12.009), duration_ms=18.7,
        ), gateway, causation_id="ari.commands/7/20931", after_ms=12_031),
        # calls
        Example(calls.CallQueued(call_id=CALL_ID, at=_t(0.412), queue_id=QUEUE, caller_number=CALLER,
                                 caller_name="JANE DOE", did=DID, channel_id=CALLER_CHANNEL,
                                 waiting_since=_t(0.412)), router, causation_id=from_event, after_ms=431),
        Example(calls.CallOffered(call_id=CALL_ID, at=_t(12.0), queue_id=QUEUE, agent_id=AGENT,
                                  agent_channel_id=AGENT_CHANNEL, endpoint="PJSIP/1042", attempt=1),
                router, causation_id="ari.events/7/1048590", after_ms=12_003),
        Example(calls.CallAgentMissed(call_id=CALL_ID, at=_t(32.0), queue_id=QUEUE, agent_id="agent-1017",
                                      reason="no_answer"), router, causation_id="ari.events/7/1048702",
                after_ms=32_005),
        Example(calls.CallAnswered(call_id=CALL_ID, at=_t(15.0), queue_id=QUEUE, agent_id=AGENT,
                                   bridge_id=f"call-{CALLER_CHANNEL}", wait_s=14.588),
                router, causation_id="ari.events/7/1048611", after_ms=15_004),
        Example(calls.CallAbandoned(call_id=CALL_ID, at=_t(48.6), queue_id=QUEUE, wait_s=48.188,
                                    while_ringing_agent=AGENT), router, causation_id="ari.events/7/1048755",
                after_ms=48_606),
        Example(calls.CallTransferred(call_id=CALL_ID, at=_t(201.5), kind="blind_queue", from_agent_id=AGENT,
                                      from_queue_id=QUEUE, to_queue_id="billing-en"),
                router, causation_id="cms.commands/7/5521", after_ms=201_507),
        Example(calls.CallOverflowed(call_id=CALL_ID, at=_t(120.4), from_queue_id=QUEUE,
                                     to_queue_id="support-overflow", action="queue", wait_s=120.0),
                router, causation_id="ari.events/7/1048690", after_ms=120_402),
        Example(calls.CallEnded(call_id=CALL_ID, at=_t(327.4), queue_id=QUEUE, agent_id=AGENT,
                                outcome="completed", hangup_by="caller", talk_s=312.4, hold_s=25.0, cause=16),
                router, causation_id="ari.events/7/1049003", after_ms=327_411),
        # agents
        Example(agents.AgentLoggedIn(agent_id=AGENT, at=_t(-1800), session_id="s-20241127-agent-1042",
                                     endpoint="PJSIP/1042", station="F3-R12-S07"),
                agent_state, causation_id="cms.commands/7/4410", after_ms=-1_799_990),
        Example(agents.AgentLoggedOut(agent_id=AGENT, at=_t(28_800), session_id="s-20241127-agent-1042",
                                      reason="shift_end"), agent_state, after_ms=28_800_004),
        Example(agents.AgentStateChanged(agent_id=AGENT, at=_t(15.0), state=agents.AgentState.ON_CALL,
                                         previous_state=agents.AgentState.RINGING, call_id=CALL_ID),
                agent_state, causation_id="calls/7/88212", after_ms=15_009),
        Example(agents.AgentSkillsChanged(agent_id=AGENT, at=_t(-600),
                                          skills={"billing": 3, "english": 5, "spanish": 2}),
                agent_state, causation_id="cms.commands/7/4502", after_ms=-599_994),
        Example(agents.AgentReassigned(agent_id=AGENT, at=_t(3600), from_pbx_id=PBX, to_pbx_id="pbx-04"),
                agent_state, causation_id="cms.commands/7/5830", after_ms=3_600_006),
        # cms.commands
        Example(cms.AgentLogin(command_id="cms-7f3c2a91", requested_at=_t(-1800.2), agent_id=AGENT,
                               endpoint="PJSIP/1042", station="F3-R12-S07"), cms_, after_ms=-1_800_190),
        Example(cms.AgentLogout(command_id="cms-7f3c2b07", requested_at=_t(28_799.8), agent_id=AGENT),
                cms_, after_ms=28_799_810),
        Example(cms.AgentPause(command_id="cms-7f3c2a95", requested_at=_t(900), agent_id=AGENT,
                               reason="coffee"), cms_, after_ms=900_008),
        Example(cms.AgentUnpause(command_id="cms-7f3c2a96", requested_at=_t(1200), agent_id=AGENT),
                cms_, after_ms=1_200_008),
        Example(cms.AgentEndWrapUp(command_id="cms-7f3c2a99", requested_at=_t(340), agent_id=AGENT),
                cms_, after_ms=340_007),
        Example(cms.AgentSetSkills(command_id="cms-7f3c2a93", requested_at=_t(-600.1), agent_id=AGENT,
                                   skills={"billing": 3, "english": 5, "spanish": 2}), cms_, after_ms=-600_090),
        Example(cms.AgentReassign(command_id="cms-7f3c2b01", requested_at=_t(3599.9), agent_id=AGENT,
                                  to_pbx_id="pbx-04"), cms_, after_ms=3_599_910),
        Example(cms.TransferBlind(command_id="cms-7f3c2a97", requested_at=_t(201.4), agent_id=AGENT,
                                  call_id=CALL_ID, to_queue_id="billing-en"), cms_, after_ms=201_410),
        Example(cms.TransferAttendedStart(command_id="cms-7f3c2a98", requested_at=_t(150), agent_id=AGENT,
                                          call_id=CALL_ID, to_extension="2044"), cms_, after_ms=150_006),
        Example(cms.TransferAttendedFinish(command_id="cms-7f3c2a9a", requested_at=_t(185), agent_id=AGENT,
                                           call_id=CALL_ID, action="complete"), cms_, after_ms=185_006),
        Example(cms.ClickToCall(command_id="cms-7f3c2a9c", requested_at=_t(400), agent_id=AGENT,
                                number="+12125550187", lead_id="lead-558201", caller_id=DID),
                cms_, after_ms=400_006),
        Example(cms.CampaignUpsert(command_id="cms-7f3c2a01", requested_at=_t(-7200), campaign_id=CAMPAIGN,
                                   name="Collections, November", mode="predictive", queue_id="collections",
                                   caller_id=DID, max_abandon_rate=0.03, max_attempts_per_lead=4,
                                   retry_after_s={"busy": 900, "no_answer": 3600, "machine": 14_400},
                                   window_start="09:00", window_end="20:00"),
                cms_, pbx_id=None, after_ms=-7_199_990),
        Example(cms.LeadsBatch(command_id="cms-7f3c2a02", requested_at=_t(-7100), campaign_id=CAMPAIGN,
                               batch_id="batch-20241127-01",
                               leads=[cms.Lead(lead_id="lead-558201", numbers=["+12125550187", "+12125550142"],
                                               timezone="America/New_York", priority=10),
                                      cms.Lead(lead_id="lead-558202", numbers=["+13125550163"],
                                               timezone="America/Chicago")]),
                cms_, pbx_id=None, after_ms=-7_099_990),
        Example(cms.DoNotCall(command_id="cms-7f3c2a03", requested_at=_t(-7000), action="add",
                              numbers=["+12125550199", "+13125550111"]), cms_, pbx_id=None, after_ms=-6_999_990),
        # dialer.events
        Example(dialer.AttemptStarted(campaign_id=CAMPAIGN, at=_t(60), attempt_id="att-558201-2",
                                      lead_id="lead-558201", number="+12125550187", pbx_id=PBX, attempt=2),
                dialer_, pbx_id=None, causation_id="cms.commands/3/771", after_ms=60_004),
        Example(dialer.AttemptFinished(campaign_id=CAMPAIGN, at=_t(97.3), attempt_id="att-558201-2",
                                       lead_id="lead-558201", outcome="answered", agent_id=AGENT,
                                       call_id=f"{PBX}:1732700060.1301", ring_s=11.2, talk_s=0),
                dialer_, pbx_id=None, causation_id="calls/7/88450", after_ms=97_306),
        Example(dialer.LeadCompleted(campaign_id=CAMPAIGN, at=_t(412), lead_id="lead-558201",
                                     disposition="promise_to_pay", attempts=2),
                dialer_, pbx_id=None, causation_id="cms.commands/3/802", after_ms=412_005),
        Example(dialer.CampaignStatus(campaign_id=CAMPAIGN, at=_t(300), state="running", dial_ratio=1.8,
                                      abandon_rate_30d=0.021, leads_remaining=18_342),
                dialer_, pbx_id=None, after_ms=300_001),
    ]
    result: dict[str, Example] = {}
    for example in bodies:
        type_name = ARI_EVENT_TYPE if isinstance(example.body, RawAriEvent) else example.body.TYPE
        if type_name in result:
            raise ValueError(f"two examples of {type_name}")
        result[type_name] = example
    return result


def example_record(message: MessageType, example: Example) -> dict[str, Any]:
    """The example as a record: key, headers (text) and value (the body as JSON), through the real encoder."""
    envelope = new_envelope(
        example.body,
        tenant=TENANT,
        producer=example.producer,
        pbx_id=example.pbx_id,
        causation_id=example.causation_id,
        seq=example.seq,
        message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, BASE_URI + message.example_path)),
    )
    # produced_at is stamped with the clock; fix it so the file is stable.
    produced_at = T0 + timedelta(milliseconds=example.after_ms, microseconds=207)
    envelope = envelope.model_copy(update={"produced_at": produced_at})
    headers, value = encode(envelope)
    text_headers = {name: raw.decode() for name, raw in headers}
    key = text_headers.get(record_key_field(message))
    if key is None:
        raise ValueError(f"example of {message.type} has no {record_key_field(message)} for its record key")
    return {"key": key, "headers": text_headers, "value": json.loads(value)}


# --------------------------------------------------------------------------------------------------------------
# The files


def envelope_schema() -> dict[str, Any]:
    """JSON Schema of the record headers, derived from the Envelope model (all header values are text)."""
    fields = Envelope[Any].model_json_schema()["properties"]
    properties: dict[str, Any] = {}
    for name in ENVELOPE_HEADERS:
        field = dict(fields[name])
        branches = [b for b in field.get("anyOf", [field]) if b.get("type") != "null"]
        (value,) = branches
        header: dict[str, Any] = {"type": "string"}
        if field.get("description"):
            header["description"] = field["description"]
        if value["type"] == "integer":
            # Written with str(int): decimal digits, no sign, no leading zero.
            header["pattern"] = "^[1-9][0-9]*$" if value.get("minimum", 0) >= 1 else "^(0|[1-9][0-9]*)$"
        elif value["type"] == "string":
            for keyword in ("minLength", "maxLength", "pattern", "format"):
                if keyword in value:
                    header[keyword] = value[keyword]
        else:
            raise TypeError(f"envelope field {name} of type {value['type']} has no header form")
        properties[name] = header
    properties["produced_at"]["description"] += " ISO 8601 in UTC with microseconds."
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": BASE_URI + ENVELOPE_FILE,
        "title": "Envelope",
        "description": (
            "The envelope of every callstream message: the Kafka record headers, as UTF-8 text. The record value "
            "is the body alone (see the per-type schemas). Other headers may be present (a dead-lettered record "
            "gains dlq.* headers) and are ignored by the envelope."
        ),
        "type": "object",
        "required": list(REQUIRED_HEADERS),
        "properties": properties,
        "additionalProperties": {"type": "string"},
    }


def type_schema(message: MessageType) -> dict[str, Any]:
    source = (
        "callstream_common.messages.ari.ARI_EVENT_JSON_SCHEMA" if message.model is None
        else f"{message.model.__module__}.{message.model.__qualname__}"
    )
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": message.schema_id,
        "$comment": f"Generated from {source}, version {message.version}: do not edit, run `make schemas`.",
        **message.body_schema,
    }


def topic_entry(topic: TopicSpec, messages: Sequence[MessageType]) -> dict[str, Any]:
    return {
        "name": str(topic.name),
        "key": str(topic.key),
        "partitions": topic.partitions(),
        "pbx_scoped": topic.pbx_scoped,
        "retention_ms": topic.retention_ms,
        "cleanup_policy": topic.cleanup_policy,
        "producers": list(topic.producers),
        "consumers": list(topic.consumers),
        "description": topic.description,
        "dead_letter_topic": {
            "name": dlq_name(topic.name),
            "partitions": topic.partitions(),
            "retention_ms": DLQ_RETENTION_MS,
            "cleanup_policy": "delete",
        },
        "messages": [
            {
                "type": m.type,
                "version": m.version,
                "old_versions": list(m.old_versions),
                "key": record_key_field(m),
                "schema": f"{m.stem}.schema.json",
                "example": f"{EXAMPLES_DIR}/{m.stem}.json",
            }
            for m in messages
        ],
    }


def asyncapi_document(messages: Sequence[MessageType]) -> dict[str, Any]:
    """One AsyncAPI 3.0 document: a channel per topic and per dead-letter topic, operations per service."""
    by_topic = {topic.name: [m for m in messages if m.topic.name == topic.name] for topic in CATALOGUE}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for topic in CATALOGUE:
        topic_messages = by_topic[topic.name]
        dlq = dlq_name(topic.name)
        channels[str(topic.name)] = {
            "address": str(topic.name),
            "title": str(topic.name),
            "description": f"{topic.description} Record key: {topic.key}.",
            "messages": {m.type: {"$ref": f"#/components/messages/{m.stem}"} for m in topic_messages},
            "bindings": _kafka_channel_binding(topic.partitions(), topic.retention_ms, topic.cleanup_policy),
        }
        channels[dlq] = {
            "address": dlq,
            "title": dlq,
            "description": (
                f"Dead letters of {topic.name}: records its consumers could not process, with headers and value "
                "unchanged and dlq.* headers saying why. Nothing is dropped silently."
            ),
            "messages": {DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}},
            "bindings": _kafka_channel_binding(topic.partitions(), DLQ_RETENTION_MS, "delete"),
        }
        for service in topic.producers:
            operations[f"{service}.send.{topic.name}"] = _operation("send", service, str(topic.name),
                                                                   [m.type for m in topic_messages])
        for service in topic.consumers:
            operations[f"{service}.receive.{topic.name}"] = _operation("receive", service, str(topic.name),
                                                                      [m.type for m in topic_messages])
        for service in topic.consumers:
            operations[f"{service}.send.{dlq}"] = _operation("send", service, dlq, [DEAD_LETTER_MESSAGE])
    message_components: dict[str, Any] = {}
    for m in messages:
        message_components[m.stem] = {
            "name": m.type,
            "title": m.title,
            **({"summary": m.summary} if m.summary else {}),
            "contentType": "application/json",
            "headers": {
                "schemaFormat": ASYNCAPI_SCHEMA_FORMAT,
                "schema": {
                    "allOf": [
                        {"$ref": ENVELOPE_FILE},
                        {"properties": {"type": {"const": m.type}, "schema_version": {"const": str(m.version)}}},
                    ]
                },
            },
            "payload": {"schemaFormat": ASYNCAPI_SCHEMA_FORMAT, "schema": {"$ref": m.schema_path}},
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": f"The envelope's {record_key_field(m)}."},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
    message_components[DEAD_LETTER_MESSAGE] = {
        "name": DEAD_LETTER_MESSAGE,
        "title": "Dead letter",
        "summary": "A record that could not be processed, as it was read, with the reason in dlq.* headers.",
        "headers": {
            "schemaFormat": ASYNCAPI_SCHEMA_FORMAT,
            "schema": dead_letter_headers_schema(),
        },
        "payload": {
            "schemaFormat": ASYNCAPI_SCHEMA_FORMAT,
            "schema": {"description": "The source record's value, byte for byte; it may not even be JSON."},
        },
    }
    components["messages"] = message_components
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "callstream",
            "version": metadata.version("callstream-common"),
            "description": (
                "The Kafka topics of callstream, a contact-center platform over Asterisk. Every record carries "
                "the envelope in its headers (envelope.schema.json) and the body alone in its value; the "
                "`type` and `schema_version` headers say which schema the value follows. Generated from the "
                "models by `make schemas`: do not edit."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": LOCAL_KAFKA,
                "protocol": "kafka",
                "description": "Kafka of the local stack (make stack-up) or of compose.yaml, from the host.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": components,
    }


def dead_letter_headers_schema() -> dict[str, Any]:
    """Headers of a dead-lettered record: the source's, unchanged, and the dlq.* ones (kafka/dlq.py)."""
    explained = {
        dlq.H_REASON: (f"Why it could not be processed (at most {dlq.MAX_REASON_BYTES} bytes).", {}),
        dlq.H_SOURCE_TOPIC: ("The topic it was read from.", {}),
        dlq.H_SOURCE_PARTITION: ("Its partition there.", {"pattern": "^(0|[1-9][0-9]*)$"}),
        dlq.H_SOURCE_OFFSET: ("Its offset there.", {"pattern": "^(0|[1-9][0-9]*)$"}),
        dlq.H_SERVICE: ("The service that dead-lettered it.", {}),
        dlq.H_AT: ("When it was dead-lettered, ISO 8601 in UTC.", {"format": "date-time"}),
    }
    return {
        "type": "object",
        "description": (
            "The source record's headers, unchanged (the envelope itself may be what was invalid, so it is not "
            "required here), plus the dlq.* headers."
        ),
        "required": list(explained),
        "properties": {
            name: {"type": "string", "description": text, **extra} for name, (text, extra) in explained.items()
        },
        "additionalProperties": {"type": "string"},
    }


def _kafka_channel_binding(partitions: int, retention_ms: int, cleanup_policy: str) -> dict[str, Any]:
    return {
        "kafka": {
            "partitions": partitions,
            "topicConfiguration": {"cleanup.policy": [cleanup_policy], "retention.ms": retention_ms},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _operation(action: str, service: str, channel: str, message_ids: Iterable[str]) -> dict[str, Any]:
    verb = "produces to" if action == "send" else "consumes"
    if channel.endswith(".dlq"):
        verb = "dead-letters into"
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "title": f"{service} {verb} {channel}",
        "messages": [{"$ref": f"#/channels/{channel}/messages/{mid}"} for mid in message_ids],
    }


def readme(messages: Sequence[MessageType]) -> str:
    rows = []
    for topic in CATALOGUE:
        types = ", ".join(f"`{m.type}` v{m.version}" for m in messages if m.topic.name == topic.name)
        rows.append(
            f"| [{topic.name}]({topic.name}/{TOPIC_FILE}) | {topic.key} | {topic.partitions()} | "
            f"{topic.retention_ms // 86_400_000} d | {', '.join(topic.producers)} | "
            f"{', '.join(topic.consumers)} | {types} |"
        )
    table = "\n".join(rows)
    hints = "; ".join(f"`{m.type}`: its `{m.model.HINT_FIELD}`" for m in messages
                      if m.model is not None and m.model.HINT_FIELD is not None)
    return f"""# schemas/: the published contract of callstream's topics

Generated from the message models (`libs/common/src/callstream_common/messages/`) and the topic catalogue
(`topics.py`) by `make schemas`. Do not edit by hand: the tests (tests/test_contract.py) fail when the models
and these files drift apart, and check that every example validates against its schemas and decodes.

## Wire format
A message is one Kafka record:
- **headers**: the envelope, as UTF-8 text (`{ENVELOPE_FILE}`): `schema_version`, `message_id`, `type`,
  `tenant`, `produced_at`, `producer`, and optionally `pbx_id`, `causation_id`, `seq`;
- **value**: the body alone, JSON, following `<topic>/<type>.v<schema_version>.schema.json`. A raw ARI event
  (`ari.event`) is Asterisk's JSON byte for byte, never re-encoded;
- **key**: the envelope's `pbx_id` on PBX-scoped topics (so one PBX's traffic stays in order on one
  partition, and the PBX-scoped topics are co-partitioned), `tenant` on tenant-keyed ones. On `cms.commands`,
  commands about an agent are keyed by pbx_id, campaign, lead and do-not-call commands by tenant.

Two more headers, outside the envelope, let a consumer pass over records it does not want without parsing the
value: `ari_type` on a raw ARI event (its ARI type), and `hint` on the types whose body names a hint field
({hints}).
Consumers accept records without them and judge those after decoding.

A consumer routes on the `type` and `schema_version` headers without parsing the value. A record that cannot
be decoded goes, unchanged, to the topic's dead-letter topic `<topic>.dlq`, with `dlq.*` headers giving the reason.
Topic names here are the contract's; a deployment may configure a prefix (`<prefix>.<topic>`) for all of them.

## Layout
- `{ENVELOPE_FILE}`: JSON Schema (2020-12) of the headers;
- `<topic>/{TOPIC_FILE}`: the catalogue entry: key, partitions, retention, producers, consumers, dead-letter
  topic, and the message types with their versions;
- `<topic>/<type>.v<N>.schema.json`: JSON Schema of the body. It describes what consumers accept (pydantic's
  validation mode); the tag fields `type` (and `op` in `ari.command`) are required, as every producer sends them;
- `<topic>/{EXAMPLES_DIR}/<type>.v<N>.json`: one realistic record `{{"key", "headers", "value"}}`, encoded by the
  real encoder and checked by the tests against the schemas and the decoder;
- `{ASYNCAPI_FILE}`: AsyncAPI 3.0 document of every topic and dead-letter topic, with each service's operations.

## Versions and upcasting
A published `(type, version)` never changes meaning. A change to a body is a new version: the model's `VERSION`
goes up and an upcaster from the previous version is registered (`CONTRACT.upcaster(type, old)`). Consumers
decode old records by upcasting them step by step to the current version, so replays of old data keep working.
The generator never rewrites or deletes the files of an old version (`<type>.v<N>` with N below the current
one); `--check` fails when such a file is missing, when a current schema differs from the models, or when a
file names a version the registry does not know.

## Regenerate
    make schemas
    # or: .venv/bin/python -m callstream_common.contract.generate --out schemas [--check]

## Topics
| topic | key | partitions | retention | producers | consumers | message types |
|---|---|---|---|---|---|---|
{table}
"""


def dump_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def dump_yaml(data: Any) -> bytes:
    # Insertion order is already deterministic (catalogue order, sorted types); keep it for readability.
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)
    return text.encode()


def render(registry: MessageRegistry = CONTRACT) -> dict[str, bytes]:
    """Every generated file, by path relative to the schemas folder (POSIX separators)."""
    messages = message_types(registry)
    known_examples = examples()
    missing = [m.type for m in messages if m.type not in known_examples]
    if missing:
        raise LookupError(f"no example for message type(s) {', '.join(missing)}: add one to examples()")
    files: dict[str, bytes] = {ENVELOPE_FILE: dump_json(envelope_schema())}
    for topic in CATALOGUE:
        topic_messages = [m for m in messages if m.topic.name == topic.name]
        files[f"{topic.name}/{TOPIC_FILE}"] = dump_json(topic_entry(topic, topic_messages))
        for m in topic_messages:
            files[m.schema_path] = dump_json(type_schema(m))
            files[m.example_path] = dump_json(example_record(m, known_examples[m.type]))
    files[ASYNCAPI_FILE] = dump_yaml(asyncapi_document(messages))
    files[README_FILE] = readme(messages).encode()
    return files


def differences(out: Path, registry: MessageRegistry = CONTRACT) -> list[str]:
    """How `out` differs from what would be generated, one line per file; empty when it is up to date."""
    expected = render(registry)
    messages = {m.type: m for m in message_types(registry)}
    topics = {str(t.name) for t in CATALOGUE}
    problems: list[str] = []
    for rel, content in expected.items():
        path = out / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.read_bytes() != content:
            problems.append(f"{rel}: differs from what the models generate")
    for m in messages.values():
        for version in m.old_versions:
            for rel in (f"{m.topic.name}/{m.type}.v{version}.schema.json",
                        f"{m.topic.name}/{EXAMPLES_DIR}/{m.type}.v{version}.json"):
                if not (out / rel).is_file():
                    problems.append(f"{rel}: missing file of published version {version} (restore it from git)")
    if out.is_dir():
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            rel = path.relative_to(out).as_posix()
            if rel in expected:
                continue
            reason = _unexpected(rel, topics, messages)
            if reason:
                problems.append(f"{rel}: {reason}")
    return sorted(problems)


def _unexpected(rel: str, topics: set[str], messages: Mapping[str, MessageType]) -> str | None:
    """Why a file that is not generated should not be there, or None for a kept file of an old version."""
    parts = rel.split("/")
    if parts[0] not in topics:
        return "unexpected file (not a catalogued topic)"
    in_examples = len(parts) == 3 and parts[1] == EXAMPLES_DIR
    if len(parts) != 2 and not in_examples:
        return "unexpected file"
    match = _VERSIONED_FILE.match(parts[-1])
    if match is None or (match["suffix"] == ".json") != in_examples:
        return "unexpected file"
    message = messages.get(match["type"])
    version = int(match["version"])
    if message is None or message.topic.name != parts[0]:
        return f"unexpected file: no message type {match['type']} on {parts[0]}"
    if version not in message.old_versions:
        return f"unexpected file: {match['type']} has no version {version} (current v{message.version})"
    return None


def write(out: Path, registry: MessageRegistry = CONTRACT) -> list[str]:
    """Write every generated file whose content changed; returns the paths written. Deletes nothing."""
    written = []
    for rel, content in render(registry).items():
        path = out / rel
        if path.is_file() and path.read_bytes() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(rel)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m callstream_common.contract.generate",
        description="Generate schemas/ (JSON Schemas, examples, AsyncAPI) from the message models.",
    )
    parser.add_argument("--out", type=Path, default=Path("schemas"), help="the schemas folder (default: schemas)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and list the files that differ from what would be generated")
    args = parser.parse_args(argv)
    out: Path = args.out
    try:
        if not args.check:
            for rel in write(out):
                print(f"wrote {out / rel}")
        problems = differences(out)
    except LookupError as exc:  # a message type without an example
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if problems:
        print(f"{out} is not what the models generate:", file=sys.stderr)
        for line in problems:
            print(f"  {out}/{line}", file=sys.stderr)
        print("run `make schemas`; files of old versions and unknown files are never changed by it",
              file=sys.stderr)
        return 1
    if args.check:
        print(f"{out} is up to date with the models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
