"""The gateway between a simulated PBX and the real Kafka: events once and in order, commands once, gaps
marked and repaired, Kafka outages survived, bad input dead-lettered, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callstream_common.codec import encode, new_envelope
from callstream_common.envelope import H_ARI_TYPE
from callstream_common.kafka.admin import ensure_topics, plan_topics
from callstream_common.kafka.producer import Producer
from callstream_common.messages import commands as c
from callstream_common.settings import ServiceSettings
from callstream_common.topics import TopicName, topic_name
from conftest import ROOT
from harness import SIM_PASSWORD, GatewayProcess, SimProcess, TopicReader
from helpers import until

PBX = "pbx-gw1"
DID = "5550100"


@pytest.fixture
async def topics(settings: ServiceSettings) -> ServiceSettings:
    await ensure_topics(settings.kafka_bootstrap, plan_topics(
        settings.topic_prefix, pbx_partitions=settings.pbx_partitions, tenant_partitions=settings.tenant_partitions))
    return settings


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimProcess]:
    process = await SimProcess(tmp_path, agents=10).start()
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
async def events(topics: ServiceSettings) -> AsyncIterator[TopicReader]:
    reader = await TopicReader(topics, TopicName.ARI_EVENTS, PBX).start()
    try:
        yield reader
    finally:
        await reader.stop()


@pytest.fixture
async def producer(topics: ServiceSettings) -> AsyncIterator[Producer]:
    async with Producer(topics.kafka_bootstrap, service="test", client_id="test") as p:
        yield p


def ari_events(reader: TopicReader) -> list[dict]:
    return [m.body.data for m in reader.of_type("ari.event")]


def assert_contiguous(reader: TopicReader) -> None:
    seqs = [m.seq for m in reader.messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "sequence numbers have holes or repeats"


async def settled_count(sim: SimProcess, reader: TopicReader) -> bool:
    counters = await sim.ctl("GET", "/counters")
    return counters["events_total"] > 0 and counters["events_total"] == len(reader.of_type("ari.event"))


async def test_every_event_of_100_calls_arrives_once_and_in_order(
    topics: ServiceSettings, sim: SimProcess, events: TopicReader, tmp_path: Path
) -> None:
    gateway = GatewayProcess(topics, sim, PBX, tmp_path).start()
    try:
        await gateway.ready()
        channels = []
        for n in range(100):
            created = await sim.ctl("POST", "/calls", {"did": DID, "caller_number": f"+1555000{n:04d}",
                                                       "patience_s": 0.2 + (n % 10) * 0.05})
            channels.append(created["channel_id"])
        await until(lambda: sim_idle(sim), timeout=60, what="all 100 callers gone")
        await until(lambda: settled_count(sim, events), timeout=60, what="every emitted event in Kafka")
        application = await sim.ari("GET", "/applications/callstream")
    finally:
        gateway.terminate()
    counters = await sim.ctl("GET", "/counters")
    published = Counter(e["type"] for e in ari_events(events))
    assert dict(published) == counters["events_by_type"]
    assert_contiguous(events)
    # The default filter: the PBX was asked not to send what no service reads, and sent none of it.
    filtered = {"ChannelVarset", "DeviceStateChanged", "BridgeCreated", "BridgeDestroyed", "ChannelCreated",
                "ChannelDialplan", "ChannelConnectedLine"}
    assert {f["type"] for f in application["events_disallowed"]} == filtered
    assert not filtered & set(published), published
    # Each raw event names its ARI type in a header, for the services that pass over types they ignore.
    raw_types = [dict(r.headers).get(H_ARI_TYPE) for r in events.records
                 if dict(r.headers).get("type") == b"ari.event"]
    assert raw_types == [e["type"].encode() for e in ari_events(events)]
    for channel in channels:
        kinds = [e["type"] for e in ari_events(events) if e.get("channel", {}).get("id") == channel]
        # subscribeAll: the channel's life up to its destruction, Stasis once in between (its creation is
        # filtered: StasisStart says when the channel was created).
        assert kinds[-1] == "ChannelDestroyed", kinds
        assert kinds.count("StasisStart") == 1 and kinds.count("StasisEnd") == 1, kinds
        assert kinds.index("StasisStart") < kinds.index("ChannelHangupRequest") < kinds.index("StasisEnd"), kinds


async def sim_idle(sim: SimProcess) -> bool:
    counters = await sim.ctl("GET", "/counters")
    return counters["calls_injected"] == 100 and counters["channels"] == 0


async def answer_command(settings: ServiceSettings, channel: str, command_id: str) -> tuple[list, bytes]:
    command = c.AriCommand(command_id=command_id, operation=c.Answer(channel_id=channel),
                           expires_at=datetime.now(UTC) + timedelta(minutes=5))
    return encode(new_envelope(command, tenant=settings.tenant, producer="test", pbx_id=PBX))


async def answers_at_sim(sim: SimProcess, channel: str) -> int:
    log = await sim.ctl("GET", "/requests", since=0)
    return sum(1 for r in log["requests"] if r["method"] == "POST" and r["path"] == f"/ari/channels/{channel}/answer")


async def test_a_command_delivered_twice_or_replayed_after_a_restart_runs_once(
    topics: ServiceSettings, sim: SimProcess, producer: Producer, tmp_path: Path
) -> None:
    commands = topic_name(TopicName.ARI_COMMANDS, topics.topic_prefix)
    results = await TopicReader(topics, TopicName.ARI_COMMAND_RESULTS, PBX).start()
    gateway = GatewayProcess(topics, sim, PBX, tmp_path).start()
    try:
        await gateway.ready()
        channel = (await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "+15550001111",
                                                    "patience_s": 300}))["channel_id"]
        headers, value = await answer_command(topics, channel, "answer-1")
        await producer.send_raw(commands, key=PBX, value=value, headers=headers)
        await producer.send_raw(commands, key=PBX, value=value, headers=headers)  # delivered twice
        await until(lambda: len(results.messages) >= 2, what="two results")
        assert gateway.terminate() == 0
        gateway = GatewayProcess(topics, sim, PBX, tmp_path).start()
        await gateway.ready()
        await producer.send_raw(commands, key=PBX, value=value, headers=headers)  # replayed after a restart
        await until(lambda: len(results.messages) >= 3, what="a third result")
        assert await answers_at_sim(sim, channel) == 1
        outcomes = [(m.body.outcome, m.body.repeated, m.body.ari_status) for m in results.messages]
        assert outcomes == [("ok", False, 204), ("ok", True, 204), ("ok", True, 204)]
        assert {m.causation_id for m in results.messages} == {dict(headers)["message_id"].decode()}
    finally:
        gateway.kill()
        await results.stop()


async def test_expired_invalid_and_foreign_commands(
    topics: ServiceSettings, sim: SimProcess, producer: Producer, tmp_path: Path
) -> None:
    commands = topic_name(TopicName.ARI_COMMANDS, topics.topic_prefix)
    results = await TopicReader(topics, TopicName.ARI_COMMAND_RESULTS, PBX).start()
    dead = await TopicReader(topics, TopicName.ARI_COMMANDS, PBX, dlq=True).start()
    gateway = GatewayProcess(topics, sim, PBX, tmp_path).start()
    try:
        await gateway.ready()
        expired = c.AriCommand(command_id="late-1", operation=c.Answer(channel_id="nope"),
                               expires_at=datetime.now(UTC) - timedelta(seconds=1))
        headers, value = encode(new_envelope(expired, tenant=topics.tenant, producer="test", pbx_id=PBX))
        await producer.send_raw(commands, key=PBX, value=value, headers=headers)
        await producer.send_raw(commands, key=PBX, value=b'{"type":"ari.command","command_id":""}', headers=headers)
        unknown = c.AriCommand(command_id="c-404", operation=c.Hangup(channel_id="no-such-channel"))
        headers, value = encode(new_envelope(unknown, tenant=topics.tenant, producer="test", pbx_id=PBX))
        await producer.send_raw(commands, key=PBX, value=value, headers=headers)
        await until(lambda: len(results.messages) >= 2 and len(dead.records) >= 1, what="results and a dead letter")
    finally:
        gateway.kill()
        await results.stop()
        await dead.stop()
    # Two commands on different channels: they run side by side, so their results come in either order.
    by_id = {m.body.command_id: m.body for m in results.messages}
    assert len(results.messages) == len(by_id) == 2
    assert {(r.command_id, r.outcome, r.ari_status) for r in by_id.values()} == {
        ("late-1", "expired", None), ("c-404", "error", 404)}
    assert by_id["c-404"].error == "Channel not found"
    reason = dict(dead.records[0].headers)["dlq.reason"].decode()
    assert reason.startswith("undecodable: invalid ari.command v1") and "command_id" in reason


async def test_a_websocket_drop_is_marked_and_the_snapshot_shows_the_surviving_calls(
    topics: ServiceSettings, sim: SimProcess, events: TopicReader, tmp_path: Path
) -> None:
    gateway = GatewayProcess(topics, sim, PBX, tmp_path).start()
    try:
        await gateway.ready()
        survivors = [(await sim.ctl("POST", "/calls", {"did": DID, "caller_number": f"+1555222000{n}",
                                                       "patience_s": 300}))["channel_id"] for n in range(3)]
        ended = (await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "+15552229999",
                                                   "patience_s": 300}))["channel_id"]
        await until(lambda: len(events.of_type("ari.event")) >= 4, what="the calls' StasisStart")
        before = events.messages[-1].seq
        await sim.ctl("PUT", "/websocket/refuse", {"refuse": True})
        await sim.ctl("POST", "/websocket/drop", {})
        await sim.ctl("POST", f"/channels/{ended}/hangup", {})  # ends while nobody listens: its events are lost
        await sim.ctl("PUT", "/websocket/refuse", {"refuse": False})
        await until(lambda: len(events.of_type("gateway.snapshot")) >= 2, timeout=30, what="the resync snapshot")
    finally:
        gateway.terminate()
    markers = events.of_type("gateway.connected")
    assert [m.body.connection for m in markers] == [1, 2]
    assert markers[1].body.last_seq_before is not None and markers[1].body.last_seq_before >= before
    assert events.of_type("gateway.disconnected")
    snapshot = events.of_type("gateway.snapshot")[-1].body
    assert {ch["id"] for ch in snapshot.channels} == set(survivors)
    assert set(snapshot.application["channel_ids"]) == set(survivors)
    assert not [e for e in ari_events(events) if e.get("channel", {}).get("id") == ended
                and e["type"] == "StasisEnd"], "events of the gap cannot have been delivered"
    assert_contiguous(events)


async def test_credentials_appear_in_no_log_line(topics: ServiceSettings, sim: SimProcess, tmp_path: Path) -> None:
    gateway = GatewayProcess(topics, sim, PBX, tmp_path, **{"log-level": "DEBUG"}).start()
    try:
        await gateway.ready()
        await sim.ctl("POST", "/websocket/drop", {})
        await until(lambda: "connected to PBX" in gateway.log() and gateway.log().count("connected to PBX") >= 2,
                    what="a reconnect logged")
    finally:
        gateway.terminate()
    log = gateway.log()
    assert SIM_PASSWORD not in log
    assert "connected to PBX" in log


def test_invalid_settings_name_the_field() -> None:
    result = subprocess.run([sys.executable, "-m", "callstream_ari_gateway", "--pbx-id", "pbx 1"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2
    assert "pbx_id: String should match pattern" in result.stderr


def stack_command(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "tools/stack/stack.py"), *args], check=True, timeout=120,
                   capture_output=True)


async def test_kafka_down_for_30_s_under_load_loses_and_reorders_nothing(
    topics: ServiceSettings, sim: SimProcess, events: TopicReader, tmp_path: Path
) -> None:
    # A small memory buffer, so that the outage also exercises the disk spool.
    gateway = GatewayProcess(topics, sim, PBX, tmp_path, **{"buffer-events": "500",
                                                            "kafka-max-in-flight": "500"}).start()
    injected = 0

    async def load(seconds: float) -> None:
        nonlocal injected
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            await sim.ctl("POST", "/calls", {"did": DID, "caller_number": f"+1555777{injected:04d}",
                                             "patience_s": 0.3})
            injected += 1
            await asyncio.sleep(0.02)

    try:
        await gateway.ready()
        await load(2)
        stack_command("stop", "kafka")
        try:
            await load(30)
        finally:
            stack_command("start", "kafka")
        await load(2)
        await until(lambda: sim_quiet(sim, injected), timeout=60, what="all callers gone")
        await until(lambda: settled_count(sim, events), timeout=120, what="every emitted event in Kafka")
        spooled = "spooling to disk" in gateway.log()
    finally:
        gateway.terminate(timeout=90)
    counters = await sim.ctl("GET", "/counters")
    assert injected > 500
    assert dict(Counter(e["type"] for e in ari_events(events))) == counters["events_by_type"]
    assert_contiguous(events)
    assert spooled, "the outage should have outlasted the memory buffer"
    starts = [e["channel"]["id"] for e in ari_events(events) if e["type"] == "StasisStart"]
    assert len(starts) == len(set(starts)) == injected


async def sim_quiet(sim: SimProcess, injected: int) -> bool:
    counters = await sim.ctl("GET", "/counters")
    return counters["calls_injected"] == injected and counters["channels"] == 0


async def test_malformed_frames_are_dead_lettered_in_sequence_and_the_gateway_carries_on(
    topics: ServiceSettings, sim: SimProcess, events: TopicReader, tmp_path: Path
) -> None:
    dead = await TopicReader(topics, TopicName.ARI_EVENTS, PBX, dlq=True).start()
    gateway = GatewayProcess(topics, sim, PBX, tmp_path).start()
    try:
        await gateway.ready()
        for garbage in ('{"type": "StasisStart", "truncated', "[1, 2, 3]", '{"no_type": true}'):
            sent = await sim.ctl("POST", "/websocket/raw", {"text": garbage})
            assert sent["sent"] == 1
        channel = (await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "+15553330000",
                                                    "patience_s": 300}))["channel_id"]
        await until(lambda: len(dead.records) == 3 and any(
            e.get("channel", {}).get("id") == channel for e in ari_events(events)), what="letters, then the call")
        assert (await gateway.ready())["pbx_connected"] is True  # still the same connection
    finally:
        gateway.terminate()
        await dead.stop()
    assert [r.value for r in dead.records] == [b'{"type": "StasisStart", "truncated', b"[1, 2, 3]",
                                               b'{"no_type": true}']
    headers = [dict(r.headers) for r in dead.records]
    assert all(h["dlq.reason"].startswith(b"malformed ARI frame") for h in headers)
    # The letters took their place in the gateway's sequence: nothing before or after them is missing.
    seqs = sorted([m.seq for m in events.messages] + [int(h["seq"]) for h in headers])
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert len(events.of_type("gateway.connected")) == 1


async def test_commands_for_one_channel_run_in_order_while_others_run_alongside(
    topics: ServiceSettings, sim: SimProcess, producer: Producer, tmp_path: Path
) -> None:
    commands = topic_name(TopicName.ARI_COMMANDS, topics.topic_prefix)
    results = await TopicReader(topics, TopicName.ARI_COMMAND_RESULTS, PBX).start()
    gateway = GatewayProcess(topics, sim, PBX, tmp_path).start()
    try:
        await gateway.ready()
        channels = [(await sim.ctl("POST", "/calls", {"did": DID, "caller_number": f"+155544400{n}",
                                                      "patience_s": 300}))["channel_id"] for n in range(3)]
        for n in range(60):
            command = c.AriCommand(command_id=f"order-{n}", operation=c.VariableSet(
                channel_id=channels[n % 3], variable="STEP", value=str(n)))
            headers, value = encode(new_envelope(command, tenant=topics.tenant, producer="test", pbx_id=PBX))
            await producer.send_raw(commands, key=PBX, value=value, headers=headers)
        await until(lambda: len(results.messages) >= 60, what="60 results")
    finally:
        gateway.terminate()
        await results.stop()
    log = (await sim.ctl("GET", "/requests", since=0))["requests"]
    for channel in channels:
        steps = [int(r["params"]["value"]) for r in log if r["path"] == f"/ari/channels/{channel}/variable"]
        assert steps == sorted(steps) and len(steps) == 20, steps
    assert {m.body.outcome for m in results.messages} == {"ok"}


async def test_a_replaced_pbx_is_announced(topics: ServiceSettings, events: TopicReader, tmp_path: Path) -> None:
    first = await SimProcess(tmp_path, entity_id="02:00:00:00:00:0a").start()
    gateway = GatewayProcess(topics, first, PBX, tmp_path).start()
    second: SimProcess | None = None
    try:
        await gateway.ready()
        await first.stop()
        second = await SimProcess(tmp_path, entity_id="02:00:00:00:00:0b", port=first.port).start()
        await until(lambda: events.of_type("gateway.entity-changed"), timeout=30, what="the entity change")
    finally:
        gateway.terminate()
        if second is not None:
            await second.stop()
    change = events.of_type("gateway.entity-changed")[0].body
    assert (change.previous_asterisk_id, change.asterisk_id) == ("02:00:00:00:00:0a", "02:00:00:00:00:0b")
    connected = events.of_type("gateway.connected")
    assert [m.body.asterisk_id for m in connected] == ["02:00:00:00:00:0a", "02:00:00:00:00:0b"]
