"""The simulated world and the process around it: determinism, the traffic generator under time
acceleration, several PBXs in one process, configuration errors, logging hygiene, the firehose."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_sim_harness import DID, PASSWORD, USER, Events, Sim, basic, running, sim  # noqa: F401

from callstream_pbx_sim.config import ConfigError, load_site
from callstream_pbx_sim.server import Simulator
from helpers import until

ROOT = Path(__file__).resolve().parents[2]


def _normalise(events: list[dict[str, Any]], keep: set[str]) -> list[Any]:
    """The events of the channels in `keep`, with wall-clock fields dropped and ids by first appearance."""
    labels: dict[str, str] = {}

    def label(value: str) -> str:
        return labels.setdefault(value, f"ch{len(labels)}")

    out = []
    for e in events:
        chan = e.get("channel") or {}
        if chan.get("id") not in keep:
            continue
        e = json.loads(json.dumps(e))
        e.pop("timestamp")
        for c in (e.get("channel"),):
            if isinstance(c, dict):
                c.pop("creationtime", None)
                c["id"] = label(c["id"])
        out.append(e)
    return out


async def _traffic_run(seed: int) -> list[Any]:
    dids = [{"number": DID, "rate_per_s": 0.5, "patience_s": {"dist": "exponential", "mean": 8}},
            {"number": "5550200", "rate_per_s": 0.3, "patience_s": {"dist": "uniform", "min": 2, "max": 12}}]
    async with running(seed=seed, time_scale=200.0, epoch=1_800_000_000.0,
                       pbx={"dids": dids, "traffic": False}) as s:
        ev = await s.connect("callstream", subscribe_all=True)
        await s.ctl("PUT", "/traffic", {"enabled": True}, expect=200)
        await until(lambda: s.pbx.counters.calls_generated >= 12, timeout=20, what="twelve generated calls")
        starts = [e["channel"]["id"] for e in ev.of(types=("StasisStart",))][:10]
        await until(lambda: all(c in {e["channel"]["id"] for e in ev.of(types=("ChannelDestroyed",))}
                                for c in starts), timeout=20, what="the first ten calls abandoned")
        await s.ctl("PUT", "/traffic", {"enabled": False}, expect=200)
        await ev.close()
        return _normalise(ev.items, set(starts))


async def test_same_seed_same_inputs_same_events() -> None:
    first, second = await _traffic_run(42), await _traffic_run(42)
    assert len(first) >= 10 * 6  # created, dialplan, varset, StasisStart ... destroyed, for each call
    assert first == second
    other = await _traffic_run(43)
    assert other != first  # and the seed does matter


async def test_traffic_generator_at_time_scale() -> None:
    dids = [{"number": DID, "rate_per_s": 2.0, "patience_s": 1.0}]
    async with running(time_scale=100.0, pbx={"dids": dids}) as s:
        ev = await s.connect()
        await until(lambda: s.pbx.counters.calls_generated >= 40, timeout=10, what="forty generated calls")
        starts = ev.of(types=("StasisStart",))
        assert len(starts) >= 30 and all(e["args"] == ["inbound", DID] for e in starts)
        assert all(e["channel"]["caller"]["number"].startswith("+1555") for e in starts)
        # Poisson at 2 calls per simulated second: the count over the elapsed simulated time is near 2*t.
        sim_t = s.pbx.clock.now()
        generated = s.pbx.counters.calls_generated
        assert abs(generated - 2.0 * sim_t) < 6 * (2.0 * sim_t) ** 0.5 + 5
        # A profile of zeros silences the DID.
        await s.ctl("PUT", "/traffic", {"dids": [{"number": DID, "rate_per_s": 2.0, "profile": [0.0] * 24}]},
                    expect=200)
        before = s.pbx.counters.calls_generated
        t0 = s.pbx.clock.now()
        await until(lambda: s.pbx.clock.now() > t0 + 20, timeout=5, what="twenty simulated seconds")
        assert s.pbx.counters.calls_generated == before
        await ev.close()


async def test_several_pbxs_on_their_own_ports(tmp_path: Path) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(
        f"user: {USER}\npassword: {PASSWORD}\nseed: 5\n"
        "pbxs:\n"
        "  - {name: east, port: 0, agents: {count: 2}, dids: [{number: '100'}]}\n"
        "  - {name: west, port: 0, entity_id: '0a:00:00:00:00:0b', agents: {count: 3, naming: extension}}\n"
        "  - {name: north, port: 0, trunk: isp}\n"
    )
    site = load_site(site_file, {})
    simulator = Simulator(site)
    await simulator.start()
    try:
        async with aiohttp.ClientSession() as session:
            seen = {}
            for name in ("east", "west", "north"):
                base = f"http://127.0.0.1:{simulator.ports[name]}"
                async with session.get(base + "/ari/asterisk/ping", headers=basic()) as resp:
                    seen[name] = (await resp.json())["asterisk_id"]
                async with session.get(base + "/ari/endpoints/PJSIP", headers=basic()) as resp:
                    resources = [e["resource"] for e in await resp.json()]
                if name == "east":
                    assert resources[:2] == ["east-agent-0001", "east-agent-0002"]
                if name == "west":
                    assert resources[:3] == ["1001", "1002", "1003"]
                if name == "north":
                    assert "isp" in resources
            assert seen["west"] == "0a:00:00:00:00:0b"
            assert len(set(seen.values())) == 3 and len(set(simulator.ports.values())) == 3
            # A call on one PBX is invisible on the others.
            east = f"http://127.0.0.1:{simulator.ports['east']}"
            west = f"http://127.0.0.1:{simulator.ports['west']}"
            ws = await session.ws_connect(east + "/ari/events", params={"app": "callstream"}, headers=basic())
            await until(lambda: simulator.pbxs[0].router.is_active("callstream"), timeout=5, what="east app")
            async with session.post(east + "/_sim/calls", json={"did": "100", "caller_number": "1"},
                                    headers=basic()) as resp:
                assert resp.status == 201
            msg = await ws.receive_json(timeout=5)
            assert msg["type"] == "StasisStart" and msg["asterisk_id"] == seen["east"]
            async with session.get(west + "/ari/channels", headers=basic()) as resp:
                assert await resp.json() == []
            await ws.close()
    finally:
        await simulator.stop()
    template = load_site(None, {"pbxs": {"count": 3, "base_port": 9100, "template": {"agents": {"count": 1}}}})
    assert [(p.name, p.port, p.entity_id) for p in template.pbx_list()] == [
        ("pbx1", 9100, "02:00:00:00:00:01"), ("pbx2", 9101, "02:00:00:00:00:02"), ("pbx3", 9102, "02:00:00:00:00:03")]


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("pbxs:\n  - {name: a, port: 70000}\n", "pbxs.0.port: Input should be less than or equal to 65535"),
    ("pbxs:\n  - {name: a, agentz: 3}\n", "pbxs.0.agentz: Extra inputs are not permitted"),
    ("pbxs:\n  - {name: a, dids: [{number: '1', profile: [1, 2]}]}\n", "pbxs.0.dids.0.profile"),
    ("pbxs:\n  - {name: a, entity_id: nope}\n", "pbxs.0.entity_id: Value error, must look like a MAC address"),
    ("time_scale: 0\n", "time_scale: Input should be greater than 0"),
    ("pbxs:\n  - {name: a, port: 9000}\n  - {name: b, port: 9000}\n", "ports must be unique"),
    ("- just\n- a list\n", "(top level): must be a mapping"),
])
def test_invalid_site_names_the_field(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_site(path, {})
    assert expected in str(info.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_rejects_invalid_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("pbxs:\n  - {name: a, port: -4}\n")
    for argv, expected in (
        (["--site", str(bad)], "pbxs.0.port: Input should be greater than or equal to 0"),
        (["--agents", "-1"], "pbxs.0.agents.count: Input should be greater than or equal to 0"),
        (["--site", str(bad), "--agents", "3"], "--agents: describe the PBXs in the site file"),
        (["--port", "abc"], "argument --port: invalid int value: 'abc'"),
    ):
        proc = subprocess.run([sys.executable, "-m", "callstream_pbx_sim", *argv], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr


async def test_process_logs_no_credentials_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    secret = "Zq9-never-log-me"
    log_path = tmp_path / "sim.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callstream_pbx_sim", "--port", str(port), "--user", "ops", "--password", secret,
             "--log-level", "DEBUG", "--agents", "2"],
            stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            base = f"http://127.0.0.1:{port}"
            key = {"api_key": f"ops:{secret}"}
            async with aiohttp.ClientSession() as session:
                async def ready() -> bool:
                    try:
                        async with session.get(base + "/ari/asterisk/ping", params=key) as resp:
                            return resp.status == 200
                    except aiohttp.ClientError:
                        return False

                await until(ready, timeout=20, what="the simulator process answering")
                ws = await session.ws_connect(base + "/ari/events", params={"app": "callstream", **key})
                async with session.post(base + "/_sim/calls", params=key,
                                        json={"did": "5550100", "caller_number": "123"}) as resp:
                    assert resp.status == 201
                assert (await ws.receive_json(timeout=5))["type"] == "StasisStart"
                async with session.get(base + "/ari/channels", headers=basic("ops", "wrong")) as resp:
                    assert resp.status == 401
                await ws.close()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log_path.read_text()
    assert "listening on 127.0.0.1" in text and "stopping" in text
    assert secret not in text and "api_key" not in text


async def test_firehose_delivers_valid_events(sim: Sim) -> None:
    events: Events = await sim.connect()
    result = await sim.ctl("POST", "/firehose", {"count": 5000}, expect=200)
    assert result["sent"] == 5000 and result["events_per_s"] > 0
    await until(lambda: len(events.items) >= 5000, timeout=10, what="5000 firehose events")
    assert len(events.items) == 5000
    for e in events.items[::499]:
        assert e["type"] == "ChannelVarset" and e["application"] == "callstream"
        assert e["asterisk_id"] == sim.pbx.entity_id and e["channel"]["state"] == "Up"
    counters = await sim.ctl("GET", "/counters", expect=200)
    assert counters["events_by_type"]["ChannelVarset"] >= 5000 and counters["ws_clients"] == 1
    assert (await sim.ctl("POST", "/firehose", {"count": 10, "app": "nobody"}))["sent"] == 0
    await events.close()


async def test_request_log_for_latency_measurements(sim: Sim) -> None:
    await sim.ari("GET", "/channels", expect=200)
    await sim.ari("POST", "/bridges/B1", expect=200, type="mixing")
    log = await sim.ctl("GET", "/requests?since=0", expect=200)
    assert [(r["method"], r["path"], r["status"]) for r in log["requests"]] == [
        ("GET", "/ari/channels", 200), ("POST", "/ari/bridges/B1", 200)]
    assert log["requests"][1]["params"] == {"type": "mixing"}
    assert all(isinstance(r["time"], float) and r["duration_ms"] >= 0 for r in log["requests"])
    later = await sim.ctl("GET", f"/requests?since={log['next']}", expect=200)
    assert later["requests"] == [] and later["next"] == log["next"]


async def test_stasis_start_log_stamps_the_write(sim: Sim) -> None:
    """bench-routing measures from a caller's StasisStart leaving the simulator: logged once written, on the
    clock of /_sim/requests; a StasisStart with no WebSocket to go to is not logged."""
    nobody = await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "100"}, expect=201)
    assert nobody["stasis"] is False
    assert (await sim.ctl("GET", "/stasis_starts?since=0", expect=200))["stasis_starts"] == []
    events: Events = await sim.connect()
    placed = await sim.ctl("POST", "/calls", {"did": DID, "caller_number": "101"}, expect=201)
    await until(lambda: any(e["type"] == "StasisStart" for e in events.items), timeout=5, what="StasisStart")
    log = await sim.ctl("GET", "/stasis_starts?since=0", expect=200)
    [entry] = log["stasis_starts"]
    assert (entry["channel_id"], entry["app"], entry["args"]) == (placed["channel_id"], "callstream",
                                                                  ["inbound", DID])
    assert isinstance(entry["time"], float) and log["total"] == 1
    assert (await sim.ctl("GET", "/counters", expect=200))["stasis_starts_written"] == 1
    later = await sim.ctl("GET", f"/stasis_starts?since={log['next']}", expect=200)
    assert later["stasis_starts"] == [] and later["next"] == log["next"]
    await events.close()


def test_example_site_file_is_valid() -> None:
    site = load_site(ROOT / "tools" / "pbx-sim" / "site.example.yaml", {})
    pbxs = site.pbx_list()
    assert len(pbxs) >= 2 and len({p.entity_id for p in pbxs}) == len(pbxs)


async def test_sim_clock_orders_timers_by_simulated_time() -> None:
    from callstream_pbx_sim.clock import SimClock

    clock = SimClock(asyncio.get_running_loop(), scale=1000.0, epoch=0.0)
    seen: list[str] = []

    def schedule() -> None:
        # From inside a timer the time stands still: every delay counts from the same instant.
        clock.call_later(5.0, seen.append, "b")
        clock.call_later(5.0, seen.append, "c")  # same due time: creation order
        clock.call_later(1.0, lambda: clock.call_later(4.0, seen.append, "a2"))  # due at 5.0, created later
        clock.call_later(4.999, seen.append, "a")

    clock.call_soon(schedule)
    await until(lambda: len(seen) == 4, timeout=5, what="four timers")
    assert seen == ["a", "b", "c", "a2"]
    assert clock.timestamp(1_800_000_000.5) == "2027-01-15T08:00:00.500+0000"
    clock.close()
