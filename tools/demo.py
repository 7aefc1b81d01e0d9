"""make demo: the platform on the local stack with a simulated PBX, until Ctrl-C.

Starts what exists today: the PBX simulator with inbound traffic, the ARI gateway streaming its events into
Kafka, and the ACD: the demo site (tools/demo-site.yaml) loaded, the agent-state and router workers, the
simulator's agents logged in through cms.commands. It prints where everything is and how to watch it, then a
status line every few seconds (calls from the `calls` table, agents by state from Redis). The wallboard joins
this script as it is built (docs/README.md has the status).
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

from callstream_common.availability import Availability
from callstream_common.codec import new_envelope
from callstream_common.kafka.producer import Producer
from callstream_common.messages.cms import AgentLogin
from callstream_common.settings import ServiceSettings
from callstream_common.site import load_site_file
from callstream_common.topics import TopicName, topic_name

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ARI_DOCS = ROOT.parent / "shared" / "ari" / "api-docs"
SIM_PORT, GATEWAY_HTTP = 8088, 9101
AUTH = "Basic " + b64encode(b"asterisk:asterisk").decode()
LOGS = ROOT / ".stack" / "demo"
SITE = ROOT / "tools" / "demo-site.yaml"
PBX = "pbx1"
# Simulated seconds per real second: the simulator's callers talk about 3 minutes and wait about 90 s
# (docs/pbx-sim.md); ten times faster, a minute of demo shows calls answered, ended and abandoned.
TIME_SCALE, INBOUND_RATE = 10, 0.1  # 0.1 calls per simulated second: one call a second


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
    """What the CMS does when agents sign in at their desks (an agent already logged in stays as it is)."""
    run = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    async with Producer(settings.kafka_bootstrap, service="demo", client_id="demo") as producer:
        for agent_id, endpoint in agents:
            login = AgentLogin(command_id=f"demo-login-{run}-{agent_id}", requested_at=datetime.now(UTC),
                               agent_id=agent_id, endpoint=endpoint, station="demo")
            await producer.send(topic_name(TopicName.CMS_COMMANDS, settings.topic_prefix),
                                new_envelope(login, tenant=settings.tenant, producer="demo", pbx_id=PBX))


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


def main() -> int:
    for step in (["-m", "callstream_admin", "topics"], ["-m", "callstream_admin", "migrate"],
                 ["-m", "callstream_admin", "site", "load", str(SITE)]):
        subprocess.run([PY, *step], check=True, cwd=ROOT)
    settings = ServiceSettings(service="demo")
    site = load_site_file(SITE)
    agents = [(a.id, f"PJSIP/{a.endpoint}") for a in site.agent_configs if a.pbx == PBX]
    since = datetime.now(UTC)
    docs = ["--api-docs", str(ARI_DOCS)] if ARI_DOCS.is_dir() else []
    sim = start("pbx-sim", ["-m", "callstream_pbx_sim", "--port", str(SIM_PORT), "--agents", str(len(agents)),
                            "--inbound-rate", str(INBOUND_RATE), "--time-scale", str(TIME_SCALE), *docs])
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
        children += [agent_state, router]
        wait_for("the agent-state worker", lambda: asyncio.run(agents_known(settings, len(agents))), agent_state,
                 timeout=90)
        asyncio.run(log_in(settings, agents))
        print(f"""
callstream demo is running (Ctrl-C stops it; logs in {LOGS}/):
  PBX simulator   http://127.0.0.1:{SIM_PORT}/ari  (asterisk/asterisk, app callstream, {len(agents)} agents,
                  {INBOUND_RATE * TIME_SCALE:g} calls/s, time x{TIME_SCALE})
                  counters: curl -u asterisk:asterisk http://127.0.0.1:{SIM_PORT}/_sim/counters
  ari-gateway     pbx1 -> Kafka 127.0.0.1:19092; http://127.0.0.1:{GATEWAY_HTTP}/ready and /metrics
  ACD             site {SITE.relative_to(ROOT)} (tenant {settings.tenant}); agent-state and router workers;
                  the agents logged in through cms.commands
  watch events    .venv/bin/python -m callstream_admin.tail ari.events
  watch calls     .venv/bin/python -m callstream_admin.tail calls
  watch agents    .venv/bin/python -m callstream_admin.tail agents
  calls table     psql postgresql://callstream:callstream@127.0.0.1:15432/callstream -c \\
                    "SELECT call_id, queue_id, agent_id, outcome, wait_s, talk_s FROM calls
                     WHERE tenant = '{settings.tenant}' ORDER BY queued_at DESC LIMIT 20"
  wallboard       not yet: the stats service comes with issue 6
""", flush=True)
        while True:
            time.sleep(5)
            for name, child in (("agent-state", agent_state), ("router", router), ("ari-gateway", gateway)):
                if child.poll() is not None:
                    sys.exit(f"demo: the {name} exited; see {LOGS}/{name}.log")
            counters = get(f"http://127.0.0.1:{SIM_PORT}/_sim/counters", True)
            ready = get(f"http://127.0.0.1:{GATEWAY_HTTP}/ready")
            print(f"{time.strftime('%H:%M:%S')} PBX calls {counters['calls_generated'] + counters['calls_injected']}"
                  f" channels {counters['channels']} events {counters['events_total']}"
                  f" gateway ready={ready['ready']} | {asyncio.run(acd_status(settings, since))}", flush=True)
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
