"""The gateway's pure parts: ARI requests per operation, records and headers, spool, outbox order, sequence."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callstream_ari_gateway.operations import AriRequest, ordering_key, to_request
from callstream_ari_gateway.outbox import Outbox
from callstream_ari_gateway.reader import backoff_delay, websocket_url
from callstream_ari_gateway.records import RecordFactory, check_frame, is_dead_letter
from callstream_ari_gateway.sequence import Sequence
from callstream_ari_gateway.spool import OutRecord, Spool, decode_records, encode_record
from callstream_common.codec import Codec
from callstream_common.messages import commands as c
from callstream_common.messages.ari import GatewayConnected, RawAriEvent
from callstream_common.topics import TopicName

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


CASES = [
        (c.Originate(channel_id="leg-1", endpoint="PJSIP/1001", app="callstream", app_args="agent,call-9",
                     timeout_s=20, variables={"CALLSTREAM_CALL": "call-9"}),
         AriRequest("POST", "/channels/leg-1", {"endpoint": "PJSIP/1001", "app": "callstream",
                                                 "appArgs": "agent,call-9", "timeout": "20"},
                    {"variables": {"CALLSTREAM_CALL": "call-9"}})),
        (c.Answer(channel_id="1732.5"), AriRequest("POST", "/channels/1732.5/answer")),
        (c.Hangup(channel_id="1732.5", reason="busy"), AriRequest("DELETE", "/channels/1732.5", {"reason": "busy"})),
        (c.RingStop(channel_id="x"), AriRequest("DELETE", "/channels/x/ring")),
        (c.Unhold(channel_id="x"), AriRequest("DELETE", "/channels/x/hold")),
        (c.Unmute(channel_id="x", direction="in"), AriRequest("DELETE", "/channels/x/mute", {"direction": "in"})),
        (c.MohStart(bridge_id="hold-1", moh_class="default"),
         AriRequest("POST", "/bridges/hold-1/moh", {"mohClass": "default"})),
        (c.Play(playback_id="pb-1", channel_id="x", media=["sound:hello", "digits:42"]),
         AriRequest("POST", "/channels/x/play/pb-1", {"media": "sound:hello,digits:42"})),
        (c.StopPlayback(playback_id="pb-1"), AriRequest("DELETE", "/playbacks/pb-1")),
        (c.RecordBridge(bridge_id="m-1", name="call-9", format="wav"),
         AriRequest("POST", "/bridges/m-1/record", {"name": "call-9", "format": "wav", "maxDurationSeconds": "0",
                                                   "maxSilenceSeconds": "0", "ifExists": "fail", "beep": "false",
                                                   "terminateOn": "none"})),
        (c.RecordingControl(op="recording_unpause", name="call-9"),
         AriRequest("DELETE", "/recordings/live/call-9/pause")),
        (c.RecordingControl(op="recording_discard", name="call-9"), AriRequest("DELETE", "/recordings/live/call-9")),
        (c.Snoop(channel_id="x", snoop_id="spy-1", app="callstream", spy="both", whisper="out"),
         AriRequest("POST", "/channels/x/snoop/spy-1", {"app": "callstream", "spy": "both", "whisper": "out"})),
        (c.BridgeCreate(bridge_id="m-1", bridge_type="mixing"), AriRequest("POST", "/bridges/m-1", {"type": "mixing"})),
        (c.BridgeAddChannel(bridge_id="m-1", channel_ids=["a", "b"]),
         AriRequest("POST", "/bridges/m-1/addChannel", {"channel": "a,b"})),
        (c.VariableSet(channel_id="x", variable="QUEUE", value="sales"),
         AriRequest("POST", "/channels/x/variable", {"variable": "QUEUE", "value": "sales"})),
        (c.Continue(channel_id="x", context="from-callstream", extension="s", priority=1),
         AriRequest("POST", "/channels/x/continue", {"context": "from-callstream", "extension": "s",
                                                      "priority": "1"})),
        (c.Dial(channel_id="x", timeout_s=15), AriRequest("POST", "/channels/x/dial", {"timeout": "15"})),
        (c.Redirect(channel_id="x", endpoint="PJSIP/2001"),
         AriRequest("POST", "/channels/x/redirect", {"endpoint": "PJSIP/2001"})),
        (c.CreateChannel(channel_id="leg-2", endpoint="PJSIP/1002", app="callstream"),
         AriRequest("POST", "/channels/create", {"endpoint": "PJSIP/1002", "app": "callstream",
                                                  "channelId": "leg-2"})),
        (c.Ring(channel_id="x"), AriRequest("POST", "/channels/x/ring")),
        (c.Hold(channel_id="x"), AriRequest("POST", "/channels/x/hold")),
        (c.Mute(channel_id="x"), AriRequest("POST", "/channels/x/mute", {"direction": "both"})),
        (c.MohStop(channel_id="x"), AriRequest("DELETE", "/channels/x/moh")),
        (c.RecordChannel(channel_id="x", name="r1", format="gsm", max_duration_s=60, beep=True),
         AriRequest("POST", "/channels/x/record", {"name": "r1", "format": "gsm", "maxDurationSeconds": "60",
                                                    "maxSilenceSeconds": "0", "ifExists": "fail", "beep": "true",
                                                    "terminateOn": "none"})),
        (c.BridgeDestroy(bridge_id="m-1"), AriRequest("DELETE", "/bridges/m-1")),
        (c.BridgeRemoveChannel(bridge_id="m-1", channel_ids=["a"]),
         AriRequest("POST", "/bridges/m-1/removeChannel", {"channel": "a"})),
        (c.VariableGet(channel_id="x", variable="QUEUE"),
         AriRequest("GET", "/channels/x/variable", {"variable": "QUEUE"})),
]


@pytest.mark.parametrize(("op", "expected"), CASES)
def test_each_operation_becomes_asterisks_request(op: c.Operation, expected: AriRequest) -> None:
    assert to_request(op) == expected


def test_ids_are_escaped_in_paths() -> None:
    assert to_request(c.Answer(channel_id="a/b c")).path == "/channels/a%2Fb%20c/answer"


def test_media_needs_exactly_one_target() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        to_request(c.MohStop())
    with pytest.raises(ValueError, match="exactly one"):
        to_request(c.Play(playback_id="p", channel_id="a", bridge_id="b", media=["sound:x"]))


def test_every_operation_is_covered_above() -> None:
    members = set(c.Operation.__origin__.__args__)  # type: ignore[attr-defined]
    assert {type(op) for op, _ in CASES} == members


def test_ordering_key_defaults_to_the_target() -> None:
    command = c.AriCommand(command_id="c1", operation=c.Answer(channel_id="ch-1"))
    assert ordering_key(command) == "channel_id:ch-1"
    assert ordering_key(command.model_copy(update={"ordering_key": "call-9"})) == "call-9"
    bridge = c.AriCommand(command_id="c2", operation=c.BridgeDestroy(bridge_id="b-1"))
    assert ordering_key(bridge) == "bridge_id:b-1"


def factory(tmp_path: Path) -> RecordFactory:
    return RecordFactory(tenant="acme", pbx_id="pbx-01", producer="ari-gateway/pbx-01",
                         sequence=Sequence(tmp_path / "seq"))


def test_raw_event_records_decode_as_envelopes_with_the_bytes_untouched(tmp_path: Path) -> None:
    raw = b'{"type":"StasisStart","application":"callstream","timestamp":"2026-11-27T09:00:00.000+0000"}'
    record = factory(tmp_path).ari_event(raw, NOW)
    message = Codec().decode(TopicName.ARI_EVENTS, record.headers, record.value)
    assert isinstance(message.body, RawAriEvent) and message.body.raw == raw
    assert (message.seq, message.pbx_id, message.tenant, message.produced_at) == (record.seq, "pbx-01", "acme", NOW)
    assert message.message_id == f"ari-gateway/pbx-01/{record.seq}"


def test_markers_are_contract_messages(tmp_path: Path) -> None:
    records = factory(tmp_path)
    first = records.ari_event(b'{"type":"X"}', NOW)
    marker = records.message(GatewayConnected(gateway_id="gw-pbx-01", asterisk_id="00:11", application="cs",
                                              connection=2, last_seq_before=first.seq))
    message = Codec().decode(TopicName.ARI_EVENTS, marker.headers, marker.value)
    assert message.seq == first.seq + 1 and message.body.last_seq_before == first.seq


def test_malformed_frames_become_dead_letters(tmp_path: Path) -> None:
    assert check_frame(b'{"type":"StasisStart"}') == "StasisStart"
    for bad in (b"not json", b'["StasisStart"]', b'{"type": 5}', b"{}"):
        assert check_frame(bad) is None
    letter = factory(tmp_path).dead_frame(b"not json", "malformed ARI frame", "ari.events")
    assert is_dead_letter(letter) and dict(letter.headers)["dlq.reason"] == b"malformed ARI frame"


def test_sequence_never_goes_back(tmp_path: Path) -> None:
    first = Sequence(tmp_path / "seq", block=10)
    numbers = [first.next() for _ in range(25)]
    assert numbers == list(range(1, 26))
    # A crash (no close): the next run starts above everything reserved.
    after_crash = Sequence(tmp_path / "seq", block=10)
    assert after_crash.next() > 25
    after_crash.close()
    last = after_crash.last
    # A clean stop: the next run continues exactly.
    assert Sequence(tmp_path / "seq", block=10).next() == last + 1


def test_spool_round_trip_and_torn_tail(tmp_path: Path) -> None:
    records = [OutRecord(i, [("type", b"ari.event"), ("seq", str(i).encode())], b"x" * i) for i in range(1, 50)]
    data = b"".join(encode_record(r) for r in records)
    assert decode_records(data) == records
    assert decode_records(data[:-3]) == records[:-1]  # a crash mid-write loses only the unfinished record


def test_outbox_keeps_order_across_memory_and_spool(tmp_path: Path) -> None:
    outbox = Outbox(memory_limit=5, spool=Spool(tmp_path / "spool"))
    for seq in range(1, 13):
        outbox.put(OutRecord(seq, [], b""))
    assert outbox.depth == 5 and outbox.spool_depth == 7
    taken = [r.seq for r in outbox.take_memory(3)]
    outbox.put(OutRecord(13, [], b""))  # still spooling: memory may not jump ahead of the spool
    assert outbox.take_segment() is None  # memory still holds older records
    taken += [r.seq for r in outbox.take_memory(100)]
    segment = outbox.take_segment()
    assert segment is not None
    taken += [r.seq for r in segment.records]
    outbox.delete(segment)
    assert outbox.take_segment() is None  # spool drained: back to memory
    outbox.put(OutRecord(14, [], b""))
    taken += [r.seq for r in outbox.take_memory(100)]
    assert taken == list(range(1, 15))


def test_a_spool_left_by_a_previous_run_comes_first(tmp_path: Path) -> None:
    old = Outbox(memory_limit=2, spool=Spool(tmp_path / "spool"))
    for seq in range(1, 5):
        old.put(OutRecord(seq, [], b""))
    old.spill([])  # shutdown: memory (1, 2) is written before the spool's (3, 4)
    new = Outbox(memory_limit=100, spool=Spool(tmp_path / "spool"))
    new.put(OutRecord(5, [], b""))
    order = []
    while (segment := new.take_segment()) is not None:
        order += [r.seq for r in segment.records]
        new.delete(segment)
    order += [r.seq for r in new.take_memory(100)]
    assert order == [1, 2, 3, 4, 5]


def test_websocket_url_and_backoff() -> None:
    url = websocket_url("https://pbx-01.example:8089/ari", "callstream", True)
    assert str(url) == "wss://pbx-01.example:8089/ari/events?app=callstream&subscribeAll=true"
    assert str(websocket_url("http://127.0.0.1:8088/ari/", "a,b", False)).startswith("ws://127.0.0.1:8088/ari/events?")
    rng = random.Random(1)
    delays = [backoff_delay(n, 0.2, 10.0, rng) for n in range(12)]
    assert all(0.2 <= d <= 10.0 for d in delays)
    assert max(delays[8:]) > 2.0  # it grows
