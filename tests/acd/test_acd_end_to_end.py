"""The whole ACD together: the PBX simulator, the real ari-gateway, the router worker and the agent-state worker,
each its own process, over the real Kafka, PostgreSQL and Redis, with a site loaded into a fresh database.

Agents log in through `cms.commands` (their phones registered in the simulator); inbound calls are injected
into the simulator, some with a patience too short to reach an agent. In the second test the router worker
is killed (SIGKILL) halfway through and a new one takes over, in the third the agent-state worker. Then the
invariants of the whole run:

- every injected call has exactly one `call.queued` and one final `call.ended`: answered and completed, or
  abandoned; no call is lost and none is invented;
- no agent is ever on two calls at once: neither in its `agent.state-changed` story (on_call intervals) nor in
  the calls it answered (answer..end intervals), and both agree on who took which call;
- the `calls` table agrees with the `calls` events (outcome and agent of every call);
- afterwards every agent is available again in Redis, and the simulator holds no channel and no bridge.

The run also takes the paths where agent-state alone moves an agent out of a reservation (docs/acd.md, "Who
moves an agent"): a few phones never answer (missed, the call goes to the next agent, three misses pause the
agent), and a few agents ask for a break mid-run (pending while on a call) and come back.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
import redis.asyncio as aioredis

from callstream_common.availability import Availability
from callstream_common.codec import Message, new_envelope
from callstream_common.kafka.admin import ensure_topics, plan_topics
from callstream_common.kafka.producer import Producer
from callstream_common.messages.agents import AgentState
from callstream_common.messages.cms import AgentLogin, AgentPause, AgentUnpause
from callstream_common.redis_store import tenant_pattern
from callstream_common.settings import ServiceSettings
from callstream_common.site import parse_site
from callstream_common.topics import TopicName, topic_name
from site_db import load_site_into
from helpers import until
from acd_processes import start_service, stop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))
from harness import GatewayProcess, SimProcess, TopicReader  # noqa: E402

PBX = "pbx1"  # the simulator's single PBX: phones PJSIP/pbx1-agent-0001 ...
DID = "5550100"
QUEUE = "sales"
AGENTS = 50
CALLS = int(os.environ.get("CALLSTREAM_E2E_CALLS", "1000"))  # fewer for a quick run while developing
CALLS_PER_S = 8.0  # below what 50 agents clear (about 0.5 s ringing + 1-4 s talk + 1 s wrap-up each)
IMPATIENT_EVERY = 10  # every 10th caller hangs up before any agent can answer: an abandon
WRAPUP_S = 1
RING_TIMEOUT_S = 5
DEAF = range(0, 3)  # agents whose phones never answer: missed after the ring timeout, auto-paused ("missed")
BREAKS = range(10, 16)  # agents paused ("break") a quarter into the run, on a call or not, and back at half
SEED = 20261127


def site(tenant: str) -> dict[str, Any]:
    return {
        "tenant": {"id": tenant, "name": "ACD end to end"},
        # The simulator names its phones <pbx>-agent-0001 ...: the template gives each agent its phone.
        "pjsip": {"password_secret": "test-secret-0123", "endpoint_template": "{pbx_id}-agent-{pbx_index:04d}"},
        "pbxs": [{"id": PBX, "ari_url": "http://127.0.0.1:8088", "entity_id": "02:00:00:00:00:01"}],
        "queues": [{"id": QUEUE, "department": "sales", "ring_timeout_s": RING_TIMEOUT_S, "wrapup_s": WRAPUP_S,
                    "max_wait_s": 600}],
        "dids": [{"number": DID, "queue": QUEUE}],
        "agent_ranges": [{"prefix": "ag", "count": AGENTS, "first_extension": 1001, "pbxs": [PBX]}],
    }


def agent_ids() -> list[str]:
    return [f"ag{1001 + n}" for n in range(AGENTS)]


def phone(n: int) -> str:
    return f"{PBX}-agent-{n + 1:04d}"


async def load_site(dsn: str, tenant: str) -> None:
    await load_site_into(dsn, parse_site(site(tenant)))


def unique(reader: TopicReader) -> list[Message]:
    """De-duplicated by message id, as consumers do: a worker killed mid-input produces it again."""
    seen: set[str] = set()
    kept: list[Message] = []
    for m in reader.messages:
        if m.message_id not in seen:
            seen.add(m.message_id)
            kept.append(m)
    return kept


def by_call(messages: list[Message]) -> dict[str, list[Message]]:
    calls: dict[str, list[Message]] = {}
    for m in messages:
        calls.setdefault(m.body.call_id, []).append(m)
    return calls


def overlaps(intervals: list[tuple[datetime, datetime, str]]) -> list[tuple[str, str]]:
    """The pairs of (start, end, call) intervals that overlap, after sorting by start."""
    ordered = sorted(intervals)
    return [(a[2], b[2]) for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1]]


def on_call_intervals(agent_events: list[Message]) -> dict[str, list[tuple[datetime, datetime, str]]]:
    """Each agent's on_call intervals, from its state changes in order: entered on_call, left on the next change."""
    intervals: dict[str, list[tuple[datetime, datetime, str]]] = {}
    open_: dict[str, tuple[datetime, str]] = {}
    for m in agent_events:
        if m.type != "agent.state-changed":
            continue
        body = m.body
        if body.agent_id in open_:
            start, call_id = open_.pop(body.agent_id)
            intervals.setdefault(body.agent_id, []).append((start, body.at, call_id))
        if body.state == AgentState.ON_CALL:
            assert body.call_id is not None, m
            open_[body.agent_id] = (body.at, body.call_id)
    assert not open_, f"agents still on a call at the end: {open_}"
    return intervals


def _said(change: Any) -> str:
    """An agent.state-changed body in a few words, for a failure message."""
    if change is None:
        return "none"
    return f"{change.previous_state.value}->{change.state.value}/{change.call_id} at {change.at:%H:%M:%S.%f}"


async def all_available(store: Availability) -> list[str] | None:
    snaps = await store.snapshot(PBX)
    waiting = [f"{s.agent_id}={s.state.value}" for s in snaps if s.state != AgentState.AVAILABLE]
    return None if waiting or len(snaps) != AGENTS else [s.agent_id for s in snaps]


async def sim_idle(sim: SimProcess) -> dict[str, Any] | None:
    counters: dict[str, Any] = await sim.ctl("GET", "/counters")
    return counters if counters["channels"] == 0 and counters["bridges"] == 0 else None


async def test_acd_routes_a_burst_of_calls_end_to_end(
    settings: ServiceSettings, empty_database: str, redis_client: aioredis.Redis, tmp_path: Path,
) -> None:
    await run_acd(settings, empty_database, redis_client, tmp_path, kill=None)


async def test_acd_survives_a_router_killed_mid_run(
    settings: ServiceSettings, empty_database: str, redis_client: aioredis.Redis, tmp_path: Path,
) -> None:
    await run_acd(settings, empty_database, redis_client, tmp_path, kill="router")


async def test_acd_survives_an_agent_state_worker_killed_mid_run(
    settings: ServiceSettings, empty_database: str, redis_client: aioredis.Redis, tmp_path: Path,
) -> None:
    await run_acd(settings, empty_database, redis_client, tmp_path, kill="agent-state")


async def run_acd(settings: ServiceSettings, empty_database: str, redis_client: aioredis.Redis, tmp_path: Path,
                  *, kill: Literal["router", "agent-state"] | None) -> None:
    await ensure_topics(settings.kafka_bootstrap, plan_topics(
        settings.topic_prefix, pbx_partitions=settings.pbx_partitions, tenant_partitions=settings.tenant_partitions))
    await load_site(empty_database, settings.tenant)
    tenant = settings.tenant
    store = Availability(redis_client, tenant)

    sim = await SimProcess(tmp_path, agents=AGENTS).start()
    agent_log, router_log = tmp_path / "agent-state.log", tmp_path / "router.log"
    processes: list[subprocess.Popen[bytes]] = []
    gateway: GatewayProcess | None = None
    readers: list[TopicReader] = []
    opened: list[Producer] = []
    try:
        endpoints = {f"{e['technology']}/{e['resource']}" for e in await sim.ari("GET", "/endpoints")}
        assert {f"PJSIP/{phone(n)}" for n in range(AGENTS)} <= endpoints
        # Quicker phones than the default 2 s: the run is about routing, not ringing.
        await asyncio.gather(*(sim.ctl("PUT", f"/endpoints/PJSIP/{phone(n)}", {"answer_after_s": 0.5})
                               for n in range(AGENTS)))

        where = f"(logs in {tmp_path})"
        agent_state = start_service("callstream_agent_state", settings, empty_database, agent_log,
                                    tmp_path / "agent-state-data")
        router = start_service("callstream_router", settings, empty_database, router_log, tmp_path / "router-data")
        projector = start_service("callstream_router.projector", settings, empty_database,
                                  tmp_path / "router-projector.log", tmp_path)  # the calls table
        processes += [agent_state, router, projector]
        workers = {"agent-state": (agent_state, "callstream_agent_state", agent_log),
                   "router": (router, "callstream_router", router_log)}
        # Each worker sends itself ticks once it owns its partitions and has recovered its tables. Inputs start
        # after that (the gateway's events, the logins): a record fetched while the group's generation changes
        # can be skipped by faust (tests/acd/test_agent_state_service.py does the same).
        for name in ("router", "agent-state"):
            await until(lambda name=name: _ticking(settings, name), timeout=90,
                        what=f"the {name} worker ticking {where}")
        gateway = GatewayProcess(settings, sim, PBX, tmp_path).start()
        calls_reader = await TopicReader(settings, TopicName.CALLS, PBX).start()
        agents_reader = await TopicReader(settings, TopicName.AGENTS, PBX).start()
        readers += [calls_reader, agents_reader]
        await gateway.ready()
        # agent-state upserts every configured agent into Redis (logged out) before it handles inputs.
        await until(lambda: _count(store, AGENTS), timeout=60, what=f"agents upserted in Redis {where}")

        # Agents log in through the CMS. A login before the worker has seen the phone's registration (the
        # gateway's snapshot) pauses the agent ("login") until the registration arrives: either way, available.
        producer = Producer(settings.kafka_bootstrap, service="test", client_id="test")
        await producer.start()
        opened.append(producer)
        cms = topic_name(TopicName.CMS_COMMANDS, settings.topic_prefix)
        for n, agent_id in enumerate(agent_ids()):
            login = AgentLogin(command_id=f"login-{agent_id}", requested_at=datetime.now(UTC),
                               agent_id=agent_id, endpoint=f"PJSIP/{phone(n)}")
            await producer.send(cms, new_envelope(login, tenant=tenant, producer="test", pbx_id=PBX))
        await until(lambda: all_available(store), timeout=60, what=f"all agents available {where}")
        for n in DEAF:
            await sim.ctl("PUT", f"/endpoints/PJSIP/{phone(n)}", {"mode": "no_answer"})
        commands = 0

        async def cms_command(kind: type[AgentPause] | type[AgentUnpause], n: int, **fields: str) -> None:
            nonlocal commands
            commands += 1
            command = kind(command_id=f"cmd-{commands}", requested_at=datetime.now(UTC), agent_id=agent_ids()[n],
                           **fields)
            await producer.send(cms, new_envelope(command, tenant=tenant, producer="test", pbx_id=PBX))

        # The calls: 1 in IMPATIENT_EVERY hangs up after 0.2 s (no agent can answer that fast: the phone alone
        # rings 0.5 s); the others wait up to 120 s and talk 1-4 s, hung up by the caller or (1 in 5) the agent.
        rng = random.Random(SEED)
        injected: dict[str, bool] = {}  # call id -> impatient
        in_flight = 0
        started = asyncio.get_running_loop().time()
        for i in range(CALLS):
            impatient = i % IMPATIENT_EVERY == IMPATIENT_EVERY - 1
            body = {"did": DID, "caller_number": f"555{i:07d}", "patience_s": 0.2 if impatient else 120.0,
                    "talk_s": round(rng.uniform(1.0, 4.0), 2), "hangup_by": "agent" if i % 5 == 2 else "caller"}
            placed = await sim.ctl("POST", "/calls", body)
            assert placed["stasis"], placed
            injected[f"{PBX}-{placed['channel_id']}"] = impatient
            if i == CALLS // 4:
                for n in BREAKS:
                    await cms_command(AgentPause, n, reason="break")
            if i == CALLS // 2:
                for n in BREAKS:
                    await cms_command(AgentUnpause, n)
            if i == CALLS // 2 and kill is not None:
                # A worker dies mid-run, calls in flight; a new one resumes its PBX from the changelog and the
                # last committed offsets.
                victim: str = kill
                process, module, log_path = workers[victim]
                assert process.poll() is None, log_path.read_text()[-3000:]
                in_flight = len(set(injected) - {m.body.call_id for m in calls_reader.messages
                                                 if m.type == "call.ended"})
                stop(process, signal.SIGKILL)
                ticks = await _ticks(settings, victim)
                process = start_service(module, settings, empty_database, log_path, tmp_path / f"{victim}-data-2")
                processes.append(process)
                workers[victim] = (process, module, log_path)
                # New calls wait for the new worker (the calls in flight go on without it meanwhile).
                await until(lambda: _ticking(settings, victim, ticks + 3), timeout=90,
                            what=f"the new {victim} worker ticking {where}")
                started = asyncio.get_running_loop().time() - (i + 1) / CALLS_PER_S  # arrivals resume from now
            # Paced by the loop's clock: arrivals, not a synchronisation.
            delay = started + (i + 1) / CALLS_PER_S - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)

        def ended() -> set[str]:
            return {m.body.call_id for m in unique(calls_reader) if m.type == "call.ended"}

        try:
            await until(lambda: set(injected) <= ended(), timeout=120, interval=0.5, what=f"every call ended {where}")
        except AssertionError as exc:
            missing = sorted(set(injected) - ended())
            raise AssertionError(f"{exc}: {len(missing)} calls never ended, e.g. {missing[:5]}") from None
        # The deaf phones answer again; their agents, paused for missing calls, come back.
        for n in DEAF:
            await sim.ctl("PUT", f"/endpoints/PJSIP/{phone(n)}", {"mode": "answer"})
            await cms_command(AgentUnpause, n)
        try:
            await until(lambda: all_available(store), timeout=60, what=f"all agents available after the run {where}")
        except AssertionError as exc:
            # What agent-state last published for each: tells "never processed" from "processed, Redis not told".
            last = {m.body.agent_id: m.body for m in unique(agents_reader) if m.type == "agent.state-changed"}
            stuck = [f"{s.agent_id}={s.state.value}/{s.call_id} (last event: {_said(last.get(s.agent_id))})"
                     for s in await store.snapshot(PBX) if s.state != AgentState.AVAILABLE]
            raise AssertionError(f"{exc}: not available in Redis: {stuck}") from None
        counters = await until(lambda: sim_idle(sim), timeout=30, what=f"no channel or bridge left {where}")
        assert counters["calls_injected"] == CALLS
        for worker, (process, _, _) in workers.items():
            assert process.poll() is None, f"the {worker} worker exited {where}"
        assert projector.poll() is None, f"the router's projector exited {where}"

        # ---- the calls: each one queued once and ended once, answered-and-completed or abandoned ----
        events = by_call(unique(calls_reader))
        assert set(events) == set(injected), set(events) ^ set(injected)
        answered_by: dict[str, str] = {}
        talk: dict[str, list[tuple[datetime, datetime, str]]] = {}
        outcomes: Counter[str] = Counter()
        for call_id, story in events.items():
            types = [m.type for m in story]
            assert types.count("call.queued") == 1 and types.count("call.ended") == 1, (call_id, types)
            assert types[0] == "call.queued" and types[-1] == "call.ended", (call_id, types)
            end = story[-1].body
            answers = [m.body for m in story if m.type == "call.answered"]
            if answers:
                assert len(answers) == 1 and end.outcome == "completed", (call_id, types, end)
                assert "call.abandoned" not in types and end.agent_id == answers[0].agent_id, (call_id, types)
                answered_by[call_id] = answers[0].agent_id
                talk.setdefault(answers[0].agent_id, []).append((answers[0].at, end.at, call_id))
            else:
                assert end.outcome == "abandoned" and types.count("call.abandoned") == 1, (call_id, types, end)
            outcomes[end.outcome] += 1
            # Patient callers (120 s) are all answered; impatient ones (0.2 s) all abandon.
            assert end.outcome == ("abandoned" if injected[call_id] else "completed"), (call_id, types)
        n_impatient = sum(injected.values())
        assert outcomes == {"completed": CALLS - n_impatient, "abandoned": n_impatient}, outcomes

        # ---- the agents: never two calls at once, and their story agrees with the calls' ----
        for agent_id, intervals in talk.items():
            assert not overlaps(intervals), (agent_id, overlaps(intervals))
        agent_events = unique(agents_reader)
        on_call = on_call_intervals(agent_events)
        for agent_id, intervals in on_call.items():
            assert not overlaps(intervals), (agent_id, overlaps(intervals))
        took = {call_id: agent_id for agent_id, intervals in on_call.items() for _, _, call_id in intervals}
        assert took == answered_by, set(took.items()) ^ set(answered_by.items())
        assert len(on_call) > AGENTS // 2  # the work was spread, not funnelled to a few agents
        deaf = {agent_ids()[n] for n in DEAF}
        assert not deaf & set(on_call), "a phone that never answers took a call"
        missed = {m.body.agent_id for m in unique(calls_reader) if m.type == "call.agent-missed"}
        assert deaf <= missed, missed
        auto_paused = {m.body.agent_id for m in agent_events if m.type == "agent.state-changed"
                       and m.body.pause_reason == "missed"}
        assert auto_paused == deaf, auto_paused
        on_break = {m.body.agent_id for m in agent_events if m.type == "agent.state-changed"
                    and m.body.pause_reason == "break"}
        assert on_break == {agent_ids()[n] for n in BREAKS}, on_break

        # ---- the SQL projection agrees with the events ----
        conn = await asyncpg.connect(empty_database)
        try:
            rows = await until(lambda: _ended_rows(conn, tenant, len(injected)), timeout=30,
                               what=f"every call's row ended {where}")
        finally:
            await conn.close()
        assert {r["call_id"]: r["outcome"] for r in rows} == {c: s[-1].body.outcome for c, s in events.items()}
        assert {r["call_id"]: r["agent_id"] for r in rows if r["outcome"] == "completed"} == answered_by
        assert all(r["answered_at"] is None for r in rows if r["outcome"] == "abandoned")
        killed = f"{kill} killed with {in_flight} calls in flight; " if kill is not None else ""
        print(f"ACD end to end: {CALLS} calls, {AGENTS} agents: {dict(outcomes)}; {killed}"
              f"{len(on_call)} agents took calls; {counters['events_total']} PBX events")
    finally:
        for reader in readers:
            await reader.stop()
        for open_producer in opened:
            await open_producer.stop()
        if gateway is not None:
            gateway.kill()
        for process in processes:
            stop(process)
        await sim.stop()
        leftovers = [k async for k in redis_client.scan_iter(match=tenant_pattern(tenant))]
        if leftovers:
            await redis_client.delete(*leftovers)


async def _ticks(settings: ServiceSettings, service: str) -> int:
    """How many ticks the service's workers have sent themselves (the end offsets of its ticks topic)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        name = f"{settings.topic_prefix}.{service}.ticks"
        if name not in await consumer.topics():  # the worker creates it as it starts
            return 0
        partitions = [TopicPartition(name, p) for p in range(settings.pbx_partitions)]
        sent: int = sum((await consumer.end_offsets(partitions)).values())
        return sent
    finally:
        await consumer.stop()


async def _ticking(settings: ServiceSettings, service: str, at_least: int = 4) -> bool:
    return await _ticks(settings, service) >= at_least


async def _count(store: Availability, n: int) -> bool:
    return len(await store.snapshot(PBX)) == n


async def _ended_rows(conn: asyncpg.Connection, tenant: str, n: int) -> list[asyncpg.Record] | None:
    rows = await conn.fetch("SELECT call_id, outcome, agent_id, answered_at FROM calls "
                            "WHERE tenant = $1 AND ended_at IS NOT NULL", tenant)
    return rows if len(rows) == n else None


async def test_a_late_offer_of_an_older_call_leaves_the_newer_reservation_alone(
    settings: ServiceSettings, redis_client: aioredis.Redis,
) -> None:
    """Found by the run above: agent-state, lagging behind the router (a restarted router catching up), mirrored
    `call.offered` of a call the router had already released the agent from onto the agent's newer reservation;
    the older call's end then made the agent available while the router had it on the newer call, and a third
    call got it too. The move must hold the call it is about, else the machine learns of the reservation."""
    from callstream_agent_state.redis_effects import ReservedFirst, mirror
    from callstream_common.availability import QueueRule, Strategy
    from callstream_common.messages.agents import AgentStateChanged

    store = Availability(redis_client, settings.tenant)
    now = datetime.now(UTC)
    await store.upsert_agent("a1", PBX, "PJSIP/a1", {}, {QUEUE: QueueRule(Strategy.LONGEST_IDLE)}, now=now)
    try:
        assert (await store.make_available("a1", now, {AgentState.LOGGED_OUT})).applied
        # The router: reserved for c1, released when c1's caller hung up, reserved for c2.
        assert (await store.reserve(PBX, QUEUE, "c1", now)) is not None
        assert (await store.release("a1", "c1", now=now)).applied
        assert (await store.reserve(PBX, QUEUE, "c2", now)) is not None
        # agent-state only now handles c1's offer (its machine saw the agent available).
        late = AgentStateChanged(agent_id="a1", at=now, state=AgentState.RINGING,
                                 previous_state=AgentState.AVAILABLE, call_id="c1")
        assert await mirror(store, late, None, now) == ReservedFirst("c2")
        snap = await store.get("a1")
        assert snap is not None and (snap.state, snap.call_id) == (AgentState.RESERVED, "c2")
        # c2's own offer applies; a direct answer (no reservation) still finds the agent available.
        offered = AgentStateChanged(agent_id="a1", at=now, state=AgentState.RINGING,
                                    previous_state=AgentState.RESERVED, call_id="c2")
        assert await mirror(store, offered, "c2", now) is None
        assert (await store.release("a1", "c2", now=now)).applied
        direct = AgentStateChanged(agent_id="a1", at=now, state=AgentState.ON_CALL,
                                   previous_state=AgentState.AVAILABLE, call_id="c3")
        assert await mirror(store, direct, None, now) is None
        snap = await store.get("a1")
        assert snap is not None and (snap.state, snap.call_id) == (AgentState.ON_CALL, "c3")
    finally:
        leftovers = [k async for k in redis_client.scan_iter(match=tenant_pattern(settings.tenant))]
        if leftovers:
            await redis_client.delete(*leftovers)
