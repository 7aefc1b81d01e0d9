"""Benchmark of the ACD's routing: 2,000 agents on 4 simulated PBXs, inbound calls in real time.

What runs (each its own process, over the local stack): one PBX simulator serving 4 PBXs (pbx-01..pbx-04, 500
agent phones each), one ari-gateway per PBX, one router worker and one agent-state worker, with the site
bench/site-2000.yaml loaded into a fresh database (its phones renamed to the simulator's). The 2,000 agents log
in through `cms.commands`; then the simulator's own Poisson generator brings 15 calls/s (3.75 per PBX, spread
over the site's 6 DIDs) for --warmup seconds (20), then for the measured --seconds (60), callers with an
exponential patience (some abandon while the phone rings), talk times short enough to drain within a minute.
The load stops; after a drain period the run is judged.

Figures, all from the PBX's side or from the `calls` topic, over the calls of the measured window (the warm-up's
latency is printed apart; lost and double_booked count every call):
- offer latency of a call: the time its caller's StasisStart was written to the gateway's WebSocket
  (`GET /_sim/stasis_starts`) to the time the originate of its first agent leg (`POST /ari/channels/<call
  id>-a1`, the router's id scheme) reached the simulator's REST API (`GET /_sim/requests`); calls abandoned
  before any offer have none;
- answered / abandoned: calls with `call.answered` / `call.abandoned` on `calls`;
- lost: calls that entered Stasis but have no final event (`call.ended` or `call.abandoned`) after the drain;
- double_booked: agents with two overlapping answered..ended intervals on `calls`.

    python bench/bench_routing.py [--warmup 20] [--seconds 60] [--rate 15] [--drain 90] [--profile]

Needs the local stack (make bench-routing starts it). The last line:
BENCH routing calls=<n> offer_p50_ms=<x> offer_p99_ms=<y> answered=<a> abandoned=<b> lost=<l> double_booked=<d>
Targets (issue 5): offer_p99_ms <= 50, lost = 0, double_booked = 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as aioredis
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "gateway"), str(ROOT / "tests" / "acd")]

import cpu_usage  # noqa: E402
from acd_processes import start_service, stop  # noqa: E402
from callstream_common.availability import Availability  # noqa: E402
from callstream_common.codec import Message, new_envelope  # noqa: E402
from callstream_common.kafka.admin import delete_prefixed_topics, ensure_topics, plan_topics  # noqa: E402
from callstream_common.kafka.producer import Producer  # noqa: E402
from callstream_common.messages.agents import AgentState  # noqa: E402
from callstream_common.messages.cms import AgentLogin  # noqa: E402
from callstream_common.partitioner import partition_for  # noqa: E402
from callstream_common.redis_store import tenant_pattern  # noqa: E402
from callstream_common.settings import ServiceSettings  # noqa: E402
from callstream_common.site import Site, parse_site  # noqa: E402
from callstream_common.topics import TopicName, topic_name  # noqa: E402
from harness import SIM_PASSWORD, SIM_USER, GatewayProcess, SimProcess, TopicReader, free_port  # noqa: E402
from helpers import until  # noqa: E402
from site_db import load_site_into  # noqa: E402

SITE_FILE = ROOT / "bench" / "site-2000.yaml"
# Calls before the measured window: the run's topics are new (first writes and reads of every partition), and the
# calls in progress grow to their steady number (~15 calls/s x ~14.5 s of ringing and talk, ~220) over the first
# ~20 s. The target is about a site in its working day, so the figures start once it is there; the warm-up's own
# latency is printed apart, and its calls count in lost and double_booked.
WARMUP_S = 20.0
PARTITIONS = 4  # one per PBX at best; one router and one agent-state worker own them all anyway
FINAL = {"call.ended", "call.abandoned"}
# The services' default tick intervals, not the tests' 0.2 s (acd_processes): agent-state's tick scans every
# agent of its partitions, which with 2,000 agents at 0.2 s costs several times what production pays.
TICK_INTERVAL_S = {"router": "0.5", "agent-state": "1.0"}
WORKER_MODULES = {"router": "callstream_router", "agent-state": "callstream_agent_state"}
# The first agent leg of a call: `<call id>-a1` (services/router/.../ids.py agent_leg_id), call id
# `<pbx>-<caller channel id>` (call_id_for_channel).
ORIGINATE = re.compile(r"^/ari/channels/(?P<leg>.+)-a(?P<attempt>\d+)$")


# --- the site -----------------------------------------------------------------------------------------------

def bench_site(tenant: str) -> Site:
    """bench/site-2000.yaml under this run's tenant, its agents' endpoints named as the simulator's phones."""
    data: dict[str, Any] = yaml.safe_load(SITE_FILE.read_text())
    data["tenant"]["id"] = tenant
    data["pjsip"]["endpoint_template"] = "{pbx_id}-agent-{pbx_index:04d}"
    return parse_site(data, str(SITE_FILE))


def sim_site(site: Site, ports: dict[str, int], rate: float, seed: int) -> dict[str, Any]:
    """The simulator's site: the same PBXs, as many phones as agents on each, the same DIDs on every PBX.

    Phones answer after 1-4 s (people, not robots). Patience is exponential with a 30 s mean (Erlang-A's
    usual model), so the few callers whose patience is shorter than the ringing abandon. Talk times are
    lognormal around 12 s, at most 40 s: with wrap-ups of 10-30 s, the run drains within a minute."""
    per_pbx = Counter(agent.pbx for agent in site.agent_configs)
    rate_per_did = rate / len(site.pbxs) / len(site.dids)
    dids = [{"number": did.number, "rate_per_s": round(rate_per_did, 6),
             "patience_s": {"dist": "exponential", "mean": 30, "max": 300},
             "talk_s": {"dist": "lognormal", "mean": 12, "sd": 6, "min": 2, "max": 40},
             "hangup_by": "caller"} for did in site.dids]
    return {
        "host": "127.0.0.1", "user": SIM_USER, "password": SIM_PASSWORD, "app": "callstream", "seed": seed,
        "time_scale": 1, "ws_write_timeout_ms": 5000,
        "pbxs": [{"name": pbx.id, "port": ports[pbx.id], "entity_id": pbx.entity_id, "traffic": False,
                  "agents": {"count": per_pbx[pbx.id],
                             "behaviour": {"answer_after_s": {"dist": "uniform", "min": 1, "max": 4}}},
                  "supervisors": {"count": 0}, "dids": dids} for pbx in site.pbxs],
    }


# --- the simulator: one process, 4 PBXs -------------------------------------------------------------------

class SitePbx(SimProcess):
    """One PBX of the multi-PBX simulator process: the harness's client (ari, ctl) without a process of its own,
    so that GatewayProcess can point at it."""

    def __init__(self, log_dir: Path, name: str, port: int) -> None:
        super().__init__(log_dir, port=port)
        self.name = name

    async def start(self) -> SitePbx:
        self.session = aiohttp.ClientSession(
            headers={"Authorization": aiohttp.encode_basic_auth(SIM_USER, SIM_PASSWORD)},
            timeout=aiohttp.ClientTimeout(total=60))
        await until(self._answers, timeout=60, what=f"simulated {self.name} on {self.port}")
        return self


def start_simulator(work: Path, site_yaml: dict[str, Any]) -> subprocess.Popen[bytes]:
    path = work / "sim-site.yaml"
    path.write_text(yaml.safe_dump(site_yaml, sort_keys=False))
    with open(work / "sim.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "callstream_pbx_sim", "--site", str(path),
                                 "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


# --- measuring --------------------------------------------------------------------------------------------

@dataclass
class Run:
    """What one PBX's logs and topic say about its calls."""

    started: dict[str, float] = field(default_factory=dict)  # call id -> StasisStart written (epoch s)
    offered: dict[str, float] = field(default_factory=dict)  # call id -> first originate arrived (epoch s)
    events: dict[str, list[Message]] = field(default_factory=dict)  # call id -> its events on `calls`
    published: dict[str, float] = field(default_factory=dict)  # call id -> StasisStart produced to Kafka
    offer_produced: dict[str, float] = field(default_factory=dict)  # call id -> first call.offered produced


async def fetch_all(pbx: SitePbx, path: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    since = 0
    while True:
        page = await pbx.ctl("GET", path, since=since, limit=20000)
        items += page[key]
        if not page[key]:
            return items
        since = page["next"]


async def collect(pbx: SitePbx, reader: TopicReader) -> Run:
    run = Run()
    for entry in await fetch_all(pbx, "/stasis_starts", "stasis_starts"):
        if entry["args"][:1] == ["inbound"]:
            run.started[f"{pbx.name}-{entry['channel_id']}"] = entry["time"]
    for request in await fetch_all(pbx, "/requests", "requests"):
        match = ORIGINATE.match(request["path"]) if request["method"] == "POST" else None
        if match is not None:
            call_id = match.group("leg")
            run.offered[call_id] = min(run.offered.get(call_id, request["time"]), request["time"])
    seen: set[str] = set()
    for record, m in zip(reader.records, reader.messages, strict=True):
        if m.message_id not in seen:  # at-least-once: a worker may produce an input's outputs again
            seen.add(m.message_id)
            run.events.setdefault(m.body.call_id, []).append(m)
            if m.type == "call.offered":
                run.offer_produced.setdefault(m.body.call_id, record.timestamp / 1000)
    return run


async def stasis_start_records(settings: ServiceSettings, pbx_id: str) -> dict[str, float]:
    """Call id -> when the gateway produced its caller's StasisStart to `ari.events` (the record's CreateTime,
    epoch s). Read after the run, so that decoding 30 events a call does not load the machine meanwhile."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tp = TopicPartition(topic_name(TopicName.ARI_EVENTS, settings.topic_prefix),
                        partition_for(pbx_id, settings.pbx_partitions))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=16 * 1024 * 1024)
    await consumer.start()
    produced: dict[str, float] = {}
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=20_000)
            for record in batch.get(tp, []):
                if record.key != pbx_id.encode() or b'"StasisStart"' not in record.value:
                    continue
                event = json.loads(record.value)
                if event.get("type") == "StasisStart" and event.get("args", [])[:1] == ["inbound"]:
                    produced.setdefault(f"{pbx_id}-{event['channel']['id']}", record.timestamp / 1000)
    finally:
        await consumer.stop()
    return produced


def finished(run: Run) -> set[str]:
    return {call_id for call_id, story in run.events.items() if any(m.type in FINAL for m in story)}


def double_booked(runs: list[Run]) -> list[str]:
    """Agents on two calls at once: overlapping answered..ended intervals on `calls`."""
    talks: dict[str, list[tuple[datetime, datetime, str]]] = {}
    for run in runs:
        for call_id, story in run.events.items():
            answered = [m.body for m in story if m.type == "call.answered"]
            ended = [m.body for m in story if m.type == "call.ended"]
            for answer in answered:
                # An answer not ended yet is open-ended: it overlaps anything the agent took later.
                end = ended[0].at if ended else datetime.max.replace(tzinfo=UTC)
                talks.setdefault(answer.agent_id, []).append((answer.at, end, call_id))
    booked: list[str] = []
    for agent_id, intervals in talks.items():
        ordered = sorted(intervals)
        if any(b[0] < a[1] for a, b in zip(ordered, ordered[1:], strict=False)):
            booked.append(agent_id)
    return booked


def split_window(started: dict[str, float], measured_from: float) -> tuple[dict[str, float], dict[str, float]]:
    """Calls (id -> StasisStart written, epoch s) split in those of the warm-up and those of the measured window."""
    warmup = {c: t for c, t in started.items() if t < measured_from}
    measured = {c: t for c, t in started.items() if t >= measured_from}
    return warmup, measured


def failover_line(started: dict[str, float], offered: dict[str, float], killed_at: float) -> str:
    """What a worker killed at `killed_at` (epoch s) did to the offers: how long after the kill the first call that
    arrived after it was offered (a router's successor routing again), and how many calls waited over 1 s."""
    after = [offered[c] for c, t in started.items() if t >= killed_at and c in offered]
    slow = sum(1 for c, t in started.items() if c in offered and offered[c] - t > 1.0)
    resumed = f"{min(after) - killed_at:.2f} s after the kill" if after else "never"
    return f"failover: the first call arriving after the kill was offered {resumed}; {slow} calls waited over 1 s"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def metrics(port: int) -> str:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as r:
            return await r.text()
    except (aiohttp.ClientError, OSError):
        return ""


def merge_pbx_series(texts: list[str]) -> str:
    """Several processes' metrics as one: the `pbx_id` label dropped and equal series summed."""
    sums: dict[str, float] = {}
    for text in texts:
        for line in text.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            series, _, value = line.rpartition(" ")
            series = re.sub(r'pbx_id="[^"]*",?', "", series).replace(",}", "}")
            try:
                sums[series] = sums.get(series, 0.0) + float(value)
            except ValueError:
                continue
    return "\n".join(f"{series} {value}" for series, value in sums.items())


def histogram_summary(text: str, name: str) -> list[str]:
    """Per label set: count, mean and the bucket bound holding the p99, from a Prometheus text histogram."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    totals: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        labels = series.partition("{")[2].rstrip("}")
        if series.startswith(f"{name}_bucket{{"):
            le = labels.split('le="')[1].split('"')[0]
            key = ",".join(part for part in labels.split(",") if not part.startswith("le="))
            buckets.setdefault(key, []).append((float("inf") if le == "+Inf" else float(le), float(value)))
        elif series.startswith(f"{name}_sum"):
            totals[labels] = float(value)
        elif series.startswith(f"{name}_count"):
            counts[labels] = float(value)
    out = []
    for key, count in sorted(counts.items()):
        if not count:
            continue
        p99 = next((le for le, n in sorted(buckets.get(key, [])) if n >= 0.99 * count), float("inf"))
        out.append(f"{name}{{{key}}}: n={count:.0f} mean={totals.get(key, 0.0) / count * 1000:.2f} ms "
                   f"p99<={p99 * 1000:g} ms")
    return out or [f"{name}: no samples"]


# --- the run ----------------------------------------------------------------------------------------------

# --- the load, shared with bench_wallboard.py --------------------------------------------------------------

def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=60.0, help="how long calls arrive")
    parser.add_argument("--rate", type=float, default=15.0, help="inbound calls per second, all PBXs together")
    parser.add_argument("--drain", type=float, default=90.0, help="how long to wait for calls to end afterwards")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--kafka-bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--pg-dsn", default="postgresql://callstream:callstream@127.0.0.1:15432/callstream")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:16379/0")
    parser.add_argument("--routers", type=int, default=1, choices=range(1, 5), metavar="{1..4}",
                        help="router workers in the group (the PBXs' partitions are shared among them)")


@dataclass
class RoutingLoad:
    """The pieces of the 2,000-agent routing load, as `routing_load` started them."""

    name: str  # bench-routing, bench-wallboard: the prefix of its printed lines and its work directory
    prefix: str  # topic prefix, tenant and database suffix of this run
    settings: ServiceSettings
    work: Path
    site: Site
    dsn: str
    redis: aioredis.Redis
    store: Availability
    pbxs: dict[str, SitePbx] = field(default_factory=dict)
    readers: dict[str, TopicReader] = field(default_factory=dict)  # `calls` of each PBX
    gateways: list[GatewayProcess] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    process_names: dict[int, str] = field(default_factory=dict)  # pid -> the name a run's CPU figures give it
    metrics_ports: dict[str, int] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # the faust workers by name

    @property
    def pbx_ids(self) -> list[str]:
        return [pbx.id for pbx in self.site.pbxs]

    @property
    def agents_on(self) -> Counter[str]:
        return Counter(agent.pbx for agent in self.site.agent_configs)

    def start(self, module: str, name: str, extra_env: dict[str, str] | None = None,
              python_options: list[str] | tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        """A service of this run, stopped (SIGTERM) when the load ends."""
        process = start_service(module, self.settings, self.dsn, self.work / f"{name}.log",
                                self.work / f"{name}-data", extra_env=extra_env, python_options=python_options)
        self.processes.append(process)
        self.process_names[process.pid] = name
        return process

    def start_worker(self, worker: str, service: str, module: str, *, profile: bool = False) -> None:
        """A faust worker (router or agent-state) named `worker`, with its metrics on a port of its own."""
        self.metrics_ports[worker] = port = free_port()
        self.workers[worker] = self.start(
            module, worker, extra_env={"CALLSTREAM_WEB_PORT": str(port),
                                       "CALLSTREAM_TICK_INTERVAL_S": TICK_INTERVAL_S[service],
                                       "CALLSTREAM_INSTANCE": worker},
            python_options=["-m", "cProfile", "-o", str(self.work / f"{worker}.prof")] if profile else [])

    def kill_and_replace(self, worker: str) -> str:
        """SIGKILL a worker (router, agent-state) and start another in its group, named `<worker>-b`: a failover
        under load. Returns the successor's name; the killed worker's metrics are gone with it."""
        stop(self.workers.pop(worker), signal.SIGKILL)
        del self.metrics_ports[worker]
        successor = f"{worker}-b"
        self.start_worker(successor, worker, WORKER_MODULES[worker])
        return successor

    def cpu_processes(self) -> dict[str, list[int]]:
        """The run's processes by name for the CPU figures (the gateways together), with the stack's servers."""
        named: dict[str, list[int]] = {}
        for pid, name in self.process_names.items():
            named.setdefault(name, []).append(pid)
        for gateway in self.gateways:
            if gateway.process is not None:
                named.setdefault("gateways", []).append(gateway.process.pid)
        named["benchmark"] = [os.getpid()]
        return {**named, **cpu_usage.stack_processes(ROOT)}

    async def traffic(self, enabled: bool) -> None:
        """The simulator's own generators, all PBXs at once."""
        await asyncio.gather(*(p.ctl("PUT", "/traffic", {"enabled": enabled}) for p in self.pbxs.values()))

    async def agent_states(self) -> Counter[str]:
        states: Counter[str] = Counter()
        for pbx_id in self.pbx_ids:
            states.update(s.state.value for s in await self.store.snapshot(pbx_id))
        return states

    async def drained(self) -> bool:
        """Every call that entered Stasis has reached its final event on `calls`."""
        for pbx_id, pbx in self.pbxs.items():
            entered = {f"{pbx_id}-{e['channel_id']}" for e in await fetch_all(pbx, "/stasis_starts", "stasis_starts")
                       if e["args"][:1] == ["inbound"]}
            done = {m.body.call_id for m in self.readers[pbx_id].messages if m.type in FINAL}
            if not entered <= done:
                return False
        return True

    async def read_calls(self) -> None:
        """Start reading each PBX's `calls` from the beginning. Only once the calls stop arriving: decoding every
        call event as it comes was the benchmark's own load on the machine it measures (~2 CPU-s a run)."""
        for pbx_id in self.pbx_ids:
            if pbx_id not in self.readers:
                self.readers[pbx_id] = await TopicReader(self.settings, TopicName.CALLS, pbx_id).start()

    async def drain(self, seconds: float) -> None:
        """Wait until every call is final (after the traffic stops)."""
        await self.read_calls()
        started = time.monotonic()
        try:
            await until(self.drained, timeout=seconds, interval=1.0, what="every call final")
        except AssertionError:
            print(f"{self.name}: not drained after {seconds:g} s", flush=True)
        print(f"{self.name}: drained in {time.monotonic() - started:.1f} s", flush=True)


@contextlib.asynccontextmanager
async def routing_load(args: argparse.Namespace, name: str, *, profile: bool = False,
                       with_workers: Callable[[RoutingLoad], None] | None = None) -> AsyncIterator[RoutingLoad]:
    """The simulator (4 PBXs), the router and agent-state workers, one gateway per PBX, 2,000 agents logged in
    and available; the traffic is off. `with_workers` may start more services once the workers are started
    (they are stopped with the rest). Everything of the run (processes, Redis keys, database) goes at exit."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = ServiceSettings(tenant=prefix, topic_prefix=prefix, kafka_bootstrap=args.kafka_bootstrap,
                               pbx_partitions=PARTITIONS, tenant_partitions=2, redis_url=args.redis_url)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    print(f"{name}: logs in {work}", flush=True)
    admin = await asyncpg.connect(args.pg_dsn)
    database = f"bench_{prefix}"
    await admin.execute(f'CREATE DATABASE "{database}"')
    redis_client = aioredis.Redis.from_url(args.redis_url)
    load = RoutingLoad(name, prefix, settings, work, bench_site(prefix), f"{args.pg_dsn.rpartition('/')[0]}/{database}",
                       redis_client, Availability(redis_client, prefix))
    simulator: subprocess.Popen[bytes] | None = None
    try:
        await ensure_topics(settings.kafka_bootstrap, plan_topics(prefix, pbx_partitions=PARTITIONS,
                                                                  tenant_partitions=2))
        await load_site_into(load.dsn, load.site)
        ports = {pbx_id: free_port() for pbx_id in load.pbx_ids}
        simulator = start_simulator(work, sim_site(load.site, ports, args.rate, args.seed))
        load.process_names[simulator.pid] = "simulator"
        for pbx_id in load.pbx_ids:
            load.pbxs[pbx_id] = await SitePbx(work, pbx_id, ports[pbx_id]).start()

        # Workers by name: "router" (and "router-2", ... with --routers), "agent-state".
        workers = [("agent-state", "agent-state")] + [
            ("router" if n == 1 else f"router-{n}", "router") for n in range(1, args.routers + 1)]
        for worker, service in workers:
            load.start_worker(worker, service, WORKER_MODULES[service], profile=profile)
        # The router's calls table, in a process of its own (its CPU is in the run's CPU line).
        load.start("callstream_router.projector", "router-projector",
                   extra_env={"CALLSTREAM_INSTANCE": "router-projector"})
        if with_workers is not None:
            with_workers(load)
        for service in ("router", "agent-state"):
            await until(lambda service=service: _ticking(settings, service), timeout=120,
                        what=f"the {service} worker ticking (logs in {work})")
        for pbx_id in load.pbx_ids:
            load.gateways.append(GatewayProcess(settings, load.pbxs[pbx_id], pbx_id, work,
                                                **{"log-level": "WARNING"}).start())
        for gateway in load.gateways:
            await gateway.ready(timeout=60)
        agents_on = load.agents_on
        await until(lambda: _upserted(load.store, agents_on), timeout=120, what="2,000 agents upserted in Redis")
        async with Producer(settings.kafka_bootstrap, service="bench", client_id=name) as producer:
            cms = topic_name(TopicName.CMS_COMMANDS, prefix)
            for agent in load.site.agent_configs:
                login = AgentLogin(command_id=f"login-{agent.id}", requested_at=datetime.now(UTC),
                                   agent_id=agent.id, endpoint=f"PJSIP/{agent.endpoint}")
                await producer.send(cms, new_envelope(login, tenant=prefix, producer="bench", pbx_id=agent.pbx))
        await until(lambda: _available(load.store, agents_on), timeout=180, interval=0.5,
                    what=f"2,000 agents available (logs in {work})")
        # The 2,000 logins are ~6,000 records for the router (the logins and the agents' events), which it may
        # still be reading when agent-state has made every agent available: the load starts once both workers
        # have committed all their inputs, so that it measures routing and not the tail of the set-up.
        inputs = [topic_name(t, prefix) for t in (TopicName.ARI_EVENTS, TopicName.AGENTS, TopicName.CMS_COMMANDS)]
        groups = sorted({f"{prefix}.{service}" for _, service in workers})  # faust: group id = app id
        await until(lambda: _caught_up(settings, groups, inputs), timeout=120,
                    interval=0.5, what=f"the workers caught up with the logins (logs in {work})")
        yield load
    finally:
        for reader in load.readers.values():
            await reader.stop()
        for gateway in load.gateways:
            gateway.kill()
        for process in load.processes:
            stop(process)  # SIGTERM: faust stops cleanly, cProfile writes its stats
        for pbx in load.pbxs.values():
            await pbx.stop()
        if simulator is not None:
            stop(simulator)
        leftovers = [k async for k in redis_client.scan_iter(match=tenant_pattern(prefix))]
        if leftovers:
            await redis_client.delete(*leftovers)
        await redis_client.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        # Its topics too (thousands of partitions per run otherwise stay on the broker: open files), unless
        # asked to keep them for a look afterwards (as in the test suite).
        if os.environ.get("CALLSTREAM_KEEP_TOPICS") == "1":
            print(f"{name}: topics kept under the prefix {prefix}", flush=True)
        else:
            await delete_prefixed_topics(settings.kafka_bootstrap, [prefix])


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_load_arguments(parser)
    parser.add_argument("--profile", action="store_true",
                        help="run the router and agent-state under cProfile (stats beside their logs)")
    parser.add_argument("--kill-at", type=float, default=None, metavar="SECONDS",
                        help="SIGKILL a worker (--kill) this long into the measured window and start a successor: "
                             "a failover under load, whose offers are in the figures")
    parser.add_argument("--kill", choices=sorted(WORKER_MODULES), default="router", help="the worker --kill-at kills")
    parser.add_argument("--warmup", type=float, default=WARMUP_S,
                        help="seconds of calls before the measured --seconds (reported apart; 0: none)")
    args = parser.parse_args()
    if args.warmup < 0:
        parser.error(f"--warmup: must be 0 or more seconds, got {args.warmup:g}")
    if args.kill_at is not None and not 0 <= args.kill_at < args.seconds:
        parser.error(f"--kill-at: must be within the measured --seconds (0 to {args.seconds:g}), got {args.kill_at:g}")

    async with routing_load(args, "bench-routing", profile=args.profile) as load:
        settings, prefix, pbx_ids = load.settings, load.prefix, load.pbx_ids
        print(f"bench-routing: {sum(load.agents_on.values())} agents available on {len(pbx_ids)} PBXs; "
              f"{args.rate:g} calls/s for {args.warmup:g} s of warm-up, then {args.seconds:g} s measured",
              flush=True)
        cpu_processes = load.cpu_processes()
        await load.traffic(True)
        await asyncio.sleep(args.warmup)
        # The measured window opens here: calls whose StasisStart the simulator wrote from now on (its clock
        # and this one are the machine's wall clock).
        measured_from = time.time()
        cpu_before = cpu_usage.sample(cpu_processes)
        load_started = time.monotonic()
        # No sampling of the agents' states while calls arrive: reading 2,000 hashes from Redis every 10 s (as
        # this loop did) is load on Redis and on the benchmark's own CPU inside the measured window (in one run
        # the slowest offers came right after two samples; later runs without them still had stalls, docs/acd.md).
        # They are read once, after the drain.
        killed_at: float | None = None  # epoch s, with --kill-at
        while (elapsed := time.monotonic() - load_started) < args.seconds:
            if killed_at is None and args.kill_at is not None and elapsed >= args.kill_at:
                killed_at = time.time()
                successor = load.kill_and_replace(args.kill)
                print(f"  t={elapsed:5.1f}s {args.kill} killed (SIGKILL), {successor} started", flush=True)
            # Wake at the next progress line (every 10 s), or at the kill if that comes first.
            wake = min(10.0 * (int(elapsed // 10) + 1), args.seconds)
            if killed_at is None and args.kill_at is not None:
                wake = min(wake, max(args.kill_at, elapsed))
            await asyncio.sleep(wake - elapsed)
            if wake % 10 == 0 or wake == args.seconds:
                print(f"  t={time.monotonic() - load_started:5.1f}s", flush=True)
        await load.traffic(False)
        cpu_line = cpu_usage.report(cpu_before, cpu_usage.sample(cpu_processes))
        await load.drain(args.drain)
        # After the drain every agent should be available or finishing a wrap-up; one left reserved or
        # ringing is a leak (the release race of docs/acd.md), or a worker still catching up.
        print(f"bench-routing: agents after the drain {dict(await load.agent_states())}", flush=True)

        # What the workers had not read yet when the run was judged: a call "lost" while its events wait in
        # a worker's backlog is late, not dropped (faust's group id is the app id, `<prefix>.<service>`).
        ari_events = topic_name(TopicName.ARI_EVENTS, prefix)
        for service in ("router", "agent-state"):
            behind = await group_lag(settings, f"{prefix}.{service}", [ari_events])
            print(f"bench-routing: {service} behind on ari.events by {behind} records at the end", flush=True)
        runs = [await collect(load.pbxs[p], load.readers[p]) for p in pbx_ids]
        for pbx_id, run in zip(pbx_ids, runs, strict=True):
            run.published = await stasis_start_records(settings, pbx_id)
        # Several workers of a service (--routers, a successor after --kill-at): their series summed
        # (merge_pbx_series sums equal series; they carry no pbx_id). A killed worker's are gone with it.
        router_metrics, agent_metrics = [
            merge_pbx_series([await metrics(port) for worker, port in load.metrics_ports.items()
                              if worker.startswith(service)]) for service in ("router", "agent-state")]
        # One line per operation over the 4 gateways: their pbx_id label is dropped, series summed below.
        gateway_metrics = merge_pbx_series([await metrics(g.http_port) for g in load.gateways])

    # ---- the figures ----
    # Safety (lost, double-booked) is judged over every call, warm-up included; latency and outcomes over the
    # measured window only.
    every_call = {c: t for run in runs for c, t in run.started.items()}
    warmup, started = split_window(every_call, measured_from)
    offered = {c: t for run in runs for c, t in run.offered.items()}
    latencies = [(offered[c] - t) * 1000 for c, t in started.items() if c in offered]
    warmup_latencies = [(offered[c] - t) * 1000 for c, t in warmup.items() if c in offered]
    done = set().union(*(finished(run) for run in runs))
    outcome: Counter[str] = Counter()
    for run in runs:
        for call_id, story in run.events.items():
            if call_id not in started:
                continue
            types = {m.type for m in story}
            outcome["answered"] += "call.answered" in types
            outcome["abandoned"] += "call.abandoned" in types
    lost = sorted(set(every_call) - done)
    booked = double_booked(runs)
    never_offered = len(started) - len(latencies)
    if warmup:
        print(f"bench-routing: warm-up ({args.warmup:g} s, not in the figures below but in lost and double_booked): "
              f"{len(warmup)} calls, {len(warmup_latencies)} offered, offer p50 "
              f"{percentile(warmup_latencies, 0.5):.2f} ms, p99 {percentile(warmup_latencies, 0.99):.2f} ms, "
              f"max {max(warmup_latencies, default=0):.2f} ms", flush=True)
    print(f"bench-routing: {len(started)} calls entered Stasis in the measured window, {len(latencies)} offered "
          f"({never_offered} abandoned or still queued before any offer); offer latency "
          f"mean {sum(latencies) / max(1, len(latencies)):.2f} ms, max {max(latencies, default=0):.2f} ms",
          flush=True)
    for service, text, names in (("router", router_metrics, ("callstream_router_decide_seconds",
                                                              "callstream_handler_delay_seconds",
                                                              "callstream_fetch_delay_seconds",
                                                              "callstream_handler_seconds")),
                                 ("agent-state", agent_metrics, ("callstream_handler_seconds",)),
                                 ("gateways", gateway_metrics, ("callstream_gateway_command_seconds", "callstream_produce_seconds"))):
        for name in names:
            for line in histogram_summary(text, name):
                print(f"  {service} {line}", flush=True)
    # Where an offer's time goes: PBX -> gateway -> ari.events; router (consume, decide, Redis, produce);
    # call.offered/originate produced -> the gateway's REST request at the PBX.
    published = {c: t for run in runs for c, t in run.published.items()}
    produced = {c: t for run in runs for c, t in run.offer_produced.items()}
    stages: dict[str, list[float]] = {"ws->ari.events": [], "ari.events->call.offered": [], "call.offered->originate": []}
    for c, t in started.items():
        if c in offered and c in published and c in produced:
            stages["ws->ari.events"].append((published[c] - t) * 1000)
            stages["ari.events->call.offered"].append((produced[c] - published[c]) * 1000)
            stages["call.offered->originate"].append((offered[c] - produced[c]) * 1000)
    # When the slowest offers happened (seconds after the window's first call) and which stage held them
    # (gateway / router / command path, ms): a tail spread over the run is queueing, one gathered at a few
    # moments is a stall, and the stage says where.
    def split(call: str) -> str:
        if call not in published or call not in produced:
            return "?"
        return (f"{(published[call] - every_call[call]) * 1000:.0f}/"
                f"{(produced[call] - published[call]) * 1000:.0f}/{(offered[call] - produced[call]) * 1000:.0f}")

    for label, calls in (("warm-up's slowest offers", warmup), ("slowest offers", started)):
        if not calls:
            continue
        first = min(calls.values())
        slowest = sorted(((offered[c] - t) * 1000, c) for c, t in calls.items() if c in offered)[-12:]
        print(f"bench-routing: {label} (ms @ s after {datetime.fromtimestamp(first, UTC):%H:%M:%S.%f} "
              f"[gateway/router/command path]): " + ", ".join(
                  f"{ms:.0f}@{calls[c] - first:.1f}[{split(c)}]" for ms, c in reversed(slowest)), flush=True)
    for stage, values in stages.items():
        print(f"  stage {stage:26} p50 {percentile(values, 0.5):9.2f} ms  p99 {percentile(values, 0.99):9.2f} ms"
              f"  (n={len(values)}; Kafka CreateTime has ms resolution)", flush=True)
    print(f"bench-routing: {cpu_line}", flush=True)
    if killed_at is not None:
        print(f"bench-routing: {args.kill} {failover_line(started, offered, killed_at)}", flush=True)
    if lost:
        print(f"bench-routing: lost calls (of {len(every_call)}, warm-up included), e.g. {lost[:5]}", flush=True)
    if booked:
        print(f"bench-routing: double-booked agents, e.g. {booked[:5]}", flush=True)
    print(f"BENCH routing calls={len(started)} offer_p50_ms={percentile(latencies, 0.5):.2f} "
          f"offer_p99_ms={percentile(latencies, 0.99):.2f} answered={outcome['answered']} "
          f"abandoned={outcome['abandoned']} lost={len(lost)} double_booked={len(booked)}")


async def _ticking(settings: ServiceSettings, service: str, at_least: int = 4) -> bool:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        name = f"{settings.topic_prefix}.{service}.ticks"
        if name not in await consumer.topics():  # the worker creates it as it starts
            return False
        partitions = [TopicPartition(name, p) for p in range(settings.pbx_partitions)]
        sent: int = sum((await consumer.end_offsets(partitions)).values())
        return sent >= at_least
    finally:
        await consumer.stop()


async def group_lag(settings: ServiceSettings, group: str, topics: list[str]) -> int:
    """End offsets minus the group's committed offsets over the topics' partitions (each keyed by PBX:
    pbx_partitions partitions); what the group has not processed yet (faust commits each second)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for topic in topics for p in range(settings.pbx_partitions)]
        committed = [await consumer.committed(tp) or 0 for tp in partitions]
        ends = await consumer.end_offsets(partitions)  # after the commits: a lag is never negative
        return sum(ends[tp] - done for tp, done in zip(partitions, committed, strict=True))
    finally:
        await consumer.stop()


async def _caught_up(settings: ServiceSettings, groups: list[str], topics: list[str]) -> bool:
    for group in groups:
        if await group_lag(settings, group, topics):
            return False
    return True


async def _upserted(store: Availability, agents_on: Counter[str]) -> bool:
    for pbx_id, n in agents_on.items():
        if len(await store.snapshot(pbx_id)) != n:
            return False
    return True


async def _available(store: Availability, agents_on: Counter[str]) -> bool:
    for pbx_id, n in agents_on.items():
        snaps = await store.snapshot(pbx_id)
        if len(snaps) != n or any(s.state != AgentState.AVAILABLE for s in snaps):
            return False
    return True


if __name__ == "__main__":
    asyncio.run(main())
