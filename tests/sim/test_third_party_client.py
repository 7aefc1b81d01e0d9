"""The simulator driven by an ARI client library nobody here wrote: aioari 0.10.2 (PyPI, aiohttp-based).

aioari knows nothing of the simulator: it loads `/ari/api-docs/resources.json` and the resource files the
simulator serves, builds its operations from them (so the served `basePath` must point back at the simulator),
authenticates with `?api_key=` and reads events from `/ari/events`. The library is used unchanged, through its
public API only. (asyncari 0.20.6 also installs and talks to the simulator, but it brings httpx, anyio and
wsproto; aioari rides on the aiohttp the project already uses.)
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aioari
import pytest
from aiohttp import web_exceptions

from callstream_pbx_sim.conformance.runner import SimulatorProcess
from conftest import ROOT
from helpers import until

API_DOCS = Path(os.environ.get("CALLSTREAM_ARI_DOCS", ROOT.parent / "shared" / "ari" / "api-docs"))
USER = PASSWORD = "asterisk"
APP = "callstream"

pytestmark = pytest.mark.skipif(not (API_DOCS / "resources.json").is_file(),
                                reason=f"Asterisk api-docs not found at {API_DOCS}")


@pytest.fixture(scope="module")
async def simulator() -> AsyncIterator[SimulatorProcess]:
    sim = SimulatorProcess(API_DOCS, user=USER, password=PASSWORD, app=APP, entity_id="00:00:5e:00:53:2c", agents=4)
    await sim.start(USER, PASSWORD)
    try:
        yield sim
    finally:
        sim.stop()


@dataclass
class Seen:
    """Events as the library hands them to its listeners: (type, channel id, the library's Channel object)."""

    items: list[tuple[str, str, Any]] = field(default_factory=list)

    def has(self, kind: str, channel_id: str) -> Any:
        for seen_kind, seen_id, obj in self.items:
            if seen_kind == kind and seen_id == channel_id:
                return obj or True
        return None


async def _sim_control(base_url: str, method: str, path: str, body: dict[str, Any]) -> Any:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{base_url}/_sim{path}", json=body,
                                   headers={"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json() if resp.content_length != 0 else None


@pytest.mark.timeout(60)
async def test_aioari_originates_answers_and_hangs_up(simulator: SimulatorProcess) -> None:
    base_url = simulator.base_url
    endpoints = await _sim_control(base_url, "GET", "", {})
    agent = next(e.split("/", 1)[1] for e in endpoints["endpoints"] if "agent" in e)
    await _sim_control(base_url, "PUT", f"/endpoints/PJSIP/{agent}", {"mode": "answer", "answer_after_s": 0.2})

    client = await aioari.connect(base_url + "/", USER, PASSWORD)
    seen = Seen()

    def remember(kind: str) -> Any:
        def listener(objs: Any, event: dict[str, Any]) -> None:
            # StasisStart has two Channel fields (channel, replace_channel): aioari passes a dict of them.
            channel = objs["channel"] if isinstance(objs, dict) else objs
            seen.items.append((kind, event["channel"]["id"], channel))
        return listener

    for kind in ("StasisStart", "StasisEnd", "ChannelStateChange", "ChannelDestroyed", "ChannelEnteredBridge"):
        client.on_channel_event(kind, remember(kind))
    runner = asyncio.create_task(client.run(apps=APP))
    try:
        async def registered() -> bool:
            try:
                app = await client.applications.get(applicationName=APP)
            except web_exceptions.HTTPNotFound:
                return False
            return bool(app.get("name") == APP)  # aioari has no class for Application: a plain dict

        await until(registered, timeout=10, what="the app to be registered through the library's WebSocket")

        # Originate the agent leg; StasisStart reaches the library's event API only once the phone answers.
        agent_id = f"tp-{uuid.uuid4().hex[:8]}"
        agent_leg = await client.channels.originate(endpoint=f"PJSIP/{agent}", app=APP, appArgs="agent,tp",
                                                    channelId=agent_id, callerId="Third Party <3000>")
        assert agent_leg.id == agent_id
        assert agent_leg.json["state"] == "Down"
        started = await until(lambda: seen.has("StasisStart", agent_id), timeout=10, what="agent StasisStart")
        assert started.json["state"] == "Up"

        # An inbound caller, answered and bridged with the agent through the library.
        call = await _sim_control(base_url, "POST", "/calls", {"did": endpoints["dids"][0],
                                                               "caller_number": "15550009999"})
        caller_id = call["channel_id"]
        caller = await until(lambda: seen.has("StasisStart", caller_id), timeout=10, what="caller StasisStart")
        assert caller.json["state"] == "Ring"
        await caller.answer()
        await until(lambda: any(k == "ChannelStateChange" and c == caller_id and o.json["state"] == "Up"
                                for k, c, o in seen.items), timeout=10, what="caller Up after answer()")
        bridge = await client.bridges.create(type="mixing")
        await bridge.addChannel(channel=[caller_id, agent_id])
        await until(lambda: seen.has("ChannelEnteredBridge", agent_id), timeout=10, what="agent in the bridge")
        fetched = await client.bridges.get(bridgeId=bridge.id)
        assert sorted(fetched.json["channels"]) == sorted([caller_id, agent_id])

        # Hang both up through the library.
        await agent_leg.hangup()
        await until(lambda: seen.has("StasisEnd", agent_id), timeout=10, what="agent StasisEnd")
        await until(lambda: seen.has("ChannelDestroyed", agent_id), timeout=10, what="agent ChannelDestroyed")
        await caller.hangup()
        await until(lambda: seen.has("StasisEnd", caller_id), timeout=10, what="caller StasisEnd")
        await bridge.destroy()
        with pytest.raises(web_exceptions.HTTPNotFound):
            await client.channels.get(channelId=agent_id)
    finally:
        await client.close()
        runner.cancel()
        try:
            await runner
        except (asyncio.CancelledError, Exception):
            pass
