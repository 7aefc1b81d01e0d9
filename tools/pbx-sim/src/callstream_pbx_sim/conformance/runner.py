"""Runs the conformance suite: starts (or reaches) a simulator, drives every flow, then judges everything.

Judging happens after the flows, on the complete record:
1. every WebSocket message against the api-docs models (and the Message/Event discriminator hierarchy),
   plus what every Asterisk message carries (asterisk_id = the entity id, `application` = a subscribed app)
   and the shapes Asterisk gives channels, bridges and causes;
2. every REST exchange against its api-docs operation (responses.py);
3. each flow's event order against its FlowSpec (sequences.py), and stream-wide invariants.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .client import AriClient, FlowError, Recorder, SimControl
from .flows import CONCURRENT, EXCLUSIVE, Ctx, about, api_docs
from .responses import ResponseChecker
from .sequences import FLOWS, check_flow, check_stream_invariants
from .swagger import ApiDocs, Validator

# ast_cause2str() texts (main/channel.c causes[]); anything else is "Unknown".
CAUSE_TEXT: Mapping[int, str] = {
    0: "Unknown", 1: "Unallocated (unassigned) number", 2: "No route to specified transmit network",
    3: "No route to destination", 5: "Misdialed trunk prefix", 6: "Channel unacceptable",
    7: "Call awarded and being delivered in an established channel", 8: "Pre-empted",
    14: "Number ported elsewhere", 16: "Normal Clearing", 17: "User busy", 18: "No user responding",
    19: "User alerting, no answer", 20: "Subscriber absent", 21: "Call Rejected", 22: "Number changed",
    23: "Redirected to new destination", 26: "Answered elsewhere", 27: "Destination out of order",
    28: "Invalid number format", 29: "Facility rejected", 30: "Response to STATus ENQuiry",
    31: "Normal, unspecified", 34: "Circuit/channel congestion", 38: "Network out of order",
    41: "Temporary failure", 42: "Switching equipment congestion",
}
# main/dial.c and app_dial (NOTES §e.11).
DIAL_STATUSES = frozenset({"", "RINGING", "PROGRESS", "PROCEEDING", "ANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL",
                           "NOANSWER", "CANCEL"})
CHANNEL_KEYS = ("channel", "peer", "caller", "forwarded", "replace_channel", "transferee", "transfer_target",
                "transferer_first_leg", "transferer_second_leg")
PJSIP_NAME_RE = re.compile(r"^PJSIP/[^/]+-[0-9a-f]{8}$")
SNOOP_NAME_RE = re.compile(r"^Snoop/[^/]+-[0-9a-f]{8}$")


@dataclass
class Result:
    events: int
    types: int
    responses: int
    violations: list[str]
    flow_results: dict[str, int] = field(default_factory=dict)
    event_types: list[str] = field(default_factory=list)

    @property
    def line(self) -> str:
        return (f"CONFORMANCE events={self.events} types={self.types} responses={self.responses} "
                f"violations={len(self.violations)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SimulatorProcess:
    """A simulator started for the run: its own process, so that it never shares our event loop."""

    def __init__(self, api_docs: Path, *, user: str, password: str, app: str, entity_id: str,
                 agents: int = 20, port: int | None = None, extra: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="pbx-sim-", suffix=".log", delete=False)
        self.cmd = [sys.executable, "-m", "callstream_pbx_sim", "--host", "127.0.0.1", "--port", str(self.port),
                    "--user", user, "--password", password, "--app", app, "--agents", str(agents),
                    "--inbound-rate", "0", "--api-docs", str(api_docs), "--seed", "7",
                    "--entity-id", entity_id, *(extra or [])]
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, user: str, password: str, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"simulator exited with {self.proc.returncode}: {self.tail()}")
                try:
                    async with session.get(f"{self.base_url}/ari/asterisk/ping",
                                           headers={"Authorization": aiohttp.encode_basic_auth(user, password)},
                                           timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"simulator not answering on {self.base_url} after {timeout}s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            text = Path(self.log.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


# --- judging -----------------------------------------------------------------------------------------------------
def _channels_in(obj: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(obj, Mapping):
        for key in CHANNEL_KEYS:
            value = obj.get(key)
            if isinstance(value, Mapping) and "dialplan" in value:
                yield key, value


def shape_checks(where: str, obj: Any) -> list[str]:
    """Shapes of Asterisk's objects beyond the models: channel names, bridge technologies."""
    out: list[str] = []
    items = obj if isinstance(obj, list) else [obj]
    for item in items:
        if not isinstance(item, Mapping):
            continue
        candidates = list(_channels_in(item))
        if "dialplan" in item and "caller" in item:
            candidates.append(("", item))
        for key, chan in candidates:
            name = str(chan.get("name", ""))
            at = f"{where}.{key}" if key else where
            if name.startswith("PJSIP/") and not PJSIP_NAME_RE.match(name):
                out.append(f"{at}: channel name {name!r} is not PJSIP/<endpoint>-<8 hex> (NOTES §g)")
            if name.startswith("Snoop/") and not SNOOP_NAME_RE.match(name):
                out.append(f"{at}: channel name {name!r} is not Snoop/<id>-<8 hex> (NOTES §g)")
        bridges = [item.get("bridge")] if isinstance(item.get("bridge"), Mapping) else []
        if "bridge_type" in item:
            bridges.append(item)
        for bridge in bridges:
            assert isinstance(bridge, Mapping)
            kind, tech = bridge.get("bridge_type"), bridge.get("technology")
            if kind == "holding" and tech != "holding_bridge":
                out.append(f"{where}: holding bridge with technology {tech!r}; Asterisk's is 'holding_bridge'")
            if kind == "mixing" and tech not in ("simple_bridge", "softmix"):
                out.append(f"{where}: mixing bridge with technology {tech!r}; Asterisk's are 'simple_bridge' and "
                           f"'softmix' (NOTES §b1.6)")
    return out


def event_checks(event: Mapping[str, Any], apps: tuple[str, ...], entity_id: str) -> list[str]:
    kind = str(event.get("type"))
    where = f"event {kind}"
    out: list[str] = []
    if event.get("asterisk_id") != entity_id:
        out.append(f"{where}: asterisk_id {event.get('asterisk_id')!r}, every message carries the entity id "
                   f"{entity_id!r} (NOTES §a: app_send stamps it)")
    if "application" in event and event.get("application") not in apps:
        out.append(f"{where}: application {event.get('application')!r} is not one of the connection's apps {list(apps)}")
    out.extend(shape_checks(where, event))
    if kind == "ChannelDestroyed":
        cause, text = event.get("cause"), event.get("cause_txt")
        if isinstance(cause, int) and CAUSE_TEXT.get(cause, "Unknown") != text:
            out.append(f"{where}: cause {cause} has cause_txt {text!r}; ast_cause2str gives "
                       f"{CAUSE_TEXT.get(cause, 'Unknown')!r}")
    elif kind == "Dial" and event.get("dialstatus") not in DIAL_STATUSES:
        out.append(f"{where}: dialstatus {event.get('dialstatus')!r} is not one Asterisk uses (NOTES §e.11)")
    elif kind in ("ChannelEnteredBridge", "ChannelLeftBridge"):
        members = (event.get("bridge") or {}).get("channels", [])
        cid = (event.get("channel") or {}).get("id")
        if isinstance(members, list) and cid is not None:
            if kind == "ChannelEnteredBridge" and cid not in members:
                out.append(f"{where}: the bridge snapshot does not list the channel that entered")
            if kind == "ChannelLeftBridge" and cid in members:
                out.append(f"{where}: the bridge snapshot still lists the channel that left")
    return out


def _dedupe(lines: list[str]) -> list[str]:
    """Identical problems (up to digits: ids, timestamps) are listed once, with their count."""
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for line in lines:
        key = re.sub(r"\d+", "#", line)
        counts[key] += 1
        first.setdefault(key, line)
    return [first[k] + (f"  (x{counts[k]})" if counts[k] > 1 else "") for k in first]


def _flow_of(line: str) -> str:
    match = re.match(r"^\[([^\]]+)\]", line)
    return match.group(1) if match else "events"


async def run_conformance(api_docs_dir: Path | str, base_url: str | None = None, *, user: str = "asterisk",
                          password: str = "asterisk", app: str = "callstream",
                          out: Callable[[str], None] = print, verbose: bool = False,
                          dump: Path | None = None) -> Result:
    docs = ApiDocs(api_docs_dir)
    validator = Validator(docs)
    checker = ResponseChecker(docs, validator)
    entity_id = "00:00:5e:00:53:2a"
    sim_proc: SimulatorProcess | None = None
    if base_url is None:
        sim_proc = SimulatorProcess(Path(api_docs_dir), user=user, password=password, app=app, entity_id=entity_id)
        out(f"starting simulator: {' '.join(sim_proc.cmd[1:])}")
        await sim_proc.start(user, password)
        base_url = sim_proc.base_url
    recorder = Recorder()
    run_id = f"cf{uuid.uuid4().hex[:6]}"
    ctx: Ctx | None = None
    try:
        async with aiohttp.ClientSession() as session:
            client = AriClient(base_url, user, password, recorder, session)
            try:
                ctx = await _drive(docs, client, SimControl(client), recorder, app, run_id)
            except FlowError as exc:
                recorder.violation("setup", f"cannot run the flows: {exc}")
    finally:
        if sim_proc is not None:
            if verbose:
                out(sim_proc.tail())
            sim_proc.stop()
    if dump is not None:
        _dump(recorder, dump)
        out(f"wrote every message and exchange to {dump}")
    return _judge(docs, validator, checker, recorder, ctx, out)


def _dump(recorder: Recorder, path: Path) -> None:
    """Everything observed, one JSON object a line, in arrival order per kind (for reading a violation)."""
    with path.open("w") as fh:
        for item in recorder.received:
            record = {"ws": item.conn, "apps": item.apps, "at": round(item.at, 4), "event": item.event}
            fh.write(json.dumps(record) + "\n")
        for ex in recorder.exchanges:
            fh.write(json.dumps({"flow": ex.flow, "request": ex.describe(), "status": ex.status,
                                 "body": ex.body.decode("utf-8", "replace")[:2000]}) + "\n")


async def _drive(docs: ApiDocs, client: AriClient, sim: SimControl, recorder: Recorder, app: str,
                 run_id: str) -> Ctx:
    info = await client.ok("setup", "GET", "/asterisk/info")
    entity_id = str(((info or {}).get("system") or {}).get("entity_id", ""))
    await sim.traffic(enabled=False)  # background calls would wander into our app; a refusal is harmless
    sim_info = await sim.info()
    trunk = sim_info.get("trunk") if isinstance(sim_info, dict) else None
    endpoints = await client.ok("setup", "GET", "/endpoints")
    pjsip = sorted(str(e.get("resource")) for e in endpoints or []
                   if isinstance(e, dict) and e.get("technology") == "PJSIP" and e.get("resource") != trunk)
    supervisors = [r for r in pjsip if "sup" in r.lower()]
    agents = [r for r in pjsip if r not in supervisors]
    ctx = Ctx(client=client, sim=sim, rec=recorder, app=app, app2=f"{app}-moved", observer=f"{app}-observer",
              run_id=run_id, agents=agents, supervisors=supervisors, entity_id=entity_id)
    ctx.trunk = str(trunk) if trunk else None
    if isinstance(sim_info, dict) and sim_info.get("dids"):
        ctx.dids = [str(d) for d in sim_info["dids"]]
    ctx.connections["main"] = await client.connect("setup", [ctx.app])
    ctx.connections["moved"] = await client.connect("setup", [ctx.app2])
    ctx.connections["observer"] = await client.connect("setup", [ctx.observer], subscribe_all=True)

    async def guarded(name: str, fn: Callable[[Ctx], Any]) -> None:
        started = time.monotonic()
        try:
            await fn(ctx)
        except FlowError as exc:
            ctx.aborted.add(name)
            recorder.violation(name, f"flow aborted: {exc}")
        except Exception as exc:  # a bug in a flow or a malformed answer; reported, never hidden
            ctx.aborted.add(name)
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            recorder.violation(name, f"flow crashed: {type(exc).__name__}: {exc} at {tb[-2].strip() if len(tb) > 1 else ''}")
        finally:
            ctx.bindings.setdefault("_durations", {})[name] = round(time.monotonic() - started, 2)

    await asyncio.gather(*(guarded(name, fn) for name, fn in CONCURRENT))
    await guarded("api-docs", lambda c: api_docs(c, docs))
    for name, fn in EXCLUSIVE:
        await guarded(name, fn)
    # Barrier: a user event per app; once it arrives, everything published before it has been delivered.
    for target in (ctx.app, ctx.app2, ctx.observer):
        try:
            await client.ok("barrier", "POST", f"/events/user/cs-barrier-{run_id}", params={"application": target},
                            expect=204)
            await recorder.wait_for(target, about("ChannelUserevent", eventname=f"cs-barrier-{run_id}"),
                                    timeout=10, what="the end-of-run user event", flow="barrier")
        except FlowError as exc:
            recorder.violation("barrier", str(exc))
    for conn in ctx.connections.values():
        await conn.close()
    return ctx


def _judge(docs: ApiDocs, validator: Validator, checker: ResponseChecker, recorder: Recorder, ctx: Ctx | None,
           out: Callable[[str], None]) -> Result:
    problems: list[str] = list(recorder.problems)
    entity_id = ctx.entity_id if ctx else ""
    types: Counter[str] = Counter()
    for item in recorder.received:
        event = item.event
        if not isinstance(event, dict):
            problems.append(f"[events] connection {item.conn}: a WebSocket message is not a JSON object: {item.text[:120]!r}")
            continue
        types[str(event.get("type"))] += 1
        problems.extend(f"[events] {p}" for p in validator.validate_message(event))
        problems.extend(f"[events] {p}" for p in event_checks(event, item.apps, entity_id))
    for ex in recorder.exchanges:
        problems.extend(checker.check(ex))
        if 200 <= ex.status < 300 and ex.json_body is not None:
            problems.extend(f"[{ex.flow}] {p}" for p in shape_checks(f"{ex.describe()} body", ex.json_body))
    if ctx is not None:
        fresh = {str(v) for b in ctx.bindings.values() if isinstance(b, dict) for v in b.values() if isinstance(v, str)}
        for spec in FLOWS.values():
            bindings = ctx.bindings.get(spec.name)
            source = "b1-caller-hangs-up" if spec.name == "observer-subscribeAll" else spec.name
            if bindings is None:
                if source not in ctx.aborted:
                    problems.append(f"[{spec.name}] the flow never ran")
                continue
            full = {**ctx.bindings.get(source, {}), **bindings} if source != spec.name else bindings
            found = check_flow(spec, full, recorder.streams)
            if source in ctx.aborted:
                found = [p for p in found if "was never bound" not in p]
            problems.extend(found)
        for app_name, events in recorder.streams.items():
            problems.extend(check_stream_invariants(app_name, events, app_name in recorder.subscribe_all_apps, fresh))
        missing = sorted(set(docs.event_types()) - set(types))
        out(f"event types seen ({len(types)}): {', '.join(sorted(types))}")
        out(f"event types never seen ({len(missing)}): {', '.join(missing)}")
    listed = _dedupe(problems)
    per_flow: Counter[str] = Counter(_flow_of(p) for p in listed)
    requests: Counter[str] = Counter(ex.flow for ex in recorder.exchanges)
    names = [n for n, _ in CONCURRENT] + ["api-docs"] + [n for n, _ in EXCLUSIVE]
    durations = ctx.bindings.get("_durations", {}) if ctx else {}
    for name in names + sorted(set(per_flow) - set(names)):
        verdict = "ok" if per_flow[name] == 0 else f"FAIL ({per_flow[name]} violations)"
        extra = f"{requests[name]} requests" + (f", {durations[name]}s" if name in durations else "")
        out(f"flow {name:<24} {verdict:<22} {extra}")
    if listed:
        out("")
        out("violations:")
        for line in sorted(listed, key=_flow_of):
            out(f"  - {line}")
    result = Result(events=len(recorder.received), types=len(types), responses=len(recorder.exchanges),
                    violations=listed, flow_results=dict(per_flow), event_types=sorted(types))
    out(result.line)
    return result
