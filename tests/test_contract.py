"""The published contract in schemas/: in step with the models, examples valid and decodable, AsyncAPI sound.

Pure tests: they read the checked-in files and call the generator's functions, nothing else.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from callstream_common.codec import Codec, encode
from callstream_common.contract import generate
from callstream_common.contract.generate import MessageType
from callstream_common.envelope import H_SCHEMA_VERSION
from callstream_common.messages import CONTRACT
from callstream_common.messages.ari import ARI_EVENT_TYPE
from callstream_common.topics import CATALOGUE, TopicName, dlq_name

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
EXAMPLE_FILES = sorted(SCHEMAS.glob(f"*/{generate.EXAMPLES_DIR}/*.json"))
SCHEMA_FILES = sorted(SCHEMAS.rglob("*.schema.json"))
EXAMPLE_NAME = re.compile(r"^(?P<type>.+)\.v(?P<version>[0-9]+)\.json$")
# Keys of AsyncAPI's maps (channels, operations, components) must match this (AsyncAPI 3.0, Components Object).
ASYNCAPI_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rel(path: Path) -> str:
    return path.relative_to(SCHEMAS).as_posix()


@cache
def _messages() -> dict[str, MessageType]:
    return {m.type: m for m in generate.message_types()}


@cache
def _asyncapi() -> dict[str, Any]:
    document = yaml.safe_load((SCHEMAS / generate.ASYNCAPI_FILE).read_text())
    assert isinstance(document, dict)
    return document


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats only constrain strings
    if not RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper())  # raises on a date that does not exist (02-30, 25:00, ...)
    return True


def _format_checker() -> FormatChecker:
    checker = copy.deepcopy(Draft202012Validator.FORMAT_CHECKER)
    # jsonschema checks date-time only when the optional rfc3339-validator is installed, and otherwise
    # passes silently: check it here rather than let the envelope's produced_at go unchecked.
    if "date-time" not in checker.checkers:
        checker.checks("date-time", raises=ValueError)(_date_time)
    return checker


FORMATS = _format_checker()


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FORMATS)


# ------------------------------------------------------------------------------------------------------------
# (a) no drift between the models and the checked-in files


def test_checked_in_schemas_match_the_models() -> None:
    problems = generate.differences(SCHEMAS)
    # `make schemas` rewrites current versions; it never touches old versions and never deletes a file.
    assert problems == [], "schemas/ differs from the models (run `make schemas`):\n" + "\n".join(problems)


def test_drift_check_keeps_old_versions_and_rejects_unknown_ones() -> None:
    current = _messages()["call.queued"]
    bumped = dataclasses.replace(current, version=3, old_versions=(1, 2))
    messages = {**_messages(), "call.queued": bumped}
    topics = {str(t.name) for t in CATALOGUE}
    assert generate._unexpected("calls/call.queued.v1.schema.json", topics, messages) is None
    assert generate._unexpected("calls/examples/call.queued.v2.json", topics, messages) is None
    assert "no version 4" in str(generate._unexpected("calls/call.queued.v4.schema.json", topics, messages))
    assert "no version 1" in str(generate._unexpected("calls/call.queued.v1.schema.json", topics, _messages()))
    assert "no message type" in str(generate._unexpected("calls/call.gone.v1.schema.json", topics, messages))
    assert "no message type" in str(generate._unexpected("agents/call.queued.v1.schema.json", topics, messages))
    assert generate._unexpected("calls/notes.txt", topics, messages) == "unexpected file"
    assert generate._unexpected("calls/call.queued.v1.json", topics, messages) == "unexpected file"
    assert "not a catalogued topic" in str(generate._unexpected("billing/x.v1.schema.json", topics, messages))


# ------------------------------------------------------------------------------------------------------------
# (b) every schema is valid JSON Schema and every example validates against its schemas


def test_format_checking_is_on() -> None:
    envelope = _json(SCHEMAS / generate.ENVELOPE_FILE)
    example = _json(EXAMPLE_FILES[0])
    bad = {**example["headers"], "produced_at": "2024-11-27 at 09:33"}
    assert list(_validator(envelope).iter_errors(bad)), "a malformed produced_at passed: formats are not checked"


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=_rel)
def test_schema_is_valid_json_schema_2020_12(path: Path) -> None:
    schema = _json(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == generate.JSON_SCHEMA_DIALECT
    assert schema["$id"] == generate.BASE_URI + _rel(path)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_rel)
def test_example_validates_against_its_schemas(path: Path) -> None:
    example = _json(path)
    assert set(example) == {"key", "headers", "value"}
    envelope = _json(SCHEMAS / generate.ENVELOPE_FILE)
    errors = [e.message for e in _validator(envelope).iter_errors(example["headers"])]
    assert errors == [], "headers do not match envelope.schema.json"
    schema_path = path.parent.parent / path.name.replace(".json", ".schema.json")
    assert schema_path.is_file(), f"no schema {_rel(schema_path)} for this example"
    errors = [f"{e.json_path}: {e.message}" for e in _validator(_json(schema_path)).iter_errors(example["value"])]
    assert errors == [], f"value does not match {_rel(schema_path)}"
    name = EXAMPLE_NAME.match(path.name)
    assert name is not None
    assert example["headers"]["type"] == name["type"]
    assert example["headers"][H_SCHEMA_VERSION] == name["version"]


# ------------------------------------------------------------------------------------------------------------
# (c) every example decodes with the real codec and re-encodes to the same record


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_rel)
def test_example_decodes_and_reencodes(path: Path) -> None:
    example = _json(path)
    topic = TopicName(path.parent.parent.name)
    headers = [(name, value.encode()) for name, value in example["headers"].items()]
    value = json.dumps(example["value"]).encode()

    message = Codec().decode(topic, headers, value)

    current = _messages()[message.type]
    assert message.schema_version == current.version
    out_headers, out_value = encode(message)
    if int(example["headers"][H_SCHEMA_VERSION]) == current.version:
        assert json.loads(out_value) == example["value"]
        assert {k: v.decode() for k, v in out_headers} == example["headers"]
    else:  # an old version: the codec upcast it, and says so in the envelope
        assert {k: v.decode() for k, v in out_headers} == {**example["headers"], H_SCHEMA_VERSION: str(current.version)}
    assert example["key"] == example["headers"][generate.record_key_field(current)]


# ------------------------------------------------------------------------------------------------------------
# (d) every topic and message type has its files, and the AsyncAPI document lists them all


def test_every_registered_type_is_published() -> None:
    registered = {model.TYPE for model in CONTRACT.models()} | {ARI_EVENT_TYPE}
    assert set(_messages()) == registered
    for model in CONTRACT.models():
        assert model.TOPIC in {t.name for t in CATALOGUE}, f"{model.TYPE} is on an uncatalogued topic"


@pytest.mark.parametrize("topic", CATALOGUE, ids=lambda t: str(t.name))
def test_every_topic_has_its_entry_schemas_and_examples(topic: Any) -> None:
    entry = _json(SCHEMAS / str(topic.name) / generate.TOPIC_FILE)
    assert entry["name"] == topic.name
    assert entry["key"] == topic.key
    assert entry["partitions"] == topic.partitions()
    assert entry["retention_ms"] == topic.retention_ms
    assert entry["dead_letter_topic"]["name"] == dlq_name(topic.name)
    expected = sorted(m.type for m in _messages().values() if m.topic.name == topic.name)
    assert expected, f"{topic.name} has no message type"
    assert sorted(m["type"] for m in entry["messages"]) == expected
    for listed in entry["messages"]:
        assert (SCHEMAS / str(topic.name) / listed["schema"]).is_file()
        assert (SCHEMAS / str(topic.name) / listed["example"]).is_file()


def test_asyncapi_lists_every_topic_dead_letter_topic_and_message_type() -> None:
    document = _asyncapi()
    channels = document["channels"]
    for topic in CATALOGUE:
        for name in (str(topic.name), dlq_name(topic.name)):
            assert name in channels, f"no channel {name}"
            assert channels[name]["address"] == name
            assert channels[name]["bindings"]["kafka"]["partitions"] == topic.partitions()
        on_topic = {m.type for m in _messages().values() if m.topic.name == topic.name}
        assert set(channels[str(topic.name)]["messages"]) == on_topic
    components = document["components"]["messages"]
    for message in _messages().values():
        component = components[message.stem]
        assert component["name"] == message.type
        assert component["payload"]["schema"]["$ref"] == message.schema_path
    for topic in CATALOGUE:
        operations = document["operations"]
        for service in topic.producers:
            assert operations[f"{service}.send.{topic.name}"]["action"] == "send"
        for service in topic.consumers:
            assert operations[f"{service}.receive.{topic.name}"]["action"] == "receive"


# ------------------------------------------------------------------------------------------------------------
# (e) the AsyncAPI document is structurally sound. No AsyncAPI 3.0 JSON Schema is installable offline as a
# package here, so this checks the rules that matter to readers and tools: required keys, every $ref
# resolves, every operation names an existing channel and only that channel's messages.


def _refs(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                assert isinstance(value, str), f"{where}: $ref is not a string"
                yield where, value
            else:
                yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{where}/{index}")


def _pointer(document: Any, pointer: str) -> Any:
    """Resolve a JSON pointer ('' or '/a/b'), raising KeyError when it does not."""
    node = document
    for token in pointer.split("/")[1:] if pointer else []:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(pointer)
    return node


def test_asyncapi_top_level() -> None:
    document = _asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] and document["info"]["version"]
    assert set(document) <= {"asyncapi", "id", "info", "servers", "defaultContentType", "channels",
                             "operations", "components"}
    for name, server in document["servers"].items():
        assert server["host"] == generate.LOCAL_KAFKA and server["protocol"] == "kafka", name
    for section in ("channels", "operations"):
        for key in document[section]:
            assert ASYNCAPI_KEY.match(key), f"{section} key {key!r}"
    for key in document["components"]["messages"]:
        assert ASYNCAPI_KEY.match(key), f"components/messages key {key!r}"


def test_asyncapi_every_ref_resolves() -> None:
    document = _asyncapi()
    refs = list(_refs(document))
    assert refs
    unresolved = []
    for where, ref in refs:
        target, _, fragment = ref.partition("#")
        try:
            # A relative file reference is relative to asyncapi.yaml, i.e. to schemas/.
            _pointer(_json(SCHEMAS / target) if target else document, fragment)
        except (OSError, KeyError, IndexError, ValueError):
            unresolved.append(f"{where}: {ref}")
    assert unresolved == [], "$refs that do not resolve:\n" + "\n".join(unresolved)


def test_asyncapi_operations_use_their_channel() -> None:
    document = _asyncapi()
    for name, operation in document["operations"].items():
        assert operation["action"] in {"send", "receive"}, name
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), name
        channel_name = channel_ref.removeprefix("#/channels/")
        channel = document["channels"].get(channel_name)
        assert channel is not None, f"{name}: no channel {channel_name}"
        assert operation["messages"], f"{name} lists no message"
        for message in operation["messages"]:
            prefix = f"{channel_ref}/messages/"
            assert message["$ref"].startswith(prefix), f"{name}: {message['$ref']} is not a message of its channel"
            assert message["$ref"].removeprefix(prefix) in channel["messages"], f"{name}: {message['$ref']}"
    for name, channel in document["channels"].items():
        assert channel["address"] and channel["messages"], name
        for message in channel["messages"].values():
            assert message["$ref"].startswith("#/components/messages/"), name
