"""make demo: the platform on the local stack with a simulated PBX, until Ctrl-C.

Starts what exists today — the PBX simulator with inbound traffic and the ARI gateway streaming its events
into Kafka — prints where everything is and how to watch it, then a status line every few seconds. The ACD
(router, agent-state) and the wallboard join this script as they are built (docs/README.md has the status).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ARI_DOCS = ROOT.parent / "shared" / "ari" / "api-docs"
SIM_PORT, GATEWAY_HTTP = 8088, 9101
AUTH = "Basic " + b64encode(b"asterisk:asterisk").decode()
LOGS = ROOT / ".stack" / "demo"


def get(url: str, auth: bool = False) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": AUTH} if auth else {})
    with urllib.request.urlopen(request, timeout=2) as response:
        return json.loads(response.read())


def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([PY, *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


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
    for step in (["-m", "callstream_admin", "topics"], ["-m", "callstream_admin", "migrate"]):
        subprocess.run([PY, *step], check=True, cwd=ROOT)
    docs = ["--api-docs", str(ARI_DOCS)] if ARI_DOCS.is_dir() else []
    sim = start("pbx-sim", ["-m", "callstream_pbx_sim", "--port", str(SIM_PORT), "--agents", "20",
                            "--inbound-rate", "0.5", *docs])
    children = [sim]
    try:
        wait_for("the PBX simulator", lambda: get(f"http://127.0.0.1:{SIM_PORT}/ari/asterisk/ping", True), sim)
        gateway = start("ari-gateway", ["-m", "callstream_ari_gateway", "--pbx-id", "pbx1", "--ari-url",
                                        f"http://127.0.0.1:{SIM_PORT}/ari", "--http-port", str(GATEWAY_HTTP),
                                        "--spool-dir", str(ROOT / ".stack" / "gateway")])
        children.append(gateway)
        wait_for("the ARI gateway", lambda: get(f"http://127.0.0.1:{GATEWAY_HTTP}/ready").get("ready"), gateway)
        print(f"""
callstream demo is running (Ctrl-C stops it; logs in {LOGS}/):
  PBX simulator   http://127.0.0.1:{SIM_PORT}/ari  (asterisk/asterisk, app callstream, 20 agents, 0.5 calls/s)
                  counters: curl -u asterisk:asterisk http://127.0.0.1:{SIM_PORT}/_sim/counters
  ari-gateway     pbx1 -> Kafka 127.0.0.1:19092; http://127.0.0.1:{GATEWAY_HTTP}/ready and /metrics
  watch events    .venv/bin/python -m callstream_admin.tail ari.events
  wallboard       not yet: the stats service comes with issue 6 (the router and agent-state with issue 5)
""", flush=True)
        while True:
            time.sleep(5)
            counters = get(f"http://127.0.0.1:{SIM_PORT}/_sim/counters", True)
            ready = get(f"http://127.0.0.1:{GATEWAY_HTTP}/ready")
            print(f"{time.strftime('%H:%M:%S')} calls {counters['calls_generated'] + counters['calls_injected']}"
                  f"  channels {counters['channels']}  PBX events {counters['events_total']}"
                  f"  gateway ready={ready['ready']} buffer={ready['buffer']} spool={ready['spool']}", flush=True)
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
