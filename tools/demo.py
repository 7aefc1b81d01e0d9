"""make demo: the platform on the local stack with a simulated PBX, until Ctrl-C.

Starts what exists today: the PBX simulator with inbound traffic, the ARI gateway streaming its events into
Kafka, and the ACD: the demo site (tools/demo-site.yaml) loaded, the agent-state and router workers, the
simulator's agents logged in through cms.commands; and the stats service: its aggregator and one wallboard web
instance for the demo's tenant. It prints where everything is and how to watch it, then a status line every few
seconds (calls from the `calls` table, agents by state from Redis, the tenant board's figures from the web API).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import yaml

from callstream_common.availability import Availability
from callstream_common.codec import new_envelope
from callstream_common.kafka.producer import Producer
from callstream_common.messages.cms import AgentLogin, AgentLogout
from callstream_common.settings import ServiceSettings
from callstream_common.site import load_site_file
from callstream_common.topics import TopicName, topic_name

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ARI_DOCS = ROOT.parent / "shared" / "ari" / "api-docs"
SIM_PORT, GATEWAY_HTTP, WALLBOARD_PORT = 8088, 9101, 8090
WALLBOARD = f"http://127.0.0.1:{WALLBOARD_PORT}"
AUTH = "Basic " + b64encode(b"asterisk:asterisk").decode()
LOGS = ROOT / ".stack" / "demo"
SITE = ROOT / "tools" / "demo-site.yaml"
PBX, DID = "pbx1", "5550100"  # as in tools/demo-site.yaml
# The simulator runs on the real clock (time scale 1): with a faster clock its event timestamps run ahead of
# the wall clock the services stamp their own events with, and every duration on the wallboard that mixes the two
# (longest wait, AHT, occupancy, the rolling windows) comes out wrong. The callers are short instead, so a
# minute of demo shows calls answered, ended and abandoned: talk about 25 s, patience about 45 s. With the
# queue's 5 s wrap-up and 1-4 s of ringing, 20 agents take about 0.6 calls/s; 0.5 keeps them busy and a few
# callers waiting.
INBOUND_RATE = 0.5


def simulator_site(agents: int) -> dict[str, Any]:
    """The simulated PBX `pbx1` (docs/pbx-sim.md, site file): one phone per agent, named as the demo site's
    endpoint template expects, and inbound traffic on the demo site's DID."""
    site: dict[str, Any] = {
        "host": "127.0.0.1", "user": "asterisk", "password": "asterisk", "app": "callstream", "time_scale": 1,
        "pbxs": [{
            "name": PBX, "port": SIM_PORT, "entity_id": "02:00:00:00:00:01",
            "agents": {"count": agents, "behaviour": {"answer_after_s": {"dist": "uniform", "min": 1, "max": 4}}},
            "supervisors": {"count": 0},
            "dids": [{"number": DID, "rate_per_s": INBOUND_RATE, "hangup_by": "caller",
                      "patience_s": {"dist": "exponential", "mean": 45, "max": 300},
                      "talk_s": {"dist": "lognormal", "mean": 25, "sd": 12, "min": 5, "max": 120}}],
        }],
    }
    if ARI_DOCS.is_dir():
        site["api_docs"] = str(ARI_DOCS)
    return site


def get(url: str, auth: bool = False) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": AUTH} if auth else {})
    with urllib.request.urlopen(request, timeout=2) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def start(name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([PY, *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
                            env={**os.environ, **(env or {})})


def worker(name: str, module: str) -> subprocess.Popen[bytes]:
    """An ACD worker with the default settings (tenant `default`, no topic prefix: the demo site's)."""
    return start(name, ["-m", module], {"CALLSTREAM_DATADIR": str(LOGS / f"{name}-data"),
                                        "CALLSTREAM_TICK_INTERVAL_S": "0.5"})


async def agents_known(settings: ServiceSettings, count: int) -> bool:
    """agent-state has started: it upserts every configured agent into Redis before handling inputs."""
    client = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        return len(await Availability(client, settings.tenant).snapshot(PBX)) >= count
    finally:
        await client.aclose()


async def log_in(settings: ServiceSettings, agents: list[tuple[str, str]]) -> None:
    """What the CMS does when agents sign in at their desks, after logging out what a previous run left.

    The simulated PBX is new on every run, so an agent still logged in from the last one sits on a phone that is
    gone; worse, agent-state refuses a login for an agent it believes logged in, even when Redis (what the
    router reserves from) lost it, and such an agent would never get a call. Logging out first (a no-op for an
    agent already logged out) starts every run from the same clean state. Both commands go to one partition
    (same PBX key), so agent-state sees them in order.
    """
    run = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    topic = topic_name(TopicName.CMS_COMMANDS, settings.topic_prefix)
    async with Producer(settings.kafka_bootstrap, service="demo", client_id="demo") as producer:
        for agent_id, endpoint in agents:
            logout = AgentLogout(command_id=f"demo-logout-{run}-{agent_id}", requested_at=datetime.now(UTC),
                                 agent_id=agent_id)
            login = AgentLogin(command_id=f"demo-login-{run}-{agent_id}", requested_at=datetime.now(UTC),
                               agent_id=agent_id, endpoint=endpoint, station="demo")
            for command in (logout, login):
                await producer.send(topic, new_envelope(command, tenant=settings.tenant, producer="demo", pbx_id=PBX))


CALLS_SQL = """
SELECT count(*) AS queued,
       count(*) FILTER (WHERE answered_at IS NULL AND ended_at IS NULL) AS waiting,
       count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
       count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned
FROM calls WHERE tenant = $1 AND queued_at >= $2"""


async def acd_status(settings: ServiceSettings, since: datetime) -> str:
    """Calls of this demo run from the `calls` table, agents by state from Redis."""
    try:
        conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
        try:
            row = await conn.fetchrow(CALLS_SQL, settings.tenant, since)
        finally:
            await conn.close()
        calls = (f"calls queued {row['queued']} (waiting {row['waiting']}) answered {row['answered']}"
                 f" abandoned {row['abandoned']}")
    except (OSError, asyncpg.PostgresError) as exc:  # the router creates the table at its first start
        calls = f"calls ? ({type(exc).__name__})"
    client = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        states = Counter(a.state.value for a in await Availability(client, settings.tenant).snapshot(PBX))
    finally:
        await client.aclose()
    return f"{calls} | agents " + " ".join(f"{state} {n}" for state, n in sorted(states.items()))


def board_status() -> str:
    """The whole centre's board as the TVs get it (the web side's JSON API), so the status line shows it move."""
    try:
        board = get(f"{WALLBOARD}/api/boards/tenant/all")
    except OSError as exc:  # 404 until the aggregator's first snapshot; the web side restarting
        return f"board ? ({type(exc).__name__})"
    today = board["periods"]["today"]
    return (f"board #{board['seq']} waiting {board['now']['waiting']} offered {today['offered']}"
            f" answered {today['answered']} SL {today['sl_pct']}")


def wait_for(what: str, probe: object, child: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            sys.exit(f"demo: {what} exited; see {LOGS}/")
        try:
            if probe():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"demo: {what} did not come up in {timeout:.0f} s; see {LOGS}/")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C, and also SIGTERM (a supervisor, `kill`): both run the clean-up below, which stops the children; they
    # run in sessions of their own, so nothing else would. SIGINT is set explicitly because a shell starting the
    # demo in the background without job control leaves it ignored, and Python then keeps it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    for step in (["-m", "callstream_admin", "topics"], ["-m", "callstream_admin", "migrate"],
                 ["-m", "callstream_admin", "site", "load", str(SITE)]):
        subprocess.run([PY, *step], check=True, cwd=ROOT)
    settings = ServiceSettings(service="demo")
    site = load_site_file(SITE)
    agents = [(a.id, f"PJSIP/{a.endpoint}") for a in site.agent_configs if a.pbx == PBX]
    since = datetime.now(UTC)
    sim_site = LOGS / "pbx-sim-site.yaml"
    LOGS.mkdir(parents=True, exist_ok=True)
    sim_site.write_text(yaml.safe_dump(simulator_site(len(agents)), sort_keys=False))
    sim = start("pbx-sim", ["-m", "callstream_pbx_sim", "--site", str(sim_site)])
    children = [sim]
    try:
        wait_for("the PBX simulator", lambda: get(f"http://127.0.0.1:{SIM_PORT}/ari/asterisk/ping", True), sim)
        gateway = start("ari-gateway", ["-m", "callstream_ari_gateway", "--pbx-id", "pbx1", "--ari-url",
                                        f"http://127.0.0.1:{SIM_PORT}/ari", "--http-port", str(GATEWAY_HTTP),
                                        "--spool-dir", str(ROOT / ".stack" / "gateway")])
        children.append(gateway)
        wait_for("the ARI gateway", lambda: get(f"http://127.0.0.1:{GATEWAY_HTTP}/ready").get("ready"), gateway)
        agent_state = worker("agent-state", "callstream_agent_state")
        router = worker("router", "callstream_router")
        projector = start("router-projector", ["-m", "callstream_router.projector"])  # the calls table
        children += [agent_state, router, projector]
        wait_for("the agent-state worker", lambda: asyncio.run(agents_known(settings, len(agents))), agent_state,
                 timeout=90)
        asyncio.run(log_in(settings, agents))
        # The stats service as deployed: the aggregator (one per tenant) and a web instance, each its own process
        # through the same entry point (`python -m callstream_stats aggregate|web`), both on the default tenant.
        aggregator = start("stats-aggregate", ["-m", "callstream_stats", "aggregate"])
        wallboard = start("stats-web", ["-m", "callstream_stats", "web", "--port", str(WALLBOARD_PORT)])
        children += [aggregator, wallboard]
        wait_for("the wallboard web server", lambda: get(f"{WALLBOARD}/health")["subscribed"], wallboard)
        # The aggregator publishes nothing before it has replayed the topics (docs/metrics.md), so the first
        # snapshot of the tenant board says the figures are live.
        wait_for("the stats aggregator", lambda: get(f"{WALLBOARD}/api/boards/tenant/all"), aggregator, timeout=120)
        queue = site.queues[0].id
        print(f"""
callstream demo is running (Ctrl-C stops it; logs in {LOGS}/):
  PBX simulator   http://127.0.0.1:{SIM_PORT}/ari  (asterisk/asterisk, app callstream, {len(agents)} agents,
                  {INBOUND_RATE:g} calls/s on DID {DID}, talk ~25 s, patience ~45 s; {sim_site.relative_to(ROOT)})
                  counters: curl -u asterisk:asterisk http://127.0.0.1:{SIM_PORT}/_sim/counters
  ari-gateway     pbx1 -> Kafka 127.0.0.1:19092; http://127.0.0.1:{GATEWAY_HTTP}/ready and /metrics
  ACD             site {SITE.relative_to(ROOT)} (tenant {settings.tenant}); agent-state and router workers,
                  the router's projector (the calls table); the agents logged in through cms.commands
  watch events    .venv/bin/python -m callstream_admin.tail ari.events
  watch calls     .venv/bin/python -m callstream_admin.tail calls
  watch agents    .venv/bin/python -m callstream_admin.tail agents
  calls table     psql postgresql://callstream:callstream@127.0.0.1:15432/callstream -c \\
                    "SELECT call_id, queue_id, agent_id, outcome, wait_s, talk_s FROM calls
                     WHERE tenant = '{settings.tenant}' ORDER BY queued_at DESC LIMIT 20"
  wallboard       {WALLBOARD}/                       every board of tenant {settings.tenant}
                  {WALLBOARD}/board/tenant/all      the whole centre
                  {WALLBOARD}/board/queue/{queue}         queue {queue} (thresholds: ?sl_target=90&waiting_warn=3 ...)
                  {WALLBOARD}/api/boards            JSON; SSE: curl -N {WALLBOARD}/stream/tenant/all
""", flush=True)
        while True:
            time.sleep(5)
            for name, child in (("agent-state", agent_state), ("router", router), ("ari-gateway", gateway),
                                ("stats-aggregate", aggregator), ("stats-web", wallboard)):
                if child.poll() is not None:
                    sys.exit(f"demo: the {name} exited; see {LOGS}/{name}.log")
            counters = get(f"http://127.0.0.1:{SIM_PORT}/_sim/counters", True)
            ready = get(f"http://127.0.0.1:{GATEWAY_HTTP}/ready")
            print(f"{time.strftime('%H:%M:%S')} PBX calls {counters['calls_generated'] + counters['calls_injected']}"
                  f" channels {counters['channels']} events {counters['events_total']}"
                  f" gateway ready={ready['ready']} | {asyncio.run(acd_status(settings, since))}"
                  f" | {board_status()}", flush=True)
    except KeyboardInterrupt:
        print("\nstopping the demo (the stack keeps running: make stack-down stops it)")
    finally:
        for child in reversed(children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
