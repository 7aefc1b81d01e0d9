"""Benchmark of the wallboards: 150 SSE clients while the 2,000-agent load of bench-routing runs (issue 6, item 6).

What runs: everything bench/bench_routing.py runs (one simulator with 4 PBXs, 4 ari-gateways, the router and
agent-state over the local stack with bench/site-2000.yaml, 2,000 agents logged in, 15 calls/s for --seconds),
plus one stats aggregator and one stats web instance (`python -m callstream_stats.aggregate|web`, default
publishing pace: publish_interval_s 0.1, refresh_interval_s 2), all on this run's own topics, tenant, database
and Redis keys. Before the load starts, --clients SSE clients (bench/wallboard_clients.py, a process of their
own) open `/stream/{kind}/{id}` on the web instance, spread over the boards a site shows (see `spread`).

Figures:
- latency of a receipt: the client's wall time when an SSE snapshot event is complete, minus the snapshot's
  `oldest_event_at` (the PBX's `at` of the oldest event folded into that board since its previous snapshot:
  the least fresh change it carries; `last_event_at`, the newest, when none), counted only for snapshots whose
  figures changed for that client (wallboard_clients.figures_key: `now` and the periods, occupancy aside). The
  simulator's timestamps are its wall clock in real-time mode (time_scale 1: epoch = time.time() at start plus
  the loop's monotonic time); the run checks it against the simulator's own wall-clock log of StasisStarts.
- missed: clients whose last seq is below their board's final seq in Redis (read after the aggregator has
  caught up, been stopped (it publishes its last changes) and a settle), plus clients whose stream ended or
  failed during the run (docs/wallboard.md, "bench-wallboard").

    python bench/bench_wallboard.py [--seconds 60] [--rate 15] [--clients 150] [--drain 90]

Needs the local stack (make bench-wallboard starts it). The last line:
BENCH wallboard clients=<n> update_p50_ms=<x> update_p99_ms=<y> missed=<m>
Targets (issue 6): update_p99_ms <= 1000 (aim 250), missed = 0.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

import bench_routing as br  # noqa: E402 - also puts tests/ on sys.path for the harness modules below
from acd_processes import stop  # noqa: E402
from callstream_common.codec import Codec  # noqa: E402
from callstream_common.redis_store import board_key, boards_index_key  # noqa: E402
from callstream_common.settings import ServiceSettings  # noqa: E402
from callstream_common.topics import TopicName, topic_name  # noqa: E402
from harness import free_port  # noqa: E402
from helpers import until  # noqa: E402

CLIENTS_SCRIPT = Path(__file__).resolve().parent / "wallboard_clients.py"


# --- the clients ------------------------------------------------------------------------------------------

def spread(scopes: list[str], clients: int) -> dict[str, int]:
    """How the TVs of a floor are spread: a fifth on the whole centre (every team leader's screen), the rest in
    equal shares over the departments, floors and queues (one share per board), remainders to the earlier
    boards. With bench/site-2000.yaml (3 departments, 9 floors, 5 queues) and 150 clients: tenant/all 30,
    each department/floor/queue 7 or 8."""
    others = sorted(s for s in scopes if s != "tenant/all")
    counts = {"tenant/all": clients // 5} if "tenant/all" in scopes else {}
    rest = clients - sum(counts.values())
    for i, scope in enumerate(others):
        counts[scope] = rest // len(others) + (1 if i < rest % len(others) else 0)
    return {s: n for s, n in counts.items() if n}


async def start_clients(url: str, boards: dict[str, int], out: Path, log: Path) -> asyncio.subprocess.Process:
    spec = ",".join(f"{scope}={n}" for scope, n in boards.items())
    with open(log, "ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CLIENTS_SCRIPT), "--url", url, "--boards", spec, "--out", str(out),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err, start_new_session=True)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=90)).decode().strip()
    if not line.startswith("ready "):
        raise RuntimeError(f"wallboard clients did not start: {line!r} (see {log})")
    if int(line.split()[1]) != sum(boards.values()):
        print(f"bench-wallboard: only {line.split()[1]} of {sum(boards.values())} clients connected", flush=True)
    return proc


async def stop_clients(proc: asyncio.subprocess.Process, out: Path) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"stop\n")
    await proc.stdin.drain()
    await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    await asyncio.wait_for(proc.wait(), timeout=30)
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result


# --- the stats service --------------------------------------------------------------------------------------

async def http_json(url: str) -> Any:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session, \
                session.get(url) as response:
            return await response.json() if response.status == 200 else None
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None


async def aggregator_lag(settings: ServiceSettings) -> int:
    """Records of `calls` and `agents` the aggregator has not folded yet (it commits what it folded;
    docs/metrics.md)."""
    return await br.group_lag(settings, topic_name("stats-aggregator", settings.topic_prefix),
                              [topic_name(t, settings.topic_prefix) for t in (TopicName.CALLS, TopicName.AGENTS)])


# --- reading the topics after the run -------------------------------------------------------------------

async def read_topic(settings: ServiceSettings, topic: TopicName) -> list[tuple[Any, Any]]:
    """(record, decoded message) of every partition of one topic of this run, from the beginning to the end it
    has now. Read after the load, so that decoding does not compete with the services meanwhile."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    name = topic_name(topic, settings.topic_prefix)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=16 * 1024 * 1024)
    await consumer.start()
    codec = Codec()
    out: list[tuple[Any, Any]] = []
    try:
        # ari.events, calls and agents are all keyed by PBX (callstream_common.topics): pbx_partitions each.
        partitions = [TopicPartition(name, p) for p in range(settings.pbx_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=20_000)
                for record in batch.get(tp, []):
                    out.append((record, codec.decode(topic, record.headers, record.value)
                                if topic != TopicName.ARI_EVENTS else json.loads(record.value)))
    finally:
        await consumer.stop()
    return out


def at_ms(value: datetime | str) -> int:
    if isinstance(value, str):
        # Asterisk's format, e.g. 2026-11-27T09:30:00.123+0000
        value = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    return round(value.timestamp() * 1000)


def fmt(values: list[float]) -> str:
    if not values:
        return "n=0"
    return (f"p50 {br.percentile(values, 0.5):8.1f} ms  p99 {br.percentile(values, 0.99):8.1f} ms  "
            f"max {max(values):8.1f} ms  (n={len(values)})")


# --- the run ----------------------------------------------------------------------------------------------

async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    br.add_load_arguments(parser)
    parser.add_argument("--clients", type=int, default=150, help="SSE clients on the web instance")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="after the aggregator's last publication, how long the clients have to receive it")
    args = parser.parse_args()

    web_port = free_port()  # never the demo's fixed 8090
    aggregator_port = free_port()
    web = f"http://127.0.0.1:{web_port}"
    aggregator: subprocess.Popen[bytes] | None = None
    clients: asyncio.subprocess.Process | None = None

    def start_stats(load: br.RoutingLoad) -> None:
        # The stats service with its default pace; free ports for the web instance and the aggregator's metrics.
        nonlocal aggregator
        aggregator = load.start("callstream_stats.aggregate", "stats-aggregate",
                                extra_env={"CALLSTREAM_LOG_LEVEL": "INFO",
                                           "CALLSTREAM_METRICS_PORT": str(aggregator_port)})
        load.start("callstream_stats.web", "stats-web", extra_env={"CALLSTREAM_PORT": str(web_port)})

    async with br.routing_load(args, "bench-wallboard", with_workers=start_stats) as load:
        settings, prefix, pbxs = load.settings, load.prefix, load.pbxs
        sim_info = await pbxs[load.pbx_ids[0]].ctl("GET", "")
        assert sim_info["time_scale"] == 1, sim_info  # real time: the simulator's stamps are wall-clock times
        try:
            # The stats side is ready when the web instance is subscribed and every board has a snapshot.
            async def boards_ready() -> bool:
                health = await http_json(f"{web}/health")
                listed = await http_json(f"{web}/api/boards")
                return bool(health and health.get("subscribed") and listed and listed["boards"]
                            and all(b["snapshot"] is not None for b in listed["boards"]))

            await until(boards_ready, timeout=120, interval=0.5,
                        what=f"the stats boards served (logs in {load.work})")
            scopes = sorted(k.decode() if isinstance(k, bytes) else k
                            for k in await load.redis.hkeys(boards_index_key(prefix)))
            boards = spread(scopes, args.clients)
            # Let the login storm's snapshots settle, so the clients start on a quiet board.
            try:
                await until(lambda: _quiet(settings), timeout=60, interval=0.5, what="the aggregator caught up")
            except AssertionError:
                print(f"bench-wallboard: the aggregator still behind by {await aggregator_lag(settings)} before "
                      "the load", flush=True)
            out = load.work / "clients.json"
            clients = await start_clients(web, boards, out, load.work / "clients.log")
            print(f"bench-wallboard: {sum(load.agents_on.values())} agents available on {len(pbxs)} PBXs; "
                  f"{sum(boards.values())} SSE clients on {web}: "
                  + " ".join(f"{s}={n}" for s, n in boards.items())
                  + f"; {args.rate:g} calls/s for {args.seconds:g} s", flush=True)

            await load.traffic(True)
            load_started = time.monotonic()
            load_window = [time.time() * 1000, 0.0]  # wall ms: the stage figures cover the load, not the log-ins
            while (elapsed := time.monotonic() - load_started) < args.seconds:
                await asyncio.sleep(min(10.0, args.seconds - elapsed))
                board = await http_json(f"{web}/api/boards/tenant/all")
                lag = await aggregator_lag(settings)
                if board:
                    print(f"  t={time.monotonic() - load_started:5.1f}s tenant/all #{board['seq']} waiting "
                          f"{board['now']['waiting']} agents {board['now']['agents']} | aggregator behind by "
                          f"{lag}", flush=True)
            await load.traffic(False)
            await load.drain(args.drain)
            load_window[1] = time.time() * 1000

            # The final snapshots: the aggregator folds everything written, then stops (SIGTERM: it publishes
            # what it folded last), so each board's seq in Redis is final; the clients get --settle to receive it.
            try:
                await until(lambda: _quiet(settings), timeout=60, interval=1.0, what="the aggregator caught up")
            except AssertionError:
                print("bench-wallboard: the aggregator had not caught up after 60 s", flush=True)
            aggregator_metrics = await br.metrics(aggregator_port)  # before it stops: its histograms go with it
            assert aggregator is not None
            stop(aggregator)
            await asyncio.sleep(args.settle)
            stored = await load.redis.mget([board_key(prefix, scope) for scope in scopes])
            final = {scope: orjson.loads(v)["seq"] for scope, v in zip(scopes, stored, strict=True)
                     if v is not None}
            web_metrics = await br.metrics(web_port)
            result = await stop_clients(clients, out)
            clients = None
            sim_starts = {f"{p}-{e['channel_id']}": e["time"] for p, pbx in pbxs.items()
                          for e in await br.fetch_all(pbx, "/stasis_starts", "stasis_starts")
                          if e["args"][:1] == ["inbound"]}
            (load.work / "final.json").write_bytes(orjson.dumps({
                "final": final, "sim_starts": sim_starts, "web_metrics": web_metrics, "boards": boards,
                "load_window": load_window, "aggregator_metrics": aggregator_metrics}))
            calls = await read_topic(settings, TopicName.CALLS)
            agents = await read_topic(settings, TopicName.AGENTS)
            ari = await read_topic(settings, TopicName.ARI_EVENTS)
        finally:
            if clients is not None and clients.returncode is None:
                clients.kill()

    # Apart, not concatenated: every process registers all of callstream_common.metrics, so the aggregator's
    # empty web histograms would shadow the web instance's ones.
    report(result, final, calls, agents, ari, sim_starts, {"aggregator": aggregator_metrics, "web": web_metrics},
           boards, load_window)


def report(result: dict[str, Any], final: dict[str, int], calls: list[tuple[Any, Any]],
           agents: list[tuple[Any, Any]], ari: list[tuple[Any, Any]], sim_starts: dict[str, float],
           service_metrics: dict[str, str], boards: dict[str, int], load_window: list[float]) -> None:
    # The simulator's clock against the wall clock: each inbound StasisStart's `timestamp` (the simulator's
    # clock) against the wall time (time.time()) the simulator logged when it wrote that frame to the gateway.
    skew = []
    for _record, event in ari:
        if event.get("type") == "StasisStart" and event.get("args", [])[:1] == ["inbound"]:
            call_id = f"{_record.key.decode()}-{event['channel']['id']}"
            if call_id in sim_starts:
                skew.append(sim_starts[call_id] * 1000 - at_ms(event["timestamp"]))
    print(f"  clock: StasisStart written (sim wall clock) - its ARI timestamp: {fmt(skew)}; "
          f"min {min(skew, default=float('nan')):.1f} ms", flush=True)

    # Kafka CreateTime of the first record carrying each `at` (ms), per topic: when the router / agent-state
    # produced what the PBX did at that instant.
    produced: dict[int, float] = {}
    stage_topic: dict[str, list[float]] = {"calls": [], "agents": []}
    in_load: list[tuple[int, float]] = []  # (at, CreateTime) of every event of the load, both topics
    for name, records in (("calls", calls), ("agents", agents)):
        for record, message in records:
            at = getattr(message.body, "at", None)
            if at is None:
                continue
            key = at_ms(at)
            produced[key] = min(produced.get(key, float("inf")), float(record.timestamp))
            if load_window[0] <= key <= load_window[1]:
                stage_topic[name].append(record.timestamp - key)
                in_load.append((key, float(record.timestamp)))
    for name, values in stage_topic.items():
        print(f"  stage PBX at -> {name} record (events of the load): {fmt(values)}", flush=True)

    # `last_event_at` is the newest `at` folded into a board: when an older event arrives late (agent-state and
    # the router lag differently), the figure it changes is timed from a newer event, so the headline figure
    # understates that event's latency. A per-event view on the whole-centre board, which every event touches:
    # for each event of the load, the first tenant/all snapshot a client received that was built after the
    # event's record existed, minus the event's `at` (a lower bound still: built after is not folded in).
    per_event: list[float] = []
    for client in result["clients"]:
        if client["scope"] != "tenant/all":
            continue
        built = sorted((updated, received) for received, _seq, _last, updated, *_ in client["receipts"])
        updated_list = [u for u, _ in built]
        for at, created in in_load:
            i = bisect.bisect_left(updated_list, created)
            if i < len(built):
                per_event.append(built[i][1] - at)
    print(f"  per-event lower bound on tenant/all (PBX at -> first receipt of a snapshot built after the event's "
          f"record): {fmt(per_event)}", flush=True)

    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    stages: dict[str, list[float]] = {"PBX at -> record of that event": [], "record -> snapshot updated_at": [],
                                      "updated_at -> client receipt": []}
    not_advanced = 0
    missed: list[str] = []
    for client in result["clients"]:
        scope = client["scope"]
        if client["failed"] or not client["connected"]:
            missed.append(f"{client['index']} {scope}: {client['failed'] or 'never connected'}")
        elif scope in final and (client["last_seq"] is None or client["last_seq"] < final[scope]):
            missed.append(f"{client['index']} {scope}: last seq {client['last_seq']} < final {final[scope]}")
        for received, _seq, newest, updated, advanced, oldest in client["receipts"]:
            # From the oldest event the snapshot carries (the least fresh change), when the board says; a
            # periodic refresh that happens to show a change carries none and is timed from the newest.
            last_event = oldest if oldest is not None else newest
            latency = received - last_event
            latencies.append(latency)
            by_kind.setdefault(scope.split("/")[0], []).append(latency)
            not_advanced += not advanced
            stages["updated_at -> client receipt"].append(received - updated)
            if last_event in produced:
                stages["PBX at -> record of that event"].append(produced[last_event] - last_event)
                stages["record -> snapshot updated_at"].append(updated - produced[last_event])
    for kind, values in sorted(by_kind.items()):
        print(f"  update latency {kind:10}: {fmt(values)}", flush=True)
    for stage, values in stages.items():
        print(f"  stage {stage:32}: {fmt(values)}", flush=True)
    received = sum(c["snapshots"] for c in result["clients"])
    unchanged = sum(c["unchanged"] for c in result["clients"])
    print(f"bench-wallboard: {received} snapshots received, {len(latencies)} with changed figures "
          f"({not_advanced} of them without a newer last_event_at: a late event, older than the board's newest), "
          f"{unchanged} unchanged (refreshes)", flush=True)
    # The aggregator's histograms cover its whole life, the log-in storm included, not only the load.
    for service, name in (("aggregator", "callstream_stats_event_to_publish_seconds"),
                          ("aggregator", "callstream_stats_publish_seconds"),
                          ("web", "callstream_stats_web_delivery_seconds")):
        for line in br.histogram_summary(service_metrics[service], name):
            print(f"  {service} {line}", flush=True)
    for line in service_metrics["web"].splitlines():
        if line.startswith(("callstream_stats_web_superseded_total", "callstream_stats_web_streams_closed_total")):
            print(f"  web {line}", flush=True)
    if missed:
        print(f"bench-wallboard: missed, e.g. {missed[:5]}", flush=True)
    print(f"BENCH wallboard clients={sum(boards.values())} update_p50_ms={br.percentile(latencies, 0.5):.1f} "
          f"update_p99_ms={br.percentile(latencies, 0.99):.1f} missed={len(missed)}")


async def _quiet(settings: ServiceSettings) -> bool:
    return await aggregator_lag(settings) == 0


if __name__ == "__main__":
    asyncio.run(main())
