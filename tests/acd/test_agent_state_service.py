"""The agent-state service over the real stack: a worker subprocess fed cms.commands, calls and ari.events,
checked in Redis (availability), on `agents` (events) and in SQL (history); then killed and restarted."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from callstream_common.availability import AgentSnapshot, Availability
from callstream_common.codec import Codec, Message, new_envelope
from callstream_common.kafka.admin import ensure_topics, plan_topics
from callstream_common.kafka.producer import Producer
from callstream_common.redis_store import agent_key
from callstream_common.messages.agents import AgentState
from callstream_common.messages.ari import GatewaySnapshot, RawAriEvent
from callstream_common.messages.base import Body
from callstream_common.messages.calls import CallAbandoned, CallAnswered, CallEnded, CallOffered
from callstream_common.messages.cms import (
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentReassign,
    AgentSetSkills,
    AgentUnpause,
    TransferBlind,
)
from callstream_common.settings import ServiceSettings
from callstream_common.site import parse_site
from callstream_common.topics import TopicName, topic_name
from site_db import load_site_into
from helpers import committed_total, until
from acd_processes import start_service, stop

from callstream_agent_state.config import build_directory
from callstream_agent_state.machine import AgentMachineState, EndpointRegistration
from callstream_agent_state.routing import ari_registrations, call_targets, offered_after
from callstream_agent_state.stored import decode_state, encode_state

PBX = "pbx-01"
PBX2 = "pbx-03"  # another partition than pbx-01 (of 3): the agent's state starts afresh there
AGENT = "a1"
ENDPOINT = "PJSIP/1001"
DESK = "PJSIP/1002"  # agent a2's phone
WRAPUP_S = 2


def site(tenant: str) -> dict[str, Any]:
    return {
        "tenant": {"id": tenant, "name": "Test"},
        "pjsip": {"password_secret": "test-secret-0123"},
        "pbxs": [{"id": PBX, "ari_url": "http://127.0.0.1:8088", "entity_id": "02:00:00:00:00:01"},
                 {"id": PBX2, "ari_url": "http://127.0.0.1:8089", "entity_id": "02:00:00:00:00:02"}],
        "queues": [{"id": "sales", "department": "sales", "required_skill": "sales", "wrapup_s": WRAPUP_S}],
        "agents": [{"id": AGENT, "name": "Agent One", "extension": "1001", "pbx": PBX, "skills": {"sales": 3}},
                   {"id": "a2", "name": "Agent Two", "extension": "1002", "pbx": PBX, "skills": {"sales": 2}}],
    }


class AgentEvents:
    """The `agents` topic read in the background, decoded, de-duplicated by message id (as consumers do)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.messages: list[Message] = []
        self.ids: set[str] = set()
        self.repeats = 0
        self._consumer = consumer
        self._codec = Codec()

    async def run(self) -> None:
        async for record in self._consumer:
            message = self._codec.decode(TopicName.AGENTS, record.headers, record.value)
            if message.message_id in self.ids:
                self.repeats += 1
                continue
            self.ids.add(message.message_id)
            self.messages.append(message)

    def states(self, agent_id: str = AGENT) -> list[tuple[str, str | None]]:
        return [(m.body.state.value, m.body.pause_reason) for m in self.messages
                if m.type == "agent.state-changed" and m.body.agent_id == agent_id]

    def types(self) -> list[str]:
        return [m.type for m in self.messages]


@pytest.fixture
async def agent_events(settings: ServiceSettings) -> AsyncIterator[AgentEvents]:
    # The broker does not create topics on first use: make the catalogue's topics before reading one.
    await ensure_topics(settings.kafka_bootstrap, plan_topics(settings.topic_prefix, pbx_partitions=3,
                                                              tenant_partitions=2))
    consumer = AIOKafkaConsumer(topic_name(TopicName.AGENTS, settings.topic_prefix),
                                bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, metadata_max_age_ms=1000)
    await consumer.start()
    reader = AgentEvents(consumer)
    task = asyncio.create_task(reader.run())
    try:
        yield reader
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


async def load_site(dsn: str, tenant: str) -> None:
    await load_site_into(dsn, parse_site(site(tenant)))


class Driver:
    """Produces what the CMS, the router and the gateway would."""

    def __init__(self, settings: ServiceSettings, producer: Producer) -> None:
        self.settings = settings
        self.producer = producer
        self.n = 0

    async def send(self, topic: TopicName, body: Body | RawAriEvent, pbx: str = PBX) -> None:
        message = new_envelope(body, tenant=self.settings.tenant, producer="test", pbx_id=pbx)
        await self.producer.send(topic_name(topic, self.settings.topic_prefix), message)

    def cmd_id(self) -> str:
        self.n += 1
        return f"cmd-{self.n}"

    async def endpoint(self, state: str, pbx: str = PBX, resource: str = "1001") -> None:
        raw = orjson.dumps({"type": "EndpointStateChange", "application": "callstream",
                            "timestamp": datetime.now(UTC).isoformat(),
                            "endpoint": {"technology": "PJSIP", "resource": resource, "state": state,
                                         "channel_ids": []}})
        await self.send(TopicName.ARI_EVENTS, RawAriEvent.checked(raw), pbx)


async def agent(store: Availability, agent_id: str = AGENT) -> AgentSnapshot | None:
    return await store.get(agent_id)


async def in_state(store: Availability, state: AgentState, reason: str | None = None) -> AgentSnapshot | None:
    snap = await store.get(AGENT)
    if snap is not None and snap.state == state and (reason is None or snap.reason == reason):
        return snap
    return None


# ---- the service's pure parts (no stack) -----------------------------------------------------------------

def test_state_round_trips_through_the_table_encoding() -> None:
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    state = AgentMachineState(agent_id=AGENT, since=now, state=AgentState.WRAP_UP, call_id="c1", queue_id="sales",
                              wrapup_until=now, session_id="s1", endpoint=ENDPOINT, endpoint_registered=True,
                              pending_pause="lunch", ended_calls=("c0", "c1"))
    assert decode_state(encode_state(state)) == state
    assert decode_state(encode_state(AgentMachineState.new(AGENT, now))) == AgentMachineState.new(AGENT, now)


def test_call_events_go_to_the_agents_named_and_offered() -> None:
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    offered = CallOffered(call_id="c", at=now, queue_id="q", agent_id="a2", agent_channel_id="x", endpoint="P/1",
                          attempt=2)
    assert call_targets(offered, {"a1"}) == ["a2", "a1"]
    assert offered_after(offered, frozenset({"a1"})) == frozenset({"a1", "a2"})
    answered = CallAnswered(call_id="c", at=now, queue_id="q", agent_id="a1", bridge_id="b", wait_s=1)
    assert call_targets(answered, {"a1", "a2", "a3"}) == ["a1", "a2", "a3"]
    abandoned = CallAbandoned(call_id="c", at=now, queue_id="q", wait_s=1)
    assert call_targets(abandoned, {"a2", "a1"}) == ["a1", "a2"] and offered_after(abandoned, {"a1"}) is None


def test_endpoint_state_changes_become_registrations() -> None:
    def event(state: str) -> RawAriEvent:
        return RawAriEvent.checked(orjson.dumps({"type": "EndpointStateChange", "application": "a", "endpoint": {
            "technology": "PJSIP", "resource": "1001", "state": state, "channel_ids": []}}))

    assert ari_registrations(event("online"), None) == [EndpointRegistration(ENDPOINT, True)]
    assert ari_registrations(event("offline"), None) == [EndpointRegistration(ENDPOINT, False)]
    assert ari_registrations(event("unknown"), None) == []
    other = RawAriEvent.checked(orjson.dumps({"type": "StasisStart", "application": "a"}))
    assert ari_registrations(other, None) == []


def test_directory_gives_each_agent_its_queues_and_endpoint() -> None:
    directory = build_directory(parse_site(site("t1")).config(), "PJSIP")
    assert directory.agent_of(ENDPOINT) == AGENT
    entry = directory.agents[AGENT]
    assert entry.pbx_id == PBX and entry.endpoint == ENDPOINT and set(entry.queues) == {"sales"}
    assert [directory.agents[a].queues["sales"].position for a in (AGENT, "a2")] == [0, 1]


# ---- the service over the real stack --------------------------------------------------------------------

async def test_agent_state_service_end_to_end(
    settings: ServiceSettings, empty_database: str, redis_client: aioredis.Redis,
    agent_events: AgentEvents, tmp_path: Path,
) -> None:
    await load_site(empty_database, settings.tenant)
    store = Availability(redis_client, settings.tenant)
    log_path = tmp_path / "worker.log"
    worker = start_service("callstream_agent_state", settings, empty_database, log_path, tmp_path / "data")
    where = f"(worker log: {log_path})"
    try:
        async with Producer(settings.kafka_bootstrap, service="test", client_id="test") as producer:
            drive = Driver(settings, producer)
            # At start the configured agents are upserted into Redis, logged out, so the router knows them.
            await until(lambda: agent(store, "a2"), timeout=40, what=f"agents upserted {where}")

            # Phone registered, then login: available. The two inputs are on different topics, which a worker
            # reads in no set order (both often come in one fetch): the login is sent once the registration is
            # processed (its offset committed), or it could be judged first (paused "login").
            await drive.endpoint("online")
            events_topic = topic_name(TopicName.ARI_EVENTS, settings.topic_prefix)
            group = f"{settings.topic_prefix}.agent-state"
            await until(lambda: _at_least(committed_total(settings.kafka_bootstrap, group, events_topic, 3), 1),
                        what=f"the registration processed {where}")
            login_id = drive.cmd_id()
            now = datetime.now(UTC)
            await drive.send(TopicName.CMS_COMMANDS, AgentLogin(
                command_id=login_id, requested_at=now, agent_id=AGENT, endpoint=ENDPOINT, station="desk-7"))
            await until(lambda: in_state(store, AgentState.AVAILABLE), timeout=30, what=f"available {where}")
            await until(lambda: agent_events.states() == [("available", None)], what="state-changed available")
            assert agent_events.types()[:2] == ["agent.logged-in", "agent.state-changed"]
            logged_in = agent_events.messages[0]
            assert logged_in.body.session_id == login_id and logged_in.pbx_id == PBX
            assert logged_in.causation_id is not None and logged_in.message_id == f"{logged_in.causation_id}/0"

            # Pause with a reason; the same command again (and another service's command) changes nothing.
            pause = AgentPause(command_id=drive.cmd_id(), requested_at=now, agent_id=AGENT, reason="break")
            await drive.send(TopicName.CMS_COMMANDS, pause)
            await until(lambda: in_state(store, AgentState.PAUSED, "break"), what="paused (break)")
            await drive.send(TopicName.CMS_COMMANDS, pause)
            await drive.send(TopicName.CMS_COMMANDS, TransferBlind(
                command_id=drive.cmd_id(), requested_at=now, agent_id=AGENT, call_id="c0", to_queue_id="sales"))
            await drive.send(TopicName.CMS_COMMANDS, AgentUnpause(
                command_id=drive.cmd_id(), requested_at=now, agent_id=AGENT))
            await until(lambda: in_state(store, AgentState.AVAILABLE), what="available after unpause")
            await until(lambda: len(agent_events.states()) == 3, what="three state changes")
            assert agent_events.states() == [("available", None), ("paused", "break"), ("available", None)]

            # A call: the router reserves in Redis, then offered, answered, ended; wrap-up ends by itself.
            reservation = await store.reserve(PBX, "sales", "call-1", datetime.now(UTC))
            assert reservation is not None and reservation.agent_id == AGENT and reservation.endpoint == ENDPOINT
            t = datetime.now(UTC)
            await drive.send(TopicName.CALLS, CallOffered(call_id="call-1", at=t, queue_id="sales", agent_id=AGENT,
                                                          agent_channel_id="ch-1", endpoint=ENDPOINT, attempt=1))
            await until(lambda: in_state(store, AgentState.RINGING), what="ringing")
            await drive.send(TopicName.CALLS, CallAnswered(call_id="call-1", at=datetime.now(UTC), queue_id="sales",
                                                           agent_id=AGENT, bridge_id="br-1", wait_s=3))
            on_call = await until(lambda: in_state(store, AgentState.ON_CALL), what="on call")
            assert on_call.call_id == "call-1" and on_call.calls_today == 1
            await drive.send(TopicName.CALLS, CallEnded(call_id="call-1", at=datetime.now(UTC), queue_id="sales",
                                                        agent_id=AGENT, outcome="completed", hangup_by="caller"))
            await until(lambda: in_state(store, AgentState.WRAP_UP), what="wrap-up")
            ended = datetime.now(UTC)
            await until(lambda: in_state(store, AgentState.AVAILABLE), timeout=WRAPUP_S + 10,
                        what="available after the wrap-up")
            assert (datetime.now(UTC) - ended).total_seconds() >= WRAPUP_S - 0.5
            await until(lambda: len(agent_events.states()) == 7, what="seven state changes")
            assert [s for s, _ in agent_events.states()[3:]] == ["ringing", "on_call", "wrap_up", "available"]

            # History in SQL (a projection of `agents`, in batches): the session, and one interval per state, the
            # last one open.
            conn = await asyncpg.connect(empty_database)
            try:
                await until(lambda: _rows_at_least(conn, "agent_state_intervals", settings.tenant, 7),
                            what="seven state intervals in SQL")
                session = await conn.fetchrow("SELECT * FROM agent_sessions WHERE tenant = $1", settings.tenant)
                assert session is not None and session["session_id"] == login_id
                assert session["endpoint"] == ENDPOINT and session["station"] == "desk-7"
                assert session["logout_at"] is None
                intervals = await conn.fetch(
                    "SELECT state, reason, call_id, ended_at FROM agent_state_intervals "
                    "WHERE tenant = $1 AND agent_id = $2 ORDER BY started_at", settings.tenant, AGENT)
                assert [(r["state"], r["reason"], r["call_id"]) for r in intervals] == [
                    ("available", None, None), ("paused", "break", None), ("available", None, None),
                    ("ringing", None, "call-1"), ("on_call", None, "call-1"), ("wrap_up", None, "call-1"),
                    ("available", None, None)]
                assert [r["ended_at"] is None for r in intervals] == [False] * 6 + [True]
            finally:
                await conn.close()

            # New skills: Redis (the router's view) and the configuration in SQL follow, announced on `agents`.
            await drive.send(TopicName.CMS_COMMANDS, AgentSetSkills(
                command_id=drive.cmd_id(), requested_at=datetime.now(UTC), agent_id=AGENT, skills={"sales": 5}))
            await until(lambda: _skills(agent(store), {"sales": 5}), what="skills in Redis")
            await until(lambda: "agent.skills-changed" in agent_events.types(), what="agent.skills-changed")
            conn = await asyncpg.connect(empty_database)
            try:
                level = await conn.fetchval("SELECT level FROM agent_skills WHERE tenant_id = $1 AND agent_id = $2 "
                                            "AND skill = 'sales'", settings.tenant, AGENT)
                assert level == 5
            finally:
                await conn.close()

            # Killed without warning, restarted: the agent's state comes back from the table's changelog (a
            # lost state would be logged out, and the pause below refused). Killed once the offsets are
            # committed, so that the restarted worker does not simply rebuild the state by re-reading its inputs.
            for topic, count in ((TopicName.CMS_COMMANDS, 6), (TopicName.CALLS, 3)):
                name = topic_name(topic, settings.topic_prefix)
                await until(lambda: _at_least(committed_total(settings.kafka_bootstrap, group, name, 3), count),
                            what=f"offsets of {name} committed")
            stop(worker, signal.SIGKILL)
            # Redis loses the agent meanwhile (flushed, failed over to an older copy): the restarted worker
            # re-creates it logged out, then puts it back as its resumed state says (available).
            assert await redis_client.delete(agent_key(settings.tenant, AGENT)) == 1
            ticks_before = await ticks_sent(settings)
            worker = start_service("callstream_agent_state", settings, empty_database, log_path, tmp_path / "data")
            # The restarted worker ticks once it has recovered its tables and opened its resources. Waiting for
            # that keeps the pause out of a faust race at partition assignment, in which a record fetched as
            # the generation changes is skipped without being re-read (see the service's report).
            await until(lambda: _at_least(ticks_sent(settings), ticks_before + 3), timeout=60,
                        what=f"the restarted worker ticking {where}")
            restored = await until(lambda: in_state(store, AgentState.AVAILABLE), what=f"Redis repaired {where}")
            assert restored.endpoint == ENDPOINT
            await drive.send(TopicName.CMS_COMMANDS, AgentPause(
                command_id=drive.cmd_id(), requested_at=datetime.now(UTC), agent_id=AGENT, reason="lunch"))
            await until(lambda: in_state(store, AgentState.PAUSED, "lunch"), timeout=60,
                        what=f"paused (lunch) after the restart {where}")

            # The router reserves the agent just before a pause arrives: Redis refuses the move out of
            # available, the service feeds the reservation to the machine first, and the pause waits for the
            # call to end (here abandoned while ringing).
            await drive.send(TopicName.CMS_COMMANDS, AgentUnpause(
                command_id=drive.cmd_id(), requested_at=datetime.now(UTC), agent_id=AGENT))
            await until(lambda: in_state(store, AgentState.AVAILABLE), what="available after the restart")
            assert await store.reserve(PBX, "sales", "call-2", datetime.now(UTC)) is not None
            await drive.send(TopicName.CMS_COMMANDS, AgentPause(
                command_id=drive.cmd_id(), requested_at=datetime.now(UTC), agent_id=AGENT, reason="meeting"))
            await until(lambda: agent_events.states()[-1:] == [("reserved", None)], what="reserved (learned)")
            reserved = await store.get(AGENT)
            assert reserved is not None and reserved.state == AgentState.RESERVED and reserved.call_id == "call-2"
            await drive.send(TopicName.CALLS, CallOffered(call_id="call-2", at=datetime.now(UTC), queue_id="sales",
                                                          agent_id=AGENT, agent_channel_id="ch-2", endpoint=ENDPOINT,
                                                          attempt=1))
            await until(lambda: in_state(store, AgentState.RINGING), what="ringing call-2")
            # The router releases the agent as the caller goes; the machine's pending pause still wins.
            assert (await store.release(AGENT, "call-2", now=datetime.now(UTC))).applied
            await drive.send(TopicName.CALLS, CallAbandoned(call_id="call-2", at=datetime.now(UTC), queue_id="sales",
                                                            wait_s=5, while_ringing_agent=AGENT))
            await until(lambda: in_state(store, AgentState.PAUSED, "meeting"), what="the pending pause applied")

            await drive.send(TopicName.CMS_COMMANDS, AgentLogout(
                command_id=drive.cmd_id(), requested_at=datetime.now(UTC), agent_id=AGENT))
            await until(lambda: _none(agent(store)), what="logged out: forgotten by Redis")
            await until(lambda: "agent.logged-out" in agent_events.types(), what="agent.logged-out")
            # Re-processed inputs (if any) repeated message ids; once de-duplicated the story is told once.
            assert agent_events.states()[7:] == [
                ("paused", "lunch"), ("available", None), ("reserved", None), ("ringing", None),
                ("paused", "meeting"), ("logged_out", None)]
            conn = await asyncpg.connect(empty_database)
            try:
                await until(lambda: _logged_out_in_sql(conn, settings.tenant), what="the session closed in SQL")
                await until(lambda: _rows_at_least(conn, "agent_state_intervals", settings.tenant, 13),
                            what="thirteen state intervals in SQL")
                count = await conn.fetchval("SELECT count(*) FROM agent_state_intervals WHERE tenant = $1",
                                            settings.tenant)
                assert count == 13
            finally:
                await conn.close()

            # Logged out, the agent moves to another PBX; it logs in there (its inputs now keyed by that PBX).
            await drive.send(TopicName.CMS_COMMANDS, AgentReassign(
                command_id=drive.cmd_id(), requested_at=datetime.now(UTC), agent_id=AGENT, to_pbx_id=PBX2))
            await until(lambda: "agent.reassigned" in agent_events.types(), what="agent.reassigned")
            moved = await store.get(AGENT)
            assert moved is not None and moved.pbx_id == PBX2 and moved.state == AgentState.LOGGED_OUT
            # ... on another agent's phone there (hot-desking): Redis gets that phone for the router to dial,
            # and the phone's registration is the agent's until someone else logs in on it.
            await drive.endpoint("online", PBX2, resource="1002")
            await drive.send(TopicName.CMS_COMMANDS, AgentLogin(
                command_id=drive.cmd_id(), requested_at=datetime.now(UTC), agent_id=AGENT, endpoint=DESK), PBX2)
            available = await until(lambda: in_state(store, AgentState.AVAILABLE), what="available on the new PBX")
            assert available.pbx_id == PBX2 and available.endpoint == DESK
            assert available.ready_in == frozenset({"sales"})
            await drive.endpoint("offline", PBX2, resource="1002")
            await until(lambda: in_state(store, AgentState.PAUSED, "endpoint_lost"), what="paused: phone lost")
            # The gateway's resync snapshot after a reconnect finds the phone registered again.
            await drive.send(TopicName.ARI_EVENTS, GatewaySnapshot(
                gateway_id="gw-3", asterisk_id="02:00:00:00:00:03", connection=2, taken_at=datetime.now(UTC),
                channels=[], bridges=[], endpoints=[
                    {"technology": "PJSIP", "resource": "1002", "state": "online", "channel_ids": []}]), PBX2)
            await until(lambda: in_state(store, AgentState.AVAILABLE), what="available again after the snapshot")

            # A graceful restart (SIGTERM) re-reads the configuration but keeps the phone the agent is on.
            stop(worker)
            ticks_before = await ticks_sent(settings)
            worker = start_service("callstream_agent_state", settings, empty_database, log_path, tmp_path / "data")
            await until(lambda: _at_least(ticks_sent(settings), ticks_before + 3), timeout=60,
                        what=f"the worker ticking after a graceful restart {where}")
            after_restart = await store.get(AGENT)
            assert after_restart is not None and after_restart.endpoint == DESK
            assert after_restart.state == AgentState.AVAILABLE and after_restart.pbx_id == PBX2
            conn = await asyncpg.connect(empty_database)
            try:
                assert await conn.fetchval("SELECT pbx_id FROM agents WHERE tenant_id = $1 AND id = $2",
                                           settings.tenant, AGENT) == PBX2
            finally:
                await conn.close()
    finally:
        stop(worker)


async def ticks_sent(settings: ServiceSettings) -> int:
    """How many ticks the workers have sent so far (the end offsets of the internal ticks topic)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        name = f"{settings.topic_prefix}.agent-state.ticks"
        partitions = [TopicPartition(name, p) for p in range(settings.pbx_partitions)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def _at_least(probe: Awaitable[int], count: int) -> bool:
    return await probe >= count


async def _skills(probe: Awaitable[AgentSnapshot | None], skills: dict[str, int]) -> bool:
    snap = await probe
    return snap is not None and dict(snap.skills) == skills


async def _none(probe: Awaitable[object]) -> bool:
    return await probe is None


async def _rows_at_least(conn: asyncpg.Connection, table: str, tenant: str, count: int) -> bool:
    return bool(await conn.fetchval(f"SELECT count(*) >= $2 FROM {table} WHERE tenant = $1", tenant, count))


async def _logged_out_in_sql(conn: asyncpg.Connection, tenant: str) -> bool:
    return await conn.fetchval("SELECT logout_at FROM agent_sessions WHERE tenant = $1", tenant) is not None
