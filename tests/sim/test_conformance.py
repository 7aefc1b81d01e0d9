"""The PBX simulator against Asterisk's contract, and the checkers themselves proven able to fail.

The whole suite (`make conformance`) runs once here against a simulator it starts; the other tests feed the
checkers hand-written objects so that a silent checker cannot pass for a conforming simulator.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from callstream_pbx_sim.conformance import run_conformance
from callstream_pbx_sim.conformance.responses import Exchange, ResponseChecker
from callstream_pbx_sim.conformance.sequences import ABSENT, Ev, FlowSpec, Track, check_flow
from callstream_pbx_sim.conformance.swagger import ApiDocs, Validator
from conftest import ROOT

API_DOCS = Path(os.environ.get("CALLSTREAM_ARI_DOCS", ROOT.parent / "shared" / "ari" / "api-docs"))

pytestmark = pytest.mark.skipif(not (API_DOCS / "resources.json").is_file(),
                                reason=f"Asterisk api-docs not found at {API_DOCS}")


@pytest.fixture(scope="module")
def docs() -> ApiDocs:
    return ApiDocs(API_DOCS)


@pytest.fixture(scope="module")
def validator(docs: ApiDocs) -> Validator:
    return Validator(docs)


CHANNEL: dict[str, Any] = {
    "id": "1745335704.8974",
    "name": "PJSIP/mytrunk-0000051d",
    "state": "Ring",
    "protocol_id": "714737594818e7a134e89a154edc34f1@192.0.2.10:5060",
    "caller": {"name": "", "number": "15550001111"},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {"context": "from-trunk", "exten": "6003", "priority": 2, "app_name": "Stasis", "app_data": "hello"},
    "creationtime": "2025-04-22T17:28:24.282+0200",
    "language": "en",
}
STASIS_START: dict[str, Any] = {
    "type": "StasisStart", "timestamp": "2025-04-22T17:28:24.283+0200", "args": [], "channel": CHANNEL,
    "asterisk_id": "00:15:5d:00:2a:0d", "application": "hello",
}


def with_changes(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    if value is ABSENT:
        del node[last]
    else:
        node[last] = value
    return out


# --- the whole suite ------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
async def test_simulator_conforms_to_asterisk() -> None:
    lines: list[str] = []
    result = await run_conformance(API_DOCS, out=lines.append)
    report = "\n".join(lines)
    print(report)
    assert lines[-1] == result.line
    assert result.types >= 30, f"only {result.types} event types exercised\n{report}"
    assert result.violations == [], f"{len(result.violations)} violations\n{report}"


# --- swagger validator ------------------------------------------------------------------------------------------
def test_valid_channel_and_event_pass(validator: Validator) -> None:
    assert validator.validate(CHANNEL, "Channel") == []
    assert validator.validate_message(STASIS_START) == []


def test_missing_required_field(validator: Validator) -> None:
    problems = validator.validate(with_changes(CHANNEL, "protocol_id", ABSENT), "Channel")
    assert len(problems) == 1 and "missing required field 'protocol_id'" in problems[0]


def test_wrong_types(validator: Validator) -> None:
    assert "expected long" in " ".join(validator.validate(with_changes(CHANNEL, "dialplan.priority", "2"), "Channel"))
    assert "expected string" in " ".join(validator.validate(with_changes(CHANNEL, "caller.number", 15550001111), "Channel"))
    # A JSON boolean is not an int, and a number is not a list.
    event = {**STASIS_START, "type": "ChannelDtmfReceived", "digit": "5", "duration_ms": True}
    del event["args"]
    assert any("expected int" in p for p in validator.validate_message(event))
    assert any("List[string]" in p for p in validator.validate_message(with_changes(STASIS_START, "args", "a,b")))
    assert any("expected string" in p for p in validator.validate_message(with_changes(STASIS_START, "args", [1])))


def test_value_outside_allowable_values(validator: Validator) -> None:
    problems = validator.validate(with_changes(CHANNEL, "state", "Talking"), "Channel")
    assert len(problems) == 1 and "allowableValues" in problems[0]
    bridge = {"id": "b", "technology": "softmix", "bridge_type": "conference", "bridge_class": "stasis",
              "creator": "Stasis", "name": "", "channels": [], "creationtime": "2025-04-22T17:28:24.282+0200"}
    assert any("allowableValues" in p for p in validator.validate(bridge, "Bridge"))


def test_unknown_field(validator: Validator) -> None:
    problems = validator.validate(with_changes(CHANNEL, "video", "on"), "Channel")
    assert len(problems) == 1 and "unknown field 'video'" in problems[0]
    assert any("unknown field 'foo'" in p for p in validator.validate_message({**STASIS_START, "foo": 1}))
    # The one documented exception: Asterisk may add max_channels to an Endpoint (NOTES §g).
    endpoint = {"technology": "PJSIP", "resource": "1001", "state": "online", "channel_ids": []}
    assert validator.validate({**endpoint, "max_channels": 1}, "Endpoint") == []
    assert validator.validate({**endpoint, "contacts": []}, "Endpoint") != []


def test_documented_asterisk_exceptions_only(validator: Validator) -> None:
    # Asterisk reports a paused playback as "paused" although Playback.state does not list it; nothing else.
    playback = {"id": "p1", "media_uri": "sound:x", "target_uri": "channel:1.2", "language": "en", "state": "paused"}
    assert validator.validate(playback, "Playback") == []
    recording = {"name": "r", "format": "wav", "target_uri": "channel:1.2", "state": "paused"}
    assert validator.validate(recording, "LiveRecording") == []  # listed for LiveRecording
    assert validator.validate({**recording, "state": "stopped"}, "LiveRecording") != []
    assert validator.validate({**playback, "state": "stopped"}, "Playback") != []


def test_date_format_is_asterisks(validator: Validator) -> None:
    for bad in ("2025-04-22T17:28:24+02:00", "2025-04-22T17:28:24.283+02:00", "2025-04-22 17:28:24.283+0200"):
        assert any("Date" in p for p in validator.validate_message(with_changes(STASIS_START, "timestamp", bad)))


def test_event_hierarchy(validator: Validator) -> None:
    # Fields come from the event's model and from every ancestor (Event: application, timestamp; Message: type).
    assert any("'application'" in p for p in validator.validate_message(with_changes(STASIS_START, "application", ABSENT)))
    assert any("'timestamp'" in p for p in validator.validate_message(with_changes(STASIS_START, "timestamp", ABSENT)))
    assert any("'channel'" in p for p in validator.validate_message(with_changes(STASIS_START, "channel", ABSENT)))
    assert validator.validate_message({**STASIS_START, "type": "NoSuchEvent"}) != []
    assert validator.validate_message({**STASIS_START, "type": "Event"}) != []  # abstract
    assert validator.validate_message({"application": "x"}) != []  # no discriminator
    assert validator.validate_message({"type": "MissingParams", "params": ["app"]}) == []


def test_range_allowable_values(tmp_path: Path) -> None:
    (tmp_path / "resources.json").write_text(json.dumps({"apiVersion": "1", "apis": [{"path": "/api-docs/t.{format}"}]}))
    (tmp_path / "t.json").write_text(json.dumps({"apis": [], "models": {"T": {"id": "T", "properties": {
        "n": {"type": "int", "required": True, "allowableValues": {"valueType": "RANGE", "min": 0, "max": 10}}}}}}))
    v = Validator(ApiDocs(tmp_path))
    assert v.validate({"n": 5}, "T") == []
    assert any("minimum" in p for p in v.validate({"n": -1}, "T"))
    assert any("maximum" in p for p in v.validate({"n": 11}, "T"))


# --- response checker -------------------------------------------------------------------------------------------
def exchange(method: str, path: str, status: int, body: Any = None, **headers: str) -> Exchange:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    hdrs = {"content-type": "application/json"} if body is not None else {}
    hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
    return Exchange(flow="unit", method=method, path=path, query=[], status=status, headers=hdrs, body=raw)


def test_responses(docs: ApiDocs, validator: Validator) -> None:
    check = ResponseChecker(docs, validator).check
    assert check(exchange("GET", "/ari/channels/1.2", 200, CHANNEL)) == []
    assert check(exchange("POST", "/ari/channels/1.2/answer", 204)) == []
    assert check(exchange("GET", "/ari/channels/1.2", 404, {"message": "Channel not found"})) == []
    assert check(exchange("POST", "/ari/channels", 500, {"error": "Allocation failed"})) == []
    # /channels/create is its own operation, not GET/POST of a channel called "create".
    assert check(exchange("POST", "/ari/channels/create", 200, CHANNEL)) == []
    # Failures: body shape, undocumented status, void with a body, wrong success code, missing Location.
    assert check(exchange("GET", "/ari/channels/1.2", 200, {**CHANNEL, "extra": 1})) != []
    assert any("not documented" in p for p in check(exchange("POST", "/ari/channels/1.2/answer", 422, {"message": "x"})))
    assert check(exchange("POST", "/ari/channels/1.2/answer", 204, {"ok": True})) != []
    assert check(exchange("POST", "/ari/channels/1.2/answer", 200)) != []
    assert check(exchange("GET", "/ari/channels/1.2", 404, {"error": "Channel not found"})) != []
    playback = {"id": "p1", "media_uri": "sound:x", "target_uri": "channel:1.2", "state": "queued"}
    assert any("Location" in p for p in check(exchange("POST", "/ari/channels/1.2/play", 201, playback)))
    assert check(exchange("POST", "/ari/channels/1.2/play", 201, playback, location="/playbacks/p1")) == []
    unauth = exchange("GET", "/ari/channels", 401, {"message": "Authentication required"})
    unauth.authenticated = False
    assert any("WWW-Authenticate" in p for p in check(unauth))
    unauth.headers["www-authenticate"] = 'Basic realm="Asterisk REST Interface"'
    assert check(unauth) == []
    # Production Asterisk answers a few undocumented statuses (read in resource_channels.c); only those pass.
    assert check(exchange("POST", "/ari/channels/create", 400, {"message": "Endpoint must be specified"})) == []
    assert check(exchange("POST", "/ari/channels/1.2/answer", 400, {"message": "x"})) != []
    # Paths outside the api-docs and methods a path lacks.
    assert check(exchange("GET", "/ari/nowhere", 404, {"message": "Resource not found"})) == []
    assert check(exchange("GET", "/ari/nowhere", 200, {})) != []
    assert check(exchange("PUT", "/ari/channels", 405, {"message": "Invalid method"})) == []
    assert check(exchange("PUT", "/ari/channels", 404, {"message": "Resource not found"})) != []
    expected = exchange("POST", "/ari/channels/1.2/answer", 204)
    expected.expect = frozenset({409})
    assert any("expected HTTP 409" in p for p in check(expected))


# --- sequence checker -------------------------------------------------------------------------------------------
def test_sequences() -> None:
    spec = FlowSpec("unit", "test", (
        Track("A", "channel", first=True, last=True, once=("StasisStart",), required=(
            Ev("Dial", {"dialstatus": ""}), Ev("ChannelStateChange", {"channel.state": "Up"}), Ev("StasisStart"),
        ), forbidden=(Ev("ChannelCreated"),)),
    ))

    def ev(kind: str, **fields: Any) -> dict[str, Any]:
        key = "peer" if kind == "Dial" else "channel"
        state = fields.pop("state", "Down")
        return {"type": kind, "application": "app", key: {"id": "a1", "state": state}, **fields}

    good = [ev("Dial", dialstatus=""), ev("ChannelStateChange", state="Up"), ev("StasisStart", state="Up")]
    bindings = {"A": "a1", "APP": "app"}
    assert check_flow(spec, bindings, {"app": good}) == []
    # StasisStart before answer: out of order.
    early = [ev("Dial", dialstatus=""), ev("StasisStart"), ev("ChannelStateChange", state="Up")]
    assert any("out of order" in p for p in check_flow(spec, bindings, {"app": early}))
    # A forbidden ChannelCreated, which is also not the first event.
    created = [ev("ChannelCreated"), *good]
    found = check_flow(spec, bindings, {"app": created})
    assert any("must not receive ChannelCreated" in p for p in found) and any("first event" in p for p in found)
    # Something after the last event, and a second StasisStart.
    assert any("last event" in p for p in check_flow(spec, bindings, {"app": [*good, ev("ChannelVarset")]}))
    assert any("2 times" in p for p in check_flow(spec, bindings, {"app": [*good, ev("StasisStart")]}))
    assert any("never bound" in p for p in check_flow(spec, {"APP": "app"}, {"app": good}))
