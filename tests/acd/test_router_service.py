"""The router service over the real stack, the PBX simulator and the real ari-gateway: a router worker
subprocess routes inbound calls to agents made available directly in Redis (agent-state is not running), and
its call events land on `calls` and in the `calls` / `call_legs` tables.

Scenarios, on one PBX in one run (to keep the start-up cost once): a caller abandons while no agent is
available; a call is queued, offered, answered and ended; an agent that does not answer is missed and the next
agent gets the call; a direct call to an extension; a worker killed while a call waits, the new one resumes it;
a blind transfer from cms.commands; a caller lost while the gateway was cut off, ended by the snapshot repair.
Then, without the simulator: the pure wiring, the SQL projection's idempotence, the Redis intents."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from callstream_common.availability import Availability, QueueRule, Strategy
from callstream_common.codec import Message, new_envelope
from callstream_common.kafka.admin import ensure_topics, plan_topics
from callstream_common.kafka.producer import Producer
from callstream_common.messages.agents import AgentState
from callstream_common.redis_store import tenant_pattern
from callstream_common.settings import ServiceSettings
from callstream_common.site import parse_site
from callstream_common.sql import apply_migrations, load_migrations
from callstream_common.sql.migrations_runner import COMMON_MIGRATIONS
from callstream_common.messages.cms import TransferBlind
from callstream_common.topics import TopicName, topic_name
from callstream_router.app import agents_input, ari_input, cms_input
from callstream_router.decide import decide
from callstream_router.inputs import AgentFreed, ReservationResult, ReservedAgent, StasisStart, parse_ari_event
from callstream_router.outputs import ReserveAgent
from callstream_router.settings import RouterSettings
from callstream_router.site_config import router_configs
from callstream_router.state import RouterState
from callstream_router.stored import changes, encode_state, entry_key, rebuild, stored_writes
from helpers import until
from site_db import load_site_into
from acd_processes import start_service, stop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))
from harness import GatewayProcess, SimProcess, TopicReader, free_port  # noqa: E402

PBX = "pbx1"  # the simulator's single PBX: endpoints PJSIP/pbx1-agent-0001 ...
DID = "5550100"
QUEUE = "sales"
AGENTS = {"a1": "pbx1-agent-0001", "a2": "pbx1-agent-0002"}
RING_TIMEOUT_S = 3


def site(tenant: str) -> dict[str, Any]:
    return {
        "tenant": {"id": tenant, "name": "Router test"},
        "pjsip": {"password_secret": "test-secret-0123"},
        "pbxs": [{"id": PBX, "ari_url": "http://127.0.0.1:8088", "entity_id": "02:00:00:00:00:01"}],
        "queues": [{"id": QUEUE, "department": "sales", "ring_timeout_s": RING_TIMEOUT_S, "max_wait_s": 600}],
        "dids": [{"number": DID, "queue": QUEUE}],
        "agents": [{"id": agent_id, "name": f"Agent {n}", "extension": f"100{n}", "pbx": PBX, "endpoint": endpoint}
                   for n, (agent_id, endpoint) in enumerate(AGENTS.items(), start=1)],
    }


async def load_site(dsn: str, tenant: str) -> None:
    await load_site_into(dsn, parse_site(site(tenant)))


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimProcess]:
    process = await SimProcess(tmp_path, agents=4).start()
    try:
        yield process
    finally:
        await process.stop()


class Calls:
    """The router's call events for the PBX, read from `calls`."""

    def __init__(self, reader: TopicReader) -> None:
        self.reader = reader

    def unique(self) -> list[Message]:
        """De-duplicated by message id, as consumers do: a worker killed mid-input produces it again."""
        seen: set[str] = set()
        kept: list[Message] = []
        for m in self.reader.messages:
            if m.message_id not in seen:
                seen.add(m.message_id)
                kept.append(m)
        return kept

    def of(self, call_id: str, type_name: str | None = None) -> list[Message]:
        return [m for m in self.unique() if m.body.call_id == call_id and (type_name is None or m.type == type_name)]

    def types(self, call_id: str) -> list[str]:
        return [m.type for m in self.of(call_id)]


# ---- without the stack: the wiring's pure parts -------------------------------------------------------------

def test_site_becomes_one_router_config_per_pbx() -> None:
    config = router_configs(parse_site(site("t1")).config(), RouterSettings(ari_app="cs", command_ttl_s=7))[PBX]
    assert config.app == "cs" and config.command_ttl_s == 7
    assert config.dids[DID].queue_id == QUEUE and config.extensions == {"1001": "a1", "1002": "a2"}
    assert config.queues[QUEUE].ring_timeout_s == RING_TIMEOUT_S and config.queues[QUEUE].max_wait_s == 600


def test_router_state_round_trips_through_the_table_encoding() -> None:
    config = router_configs(parse_site(site("t1")).config(), RouterSettings())[PBX]
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    raw = {"type": "StasisStart", "timestamp": now.isoformat(), "args": ["inbound", DID],
           "channel": {"id": "c1", "name": "PJSIP/carrier-1", "state": "Ring", "caller": {"number": "5551"},
                       "dialplan": {"exten": DID}}}
    start = parse_ari_event(raw, "ari.events:0:1")
    assert isinstance(start, StasisStart)
    state, out = decide(RouterState(), start, now, config)
    reserve = next(o for o in out if isinstance(o, ReserveAgent))
    state, _ = decide(state, ReservationResult(reserve.request_id, reserve.call_id,
                                               (ReservedAgent("a1", "PJSIP/pbx1-agent-0001"),)), now, config)
    assert state.calls and state.calls[reserve.call_id].legs  # a call with a ringing leg, timers, channels
    table: dict[bytes, bytes] = {}
    apply_writes(table, encode_state(PBX, state))
    apply_writes(table, encode_state("pbx9", RouterState(channels={"x": "y"})))  # another PBX, same table
    assert rebuild(PBX, table.items()) == state
    assert rebuild("pbx7", table.items()) == RouterState()
    # The caller hangs up: the call becomes a tombstone; only what changed is written (no rewrite of the rest).
    hangup = parse_ari_event({"type": "StasisEnd", "timestamp": now.isoformat(), "channel": raw["channel"]},
                             "ari.events:0:2")
    assert hangup is not None
    ended, _ = decide(state, hangup, now, config)
    writes = changes(PBX, state, ended)
    assert {key.split(b"\x1f")[1] for key, _ in writes} <= {b"c", b"e", b"h", b"q"}
    assert (entry_key(PBX, "c", reserve.call_id), None) in writes
    apply_writes(table, writes)
    assert rebuild(PBX, table.items()) == ended
    assert changes(PBX, ended, ended) == []


def test_an_input_whose_writes_were_cut_short_is_rebuilt_whole() -> None:
    # A worker killed while its producer sends an input's table writes leaves only the first ones in the
    # changelog. Whatever the cut, the rebuilt state is the one before the input (nothing landed) or the one
    # after it, never a mix (a call with an agent leg whose channel entry is missing lost its offer).
    config = router_configs(parse_site(site("t1")).config(), RouterSettings())[PBX]
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    channel = {"id": "c1", "name": "PJSIP/carrier-1", "state": "Ring", "caller": {"number": "5551"},
               "dialplan": {"exten": DID}}
    start = parse_ari_event({"type": "StasisStart", "timestamp": now.isoformat(), "args": ["inbound", DID],
                             "channel": channel}, "ari.events:0:1")
    assert start is not None
    waiting, out = decide(RouterState(), start, now, config)
    reserve = next(o for o in out if isinstance(o, ReserveAgent))
    offered, _ = decide(waiting, ReservationResult(reserve.request_id, reserve.call_id,
                                                   (ReservedAgent("a1", "PJSIP/pbx1-agent-0001"),)), now, config)
    hangup = parse_ari_event({"type": "StasisEnd", "timestamp": now.isoformat(), "channel": channel},
                             "ari.events:0:2")
    assert hangup is not None
    ended, _ = decide(offered, hangup, now, config)
    states = [RouterState(), waiting, offered, ended]
    for step, (before, after) in enumerate(zip(states, states[1:])):
        writes = stored_writes(PBX, before, after)
        assert len(writes) >= 3, writes  # the record of them all and at least two entries: a cut can split them
        for landed in range(len(writes) + 1):
            table: dict[bytes, bytes] = {}
            for earlier, later in zip(states, states[1:step + 1]):
                apply_writes(table, stored_writes(PBX, earlier, later))
            apply_writes(table, writes[:landed])
            assert rebuild(PBX, table.items()) == (before if landed == 0 else after), (step, landed)
    assert stored_writes(PBX, ended, ended) == []


def apply_writes(table: dict[bytes, bytes], writes: list[tuple[bytes, bytes | None]]) -> None:
    for key, value in writes:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value


def test_inputs_from_agents_and_cms_topics() -> None:
    from callstream_common.messages.agents import AgentStateChanged
    from callstream_common.messages.cms import AgentPause
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    freed = AgentStateChanged(agent_id="a1", at=now, state=AgentState.AVAILABLE, previous_state=AgentState.WRAP_UP)
    assert agents_input(freed, "agents:0:3") == AgentFreed("agents:0:3", "a1", now)
    still = AgentStateChanged(agent_id="a1", at=now, state=AgentState.RINGING, previous_state=AgentState.RESERVED,
                              call_id="c1")
    assert agents_input(still, "agents:0:4") is None
    blind = TransferBlind(command_id="k1", requested_at=now, agent_id="a1", call_id="c1", to_queue_id=QUEUE)
    assert cms_input(blind, "cms:0:1") is not None
    assert cms_input(AgentPause(command_id="k2", requested_at=now, agent_id="a1", reason="x"), "cms:0:2") is None
    assert ari_input(object(), "ari:0:1", now) is None


async def make_available(store: Availability, agent_id: str) -> None:
    snap = await store.get(agent_id)
    assert snap is not None
    if snap.state == AgentState.AVAILABLE:
        return
    if snap.call_id:
        # agent-state would take the agent through on_call and wrap-up; here it goes straight back.
        assert (await store.release(agent_id, snap.call_id, now=datetime.now(UTC))).applied
    else:
        assert (await store.make_available(agent_id, datetime.now(UTC), {snap.state})).applied


async def call_row(dsn: str, tenant: str, call_id: str) -> dict[str, Any] | None:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT * FROM calls WHERE tenant = $1 AND call_id = $2", tenant, call_id)
        return dict(row) if row is not None else None
    finally:
        await conn.close()


async def ended_row(dsn: str, tenant: str, call_id: str) -> dict[str, Any] | None:
    row = await call_row(dsn, tenant, call_id)
    return row if row is not None and row["ended_at"] is not None else None


async def test_router_routes_inbound_calls_end_to_end(
    settings: ServiceSettings, empty_database: str, redis_client: aioredis.Redis, sim: SimProcess,
    tmp_path: Path,
) -> None:
    await ensure_topics(settings.kafka_bootstrap, plan_topics(
        settings.topic_prefix, pbx_partitions=settings.pbx_partitions, tenant_partitions=settings.tenant_partitions))
    await load_site(empty_database, settings.tenant)
    endpoints = {f"{e['technology']}/{e['resource']}" for e in await sim.ari("GET", "/endpoints")}
    assert {f"PJSIP/{name}" for name in AGENTS.values()} <= endpoints
    for name in AGENTS.values():  # quicker phones: the test waits for each answer
        await sim.ctl("PUT", f"/endpoints/PJSIP/{name}", {"answer_after_s": 0.5})

    store = Availability(redis_client, settings.tenant)
    for agent_id, endpoint in AGENTS.items():
        await store.upsert_agent(agent_id, PBX, f"PJSIP/{endpoint}", {},
                                 {QUEUE: QueueRule(Strategy.LONGEST_IDLE)}, now=datetime.now(UTC))

    log_path = tmp_path / "router.log"
    metrics_port = free_port()
    router = start_service("callstream_router", settings, empty_database, log_path, tmp_path / "router-data",
                           extra_env={"CALLSTREAM_WEB_PORT": str(metrics_port)})
    # The calls / call_legs tables: the router's projector, a process of its own.
    projector_log = tmp_path / "router-projector.log"
    projector = start_service("callstream_router.projector", settings, empty_database, projector_log, tmp_path)
    gateway = GatewayProcess(settings, sim, PBX, tmp_path).start()
    reader = await TopicReader(settings, TopicName.CALLS, PBX).start()
    calls = Calls(reader)
    where = f"(router log {log_path}, projector log {projector_log}, gateway log {gateway.log_path})"
    try:
        await gateway.ready()
        tenant = settings.tenant

        # 1. No agent available: the caller waits in the queue, then hangs up -> abandoned, ended.
        placed = await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "5551000"})
        call1 = f"{PBX}-{placed['channel_id']}"
        await until(lambda: calls.of(call1, "call.queued"), timeout=60, what=f"call 1 queued {where}")
        await sim.ctl("POST", f"/channels/{placed['channel_id']}/hangup", {})
        await until(lambda: calls.of(call1, "call.ended"), what=f"call 1 ended {where}")
        assert calls.types(call1) == ["call.queued", "call.abandoned", "call.ended"]
        assert calls.of(call1, "call.ended")[0].body.outcome == "abandoned"
        row = await until(lambda: ended_row(empty_database, tenant, call1), what="call 1 row")
        assert row["outcome"] == "abandoned" and row["queue_id"] == QUEUE and row["caller_number"] == "5551000"
        assert row["answered_at"] is None and row["did"] == DID
        # The worker's /metrics: its own figures, among them the ARI events it passed over undecoded (the
        # caller's ChannelCreated, ... are no input of the router's).
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{metrics_port}/metrics") as r:
            assert r.status == 200
            exposed = await r.text()
        ari_events = topic_name(TopicName.ARI_EVENTS, settings.topic_prefix)
        passed = [line for line in exposed.splitlines()
                  if line.startswith("callstream_messages_passed_over_total") and ari_events in line]
        assert passed and float(passed[0].rsplit(" ", 1)[1]) > 0, passed
        assert 'callstream_handler_seconds_count{service="router"' in exposed

        # 2. An agent available: queued, offered (an originate to its phone), answered, bridged, ended.
        await make_available(store, "a1")
        requests_before = (await sim.ctl("GET", "/requests"))["next"]
        placed = await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "5552000"})
        call2 = f"{PBX}-{placed['channel_id']}"
        answered = await until(lambda: calls.of(call2, "call.answered"), timeout=30, what=f"call 2 answered {where}")
        assert answered[0].body.agent_id == "a1"
        offered = calls.of(call2, "call.offered")[0].body
        assert offered.agent_id == "a1" and offered.endpoint == "PJSIP/pbx1-agent-0001" and offered.attempt == 1
        requests = (await sim.ctl("GET", "/requests", since=requests_before))["requests"]
        assert any(r["method"] == "POST" and r["path"].startswith("/ari/channels") and
                   r["path"].endswith(offered.agent_channel_id) for r in requests), requests
        await sim.ctl("POST", f"/channels/{placed['channel_id']}/hangup", {})
        await until(lambda: calls.of(call2, "call.ended"), what=f"call 2 ended {where}")
        assert calls.types(call2) == ["call.queued", "call.offered", "call.answered", "call.ended"]
        assert calls.of(call2, "call.ended")[0].body.outcome == "completed"
        row = await until(lambda: ended_row(empty_database, tenant, call2), what="call 2 row")
        assert row["outcome"] == "completed" and row["agent_id"] == "a1" and row["answered_at"] is not None
        assert row["wait_s"] is not None and row["talk_s"] is not None and row["transfers"] == 0

        # 3. a1's phone does not answer: missed after the ring timeout, then a2 is offered and answers.
        await sim.ctl("PUT", "/endpoints/PJSIP/pbx1-agent-0001", {"mode": "no_answer"})
        await make_available(store, "a1")  # available first: longest idle, offered first
        await make_available(store, "a2")
        placed = await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "5553000"})
        call3 = f"{PBX}-{placed['channel_id']}"
        await until(lambda: calls.of(call3, "call.answered"), timeout=RING_TIMEOUT_S + 30,
                    what=f"call 3 answered by the next agent {where}")
        missed = calls.of(call3, "call.agent-missed")
        assert [m.body.agent_id for m in missed] == ["a1"]
        assert [(m.body.agent_id, m.body.attempt) for m in calls.of(call3, "call.offered")] == [("a1", 1), ("a2", 2)]
        assert calls.of(call3, "call.answered")[0].body.agent_id == "a2"
        await sim.ctl("POST", f"/channels/{placed['channel_id']}/hangup", {})
        row = await until(lambda: ended_row(empty_database, tenant, call3), what=f"call 3 row {where}")
        assert row["agent_id"] == "a2" and row["outcome"] == "completed"
        conn = await asyncpg.connect(empty_database)
        try:
            legs = await conn.fetch("SELECT agent_id, attempt, outcome FROM call_legs WHERE tenant = $1 AND "
                                    "call_id = $2 ORDER BY attempt", tenant, call3)
        finally:
            await conn.close()
        assert [(r["agent_id"], r["attempt"], r["outcome"]) for r in legs] == [("a1", 1, "no_answer"),
                                                                               ("a2", 2, "answered")]

        # 4. A direct call (Stasis args `extension,1002`): no queue, that agent only (reserve_agent), answered.
        await sim.ctl("PUT", "/endpoints/PJSIP/pbx1-agent-0001", {"mode": "answer"})
        # No agent-state here: a1's miss left it as the router leaves it (agent-state's to release, acd.md).
        a1 = await store.get("a1")
        assert a1 is not None and (a1.state, a1.call_id) in {(AgentState.RESERVED, call3), (AgentState.RINGING, call3)}
        await make_available(store, "a1")
        await make_available(store, "a2")
        placed = await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "5554000",
                                                  "args": ["extension", "1002"]})
        call4 = f"{PBX}-{placed['channel_id']}"
        await until(lambda: calls.of(call4, "call.answered"), timeout=30, what=f"call 4 answered {where}")
        assert [(m.body.agent_id, m.body.queue_id) for m in calls.of(call4, "call.offered")] == [("a2", None)]
        assert (await store.get("a1")).state == AgentState.AVAILABLE  # a1 was free, but not the one dialled
        await sim.ctl("POST", f"/channels/{placed['channel_id']}/hangup", {})
        await until(lambda: calls.of(call4, "call.ended"), what=f"call 4 ended {where}")

        # 5. Restart: a call waits (no agent), the worker is killed; a new one resumes the call from the
        # table's changelog and gives it to the agent who becomes available.
        assert (await store.set_state("a1", AgentState.PAUSED, now=datetime.now(UTC),
                                      expected_states={AgentState.AVAILABLE})).applied
        placed = await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "5555000"})
        call5 = f"{PBX}-{placed['channel_id']}"
        await until(lambda: calls.of(call5, "call.queued"), timeout=30, what=f"call 5 queued {where}")
        assert router.poll() is None, log_path.read_text()[-3000:]
        os.killpg(router.pid, signal.SIGKILL)
        router.wait(timeout=10)
        router = start_service("callstream_router", settings, empty_database, log_path, tmp_path / "router-data-2")
        # The projector dies too: its successor resumes from the group's commits, the rows' positions skip
        # whatever the first one applied after its last commit.
        assert projector.poll() is None, projector_log.read_text()[-3000:]
        os.killpg(projector.pid, signal.SIGKILL)
        projector.wait(timeout=10)
        projector = start_service("callstream_router.projector", settings, empty_database, projector_log, tmp_path)
        await make_available(store, "a1")
        await until(lambda: calls.of(call5, "call.answered"), timeout=60, what=f"call 5 answered after restart {where}")
        assert calls.of(call5, "call.answered")[0].body.agent_id == "a1"

        # 6. a1 blind-transfers call 5 to extension 1002 (cms.commands): a2 is offered it and answers.
        # As agent-state would on call.answered: a1 is on the call (no longer a reservation the call holds).
        assert (await store.set_state("a1", AgentState.ON_CALL, now=datetime.now(UTC), expected_call_id=call5,
                                      expected_states={AgentState.RESERVED, AgentState.RINGING})).applied
        await make_available(store, "a2")
        async with Producer(settings.kafka_bootstrap, service="test", client_id="test") as producer:
            transfer = TransferBlind(command_id="transfer-1", requested_at=datetime.now(UTC), agent_id="a1",
                                     call_id=call5, to_extension="1002")
            await producer.send(topic_name(TopicName.CMS_COMMANDS, settings.topic_prefix),
                                new_envelope(transfer, tenant=tenant, producer="test", pbx_id=PBX))
        await until(lambda: len(calls.of(call5, "call.answered")) == 2, timeout=30,
                    what=f"call 5 answered by a2 after the transfer {where}")
        assert calls.of(call5, "call.answered")[1].body.agent_id == "a2"
        await sim.ctl("POST", f"/channels/{placed['channel_id']}/hangup", {})
        await until(lambda: calls.of(call5, "call.ended"), what=f"call 5 ended {where}")
        assert calls.types(call5) == ["call.queued", "call.offered", "call.answered", "call.transferred",
                                      "call.offered", "call.answered", "call.ended"]
        row = await until(lambda: ended_row(empty_database, tenant, call5), what=f"call 5 row {where}")
        assert row["agent_id"] == "a2" and row["outcome"] == "completed" and row["transfers"] == 1

        # 7. The caller hangs up while the gateway is cut off (its events are lost): the gateway's snapshot
        # after it reconnects no longer lists the caller, and the router ends the call (a repair).
        placed = await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "5557000"})
        call7 = f"{PBX}-{placed['channel_id']}"
        queued = await until(lambda: calls.of(call7, "call.queued"), timeout=30, what=f"call 7 queued {where}")
        await sim.ctl("PUT", "/websocket/refuse", {"refuse": True})
        await sim.ctl("POST", "/websocket/drop", {})
        await sim.ctl("POST", f"/channels/{placed['channel_id']}/hangup", {})
        # Calls younger than the snapshot grace (2 s) are not judged by a snapshot: stay cut off that long.
        await until(lambda: (datetime.now(UTC) - queued[0].body.at).total_seconds() > 3, timeout=10,
                    interval=0.2, what="call 7 older than the snapshot grace")
        await sim.ctl("PUT", "/websocket/refuse", {"refuse": False})
        ended = await until(lambda: calls.of(call7, "call.ended"), timeout=30, what=f"call 7 repaired {where}")
        assert (ended[0].body.outcome, ended[0].body.hangup_by) == ("failed", "system")
        assert calls.types(call7) == ["call.queued", "call.ended"]
        row = await until(lambda: ended_row(empty_database, tenant, call7), what=f"call 7 row {where}")
        assert row["outcome"] == "failed"
        assert router.poll() is None, log_path.read_text()[-3000:]
        assert projector.poll() is None, projector_log.read_text()[-3000:]
    finally:
        await reader.stop()
        gateway.kill()
        stop(router)
        stop(projector)


async def test_calls_projection_is_idempotent_per_position(empty_database: str) -> None:
    from callstream_common.messages.calls import CallAnswered, CallEnded, CallOffered, CallQueued, CallTransferred
    from callstream_router import projection

    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    conn = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(conn, "common", load_migrations(COMMON_MIGRATIONS))
        await apply_migrations(conn, projection.COMPONENT, load_migrations(projection.MIGRATIONS))
    finally:
        await conn.close()
    events = [
        CallQueued(call_id="c1", at=t0, queue_id=QUEUE, channel_id="ch1", waiting_since=t0, did=DID),
        CallOffered(call_id="c1", at=t0, queue_id=QUEUE, agent_id="a1", agent_channel_id="ch1-a1",
                    endpoint="PJSIP/x", attempt=1),
        CallAnswered(call_id="c1", at=t0, queue_id=QUEUE, agent_id="a1", bridge_id="b1", wait_s=4),
        CallEnded(call_id="c1", at=t0, queue_id=QUEUE, agent_id="a1", outcome="completed", hangup_by="caller",
                  talk_s=30),
    ]
    pool = await asyncpg.create_pool(empty_database, min_size=1, max_size=2)
    try:
        async def alone(offset: int, event: Any) -> bool:  # one event per transaction, as a redelivery comes
            return (await projection.project_batch(pool, [projection.Projected("t1", PBX, "calls", 0, offset,
                                                                               event)]))[0]

        applied = [await alone(n, e) for n, e in enumerate(events)]
        # A redelivery (or a replay from an earlier offset) writes nothing.
        again = [await alone(n, e) for n, e in enumerate(events)]
        assert applied == [True] * 4 and again == [False] * 4
        row = await pool.fetchrow("SELECT * FROM calls WHERE tenant = 't1' AND call_id = 'c1'")
        assert (row["agent_id"], row["outcome"], row["wait_s"], row["talk_s"]) == ("a1", "completed", 4, 30)
        legs = await pool.fetch("SELECT outcome FROM call_legs WHERE tenant = 't1' AND call_id = 'c1'")
        assert [r["outcome"] for r in legs] == ["answered"]
        # A batch that overlaps what was applied (a redelivery after a rebalance) and repeats a record within
        # itself applies only the new positions, once: the second transfer counts once.
        transferred = CallTransferred(call_id="c1", at=t0, kind="blind_queue", from_agent_id="a1",
                                      from_queue_id=QUEUE, to_queue_id="q2")
        batch = [projection.Projected("t1", PBX, "calls", 0, n, e) for n, e in
                 [(2, events[2]), (3, events[3]), (4, transferred), (4, transferred), (5, transferred)]]
        assert await projection.project_batch(pool, batch) == [False, False, True, False, True]
        assert await projection.project_batch(pool, batch) == [False] * 5
        row = await pool.fetchrow("SELECT transfers, queue_id FROM calls WHERE tenant = 't1' AND call_id = 'c1'")
        assert (row["transfers"], row["queue_id"]) == (2, "q2")
    finally:
        await pool.close()


async def test_reserve_intents_map_onto_the_availability_store(
    settings: ServiceSettings, redis_client: aioredis.Redis,
) -> None:
    from callstream_router import intents
    from callstream_router.outputs import ReleaseAgent

    store = Availability(redis_client, settings.tenant)
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for n, agent_id in enumerate(("b1", "b2", "b3")):
        await store.upsert_agent(agent_id, PBX, f"PJSIP/{agent_id}", {"fr": n + 1},
                                 {QUEUE: QueueRule(Strategy.LONGEST_IDLE)}, now=t0)
        assert (await store.make_available(agent_id, t0, {AgentState.LOGGED_OUT})).applied
    # One agent, with the decider's (already relaxed) level and its exclusions: b1 lacks level 2, b2 excluded.
    one = await intents.reserve(store, PBX, ReserveAgent("rq:c1:1", "c1", QUEUE, skill="fr", min_level=2,
                                                         exclude=("b2",)), t0)
    assert one == ReservationResult("rq:c1:1", "c1", (ReservedAgent("b3", "PJSIP/b3"),))
    # Ring-all takes every eligible agent left; a named agent is taken only if available.
    every = await intents.reserve(store, PBX, ReserveAgent("rq:c2:1", "c2", QUEUE, count="all"), t0)
    assert [a.agent_id for a in every.agents] == ["b1", "b2"]
    named = await intents.reserve(store, PBX, ReserveAgent("rq:c3:1", "c3", None, agent_id="b1"), t0)
    assert named.agents == ()
    await intents.release(store, ReleaseAgent("b1", "c2"), t0)
    named = await intents.reserve(store, PBX, ReserveAgent("rq:c3:2", "c3", None, agent_id="b1"), t0)
    assert named.agents == (ReservedAgent("b1", "PJSIP/b1"),)
    leftovers = [k async for k in redis_client.scan_iter(match=tenant_pattern(settings.tenant))]
    await redis_client.delete(*leftovers)
