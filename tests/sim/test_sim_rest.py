"""The simulator's ARI REST surface: each resource's success and error answers, status and body, as Asterisk
gives them (NOTES.md §c, §g; res/ari/resource_*.c), plus authentication and the api-docs listing."""

from __future__ import annotations

import base64
import json

import pytest
from test_sim_harness import API_DOCS, DID, PASSWORD, USER, Sim, basic, running, sim  # noqa: F401

from helpers import until

AGENT = "pbx1-agent-0001"


def msg(text: str) -> dict[str, str]:
    return {"message": text}


# --- authentication -----------------------------------------------------------------------------------------------
async def test_auth_required_basic_and_api_key(sim: Sim) -> None:
    status, body = await sim.req("GET", "/ari/channels", headers={})
    assert (status, body) == (401, msg("Authentication required"))
    async with sim.session.get(sim.base + "/ari/channels") as resp:
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="Asterisk REST Interface"'
    assert (await sim.req("GET", "/ari/channels", headers=basic(USER, "wrong")))[0] == 401
    assert (await sim.req("GET", "/ari/channels", headers=basic("nobody", PASSWORD)))[0] == 401
    status, body = await sim.req("GET", "/ari/channels", headers={}, params={"api_key": f"{USER}:{PASSWORD}"})
    assert (status, body) == (200, [])
    assert (await sim.req("GET", "/ari/channels", headers={}, params={"api_key": f"{USER}:nope"}))[0] == 401
    assert (await sim.req("GET", "/ari/channels", headers={}, params={"api_key": USER}))[0] == 401
    # Basic is checked first: a wrong header is not rescued by a right api_key.
    assert (await sim.req("GET", "/ari/channels", headers=basic(USER, "x"),
                          params={"api_key": f"{USER}:{PASSWORD}"}))[0] == 401
    # The control API and the WebSocket upgrade use the same credentials.
    assert (await sim.req("GET", "/_sim/counters", headers={}))[0] == 401
    async with sim.session.get(sim.base + "/ari/events", params={"app": "callstream"}) as resp:
        assert resp.status == 401
    ws = await sim.session.ws_connect(sim.base + "/ari/events",
                                      params={"app": "callstream", "api_key": f"{USER}:{PASSWORD}"})
    await until(lambda: sim.pbx.router.is_active("callstream"), timeout=5, what="app registered via api_key")
    await ws.close()
    # The request log never keeps the api_key credential.
    log = await sim.ctl("GET", "/requests?since=0")
    assert PASSWORD not in json.dumps(log)
    assert any(r["params"].get("api_key") == "***" for r in log["requests"])


async def test_unknown_paths_methods_and_trailing_slash(sim: Sim) -> None:
    assert await sim.ari("GET", "/nothing/here", expect=404) == msg("Resource not found")
    assert await sim.ari("GET", "/channels/", expect=404) == msg("ARI URLs do not end with a slash. Try /ari/channels")
    status, body = await sim.req("PUT", "/ari/channels")
    assert (status, body) == (405, msg("Invalid method"))


# --- asterisk, applications ----------------------------------------------------------------------------------------
async def test_asterisk_info_and_ping(sim: Sim) -> None:
    info = await sim.ari("GET", "/asterisk/info", expect=200)
    assert set(info) == {"build", "system", "config", "status"}
    assert info["system"] == {"version": "23.4.1", "entity_id": sim.pbx.entity_id}
    assert set(info["config"]["setid"]) == {"user", "group"}
    only = await sim.ari("GET", "/asterisk/info", expect=200, only="system")
    assert set(only) == {"system"}
    ping = await sim.ari("GET", "/asterisk/ping", expect=200)
    assert set(ping) == {"asterisk_id", "ping", "timestamp"}
    assert ping["timestamp"][-5:] == "+0000" and ping["timestamp"][19] == "."


async def test_applications(sim: Sim) -> None:
    assert await sim.ari("GET", "/applications", expect=200) == []
    assert await sim.ari("GET", "/applications/callstream", expect=404) == msg("Application not found")
    events = await sim.connect()
    app = await sim.ari("GET", "/applications/callstream", expect=200)
    assert app == {"name": "callstream", "channel_ids": [], "bridge_ids": [], "endpoint_ids": [], "device_names": [],
                   "events_allowed": [], "events_disallowed": []}
    path = "/applications/callstream/subscription"
    assert await sim.ari("POST", path, expect=400) == msg("Missing parameter eventSource")
    assert await sim.ari("POST", path, expect=400, eventSource="bogus:1") == msg("Invalid event source URI scheme")
    assert await sim.ari("POST", path, expect=422, eventSource="channel:nope") == msg("Event source does not exist")
    assert await sim.ari("POST", "/applications/other/subscription", expect=404,
                         eventSource=f"endpoint:PJSIP/{AGENT}") == msg("Application not found")
    sub = await sim.ari("POST", path, expect=200, eventSource=f"endpoint:PJSIP/{AGENT},deviceState:Stasis:q1")
    assert sub["endpoint_ids"] == [f"PJSIP/{AGENT}"] and sub["device_names"] == ["Stasis:q1"]
    assert await sim.ari("DELETE", path, expect=422, eventSource="deviceState:Stasis:q2") == \
        msg("Event source was not subscribed to")
    unsub = await sim.ari("DELETE", path, expect=200, eventSource="deviceState:Stasis:q1")
    assert unsub["device_names"] == []
    flt = "/applications/callstream/eventFilter"
    assert await sim.ari("PUT", flt, expect=400, json_body={"allowed": "nope"}) == msg("Invalid format definition")
    got = await sim.ari("PUT", flt, expect=200, json_body={"disallowed": [{"type": "ChannelVarset"}]})
    assert got["events_disallowed"] == [{"type": "ChannelVarset"}]
    # The filter applies: an inbound call's STASISSTATUS Varset is not delivered, StasisStart is.
    ch = await sim.call()
    await events.wait("StasisStart", ch)
    await sim.ari("POST", f"/channels/{ch}/variable", expect=204, variable="X", value="1")
    await sim.ari("POST", f"/channels/{ch}/answer", expect=204)
    await events.wait("ChannelStateChange", ch)
    assert "ChannelVarset" not in events.types(ch)
    await events.close()


# --- channels ------------------------------------------------------------------------------------------------------
async def test_originate_errors(sim: Sim) -> None:
    assert await sim.ari("POST", "/channels", expect=400) == msg("Endpoint must be specified")
    assert await sim.ari("POST", "/channels", expect=400, endpoint="PJSIP") == msg("Invalid endpoint specified")
    assert await sim.ari("POST", "/channels", expect=400, endpoint=f"PJSIP/{AGENT}") == \
        msg("Application or extension must be specified")
    assert await sim.ari("POST", "/channels", expect=500, endpoint="SIP/x", app="callstream") == \
        {"error": "Allocation failed"}
    assert await sim.ari("POST", "/channels", expect=500, endpoint="PJSIP/nobody", app="callstream") == \
        {"error": "Allocation failed"}
    assert await sim.ari("POST", "/channels", expect=400, endpoint=f"PJSIP/{AGENT}", app="callstream",
                         channelId="x" * 150) == msg("Uniqueid length exceeds maximum of 149")
    assert await sim.ari("POST", "/channels", expect=400, endpoint=f"PJSIP/{AGENT}", app="callstream",
                         originator="missing") == msg("Provided originator channel was not found")
    assert await sim.ari("POST", "/channels", expect=400, endpoint=f"PJSIP/{AGENT}", app="callstream",
                         formats="nosuchcodec") == msg("Provided format (nosuchcodec) was not found")
    assert await sim.ari("POST", "/channels", expect=400, json_body={
        "endpoint": f"PJSIP/{AGENT}", "app": "callstream", "variables": {"A": 1}}) == \
        msg("Only string values in the 'variables' object allowed")
    # An unregistered phone cannot be called: Asterisk's PJSIP request fails ("Is endpoint registered?").
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"registered": False}, expect=200)
    assert await sim.ari("POST", "/channels", expect=500, endpoint=f"PJSIP/{AGENT}", app="callstream") == \
        {"error": "Allocation failed"}


async def test_originate_with_id_json_body_and_duplicate(sim: Sim) -> None:
    body = {"endpoint": f"PJSIP/{AGENT}", "app": "callstream", "appArgs": "agent,c1", "callerId": "Ann <+1555>",
            "variables": {"CALL_ID": {"value": "c1", "report_events": True}}}
    ch = await sim.ari("POST", "/channels/agent-leg-1", expect=200, json_body=body)
    assert ch["id"] == "agent-leg-1" and ch["state"] == "Down"
    assert ch["name"].startswith(f"PJSIP/{AGENT}-") and len(ch["name"].rsplit("-", 1)[1]) == 8
    assert ch["caller"] == {"name": "Ann", "number": "+1555"}
    assert ch["dialplan"]["app_name"] == "AppDial2" and ch["dialplan"]["app_data"] == "(Outgoing Line)"
    assert ch["channelvars"] == {"CALL_ID": "c1"}
    assert await sim.ari("POST", "/channels/agent-leg-1", expect=409, json_body=body) == \
        msg("Channel with given unique ID already exists")
    listed = await sim.ari("GET", "/channels", expect=200)
    assert [c["id"] for c in listed] == ["agent-leg-1"]
    assert (await sim.ari("GET", "/channels/agent-leg-1", expect=200))["id"] == "agent-leg-1"
    assert await sim.ari("GET", "/channels/nope", expect=404) == msg("Channel not found")


async def test_channel_operation_errors(sim: Sim) -> None:
    events = await sim.connect()
    c = await sim.call()
    await events.wait("StasisStart", c)
    # 404 unknown, 409 not in Stasis (a ringing originated leg), 412 invalid state (a created, Down channel).
    assert await sim.ari("POST", "/channels/nope/answer", expect=404) == msg("Channel not found")
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"mode": "no_answer"}, expect=200)
    await sim.ari("POST", "/channels/ringing", expect=200, endpoint=f"PJSIP/{AGENT}", app="callstream")
    assert await sim.ari("POST", "/channels/ringing/answer", expect=409) == msg("Channel not in Stasis application")
    created = await sim.ari("POST", "/channels/create", expect=200, endpoint="PJSIP/pbx1-agent-0002",
                            app="callstream", channelId="created-1")
    await events.wait("StasisStart", "created-1")
    assert await sim.ari("POST", "/channels/created-1/answer", expect=412) == msg("Channel in invalid state")
    assert created["state"] == "Down"
    for op in ("ring", "hold", "moh", "silence", "progress"):
        await sim.ari("POST", f"/channels/{c}/{op}", expect=204)
    for op in ("ring", "hold", "moh", "silence"):
        await sim.ari("DELETE", f"/channels/{c}/{op}", expect=204)
    assert await sim.ari("POST", f"/channels/{c}/mute", expect=400, direction="sideways") == \
        msg("Invalid direction specified")
    await sim.ari("POST", f"/channels/{c}/mute", expect=204, direction="in")
    await sim.ari("DELETE", f"/channels/{c}/mute", expect=204)
    assert await sim.ari("POST", f"/channels/{c}/dtmf", expect=400) == msg("DTMF is required")
    await sim.ari("POST", f"/channels/{c}/dtmf", expect=204, dtmf="12#")
    assert await sim.ari("POST", f"/channels/{c}/redirect", expect=400) == \
        msg("Required parameter 'endpoint' not provided.")
    assert await sim.ari("POST", f"/channels/{c}/redirect", expect=422, endpoint="nothing") == \
        msg("Endpoint parameter 'nothing' does not contain tech/resource")
    assert await sim.ari("POST", f"/channels/{c}/redirect", expect=422, endpoint="SIP/x") == \
        msg("Endpoint technology 'SIP' does not match channel technology 'PJSIP'")
    assert await sim.ari("POST", f"/channels/{c}/move", expect=400) == msg("Missing parameter app")
    assert await sim.ari("DELETE", f"/channels/{c}", expect=400, reason="sleepy") == \
        msg("Invalid reason for hangup reason provided")
    assert await sim.ari("DELETE", f"/channels/{c}", expect=400, reason="busy", reason_code="17") == \
        msg("The reason and reason_code can't both be specified")
    assert await sim.ari("DELETE", "/channels/nope", expect=404) == msg("Channel not found")
    await sim.ari("DELETE", f"/channels/{c}", expect=204, reason="busy")
    await events.wait("StasisEnd", c)
    await events.close()


async def test_variables(sim: Sim) -> None:
    events = await sim.connect()
    c = await sim.call()
    await events.wait("StasisStart", c)
    path = f"/channels/{c}/variable"
    assert await sim.ari("GET", path, expect=400) == msg("Variable name is required")
    assert await sim.ari("GET", "/channels/nope/variable", expect=404, variable="X") == \
        msg("Provided channel was not found")
    assert await sim.ari("GET", path, expect=404, variable="UNSET") == msg("Provided variable was not found")
    assert await sim.ari("POST", path, expect=400) == msg("Variable name is required")
    await sim.ari("POST", path, expect=204, variable="SKILL", value="billing")
    assert await sim.ari("GET", path, expect=200, variable="SKILL") == {"value": "billing"}
    varset = await events.wait("ChannelVarset", c, where=lambda e: e["variable"] == "SKILL")
    assert varset["value"] == "billing"
    await sim.ari("POST", path, expect=204, variable="CALLERID(name)", value="Alice")
    cid = await events.wait("ChannelCallerId", c)
    assert cid["channel"]["caller"]["name"] == "Alice" and cid["caller_presentation"] == 0
    assert await sim.ari("GET", path, expect=200, variable="CALLERID(name)") == {"value": "Alice"}
    await events.close()


async def test_snoop_errors_and_success(sim: Sim) -> None:
    events = await sim.connect()
    c = await sim.call()
    await events.wait("StasisStart", c)
    path = f"/channels/{c}/snoop"
    assert await sim.ari("POST", path, expect=400, app="callstream") == \
        msg("Direction must be specified for at least spy or whisper")
    assert await sim.ari("POST", path, expect=400, spy="up", app="callstream") == \
        msg("Invalid direction specified for spy")
    assert await sim.ari("POST", path, expect=400, spy="both") == msg("Application name is required")
    assert await sim.ari("POST", "/channels/nope/snoop", expect=404, spy="in", app="callstream") == \
        msg("Provided channel was not found")
    snoop = await sim.ari("POST", f"{path}/S1", expect=200, spy="both", app="callstream", appArgs="snoop,s1")
    assert snoop["id"] == "S1" and snoop["state"] == "Up" and snoop["name"].startswith(f"Snoop/{c}-")
    assert await sim.ari("POST", f"{path}/S1", expect=500, spy="both", app="callstream") == \
        msg("Snoop channel could not be created")
    await events.close()


async def test_play_and_playbacks(sim: Sim) -> None:
    events = await sim.connect()
    c = await sim.call()
    await events.wait("StasisStart", c)
    assert await sim.ari("POST", f"/channels/{c}/play", expect=400) == msg("Missing parameter media")
    assert await sim.ari("POST", f"/channels/{c}/play", expect=400, media="sound:x", skipms="-1") == \
        msg("skipms cannot be negative")
    async with sim.session.post(sim.base + f"/ari/channels/{c}/play/P1", params={"media": "tone:ring"},
                                headers=basic()) as resp:
        assert resp.status == 201 and resp.headers["Location"] == "/playbacks/P1"
        pb = await resp.json()
    assert pb == {"id": "P1", "media_uri": "tone:ring", "target_uri": f"channel:{c}", "language": "en",
                  "state": "queued"}
    await events.wait("PlaybackStarted", c)
    assert (await sim.ari("GET", "/playbacks/P1", expect=200))["state"] == "playing"
    assert await sim.ari("POST", "/playbacks/P1/control", expect=400, operation="spin") == \
        msg("Invalid operation spin")
    await sim.ari("POST", "/playbacks/P1/control", expect=204, operation="pause")
    assert (await sim.ari("GET", "/playbacks/P1", expect=200))["state"] == "paused"
    assert await sim.ari("POST", "/playbacks/P1/control", expect=409, operation="forward") == \
        msg("Can only forward while media is playing")
    await sim.ari("POST", "/playbacks/P1/control", expect=204, operation="unpause")
    await until(lambda: len(events.of(c, types=("PlaybackStarted",))) == 2, timeout=5, what="unpause event")
    await sim.ari("DELETE", "/playbacks/P1", expect=204)
    done = await events.wait("PlaybackFinished", c)
    assert done["playback"]["state"] == "done"
    assert await sim.ari("GET", "/playbacks/P1", expect=404) == msg("Playback not found")
    assert await sim.ari("DELETE", "/playbacks/P1", expect=404) == msg("Playback not found")
    # digits: are spoken by a say-function that cannot be stopped or skipped.
    await sim.ari("POST", f"/channels/{c}/play/P2", expect=201, media="digits:123456789")
    await events.wait("PlaybackStarted", c, where=lambda e: e["playback"]["id"] == "P2")
    assert await sim.ari("DELETE", "/playbacks/P2", expect=500) == msg("Could not stop playback")
    assert await sim.ari("POST", "/playbacks/P2/control", expect=500, operation="pause") == \
        msg("Could not pause playback")
    await events.close()


async def test_recording_errors_and_stored(sim: Sim) -> None:
    events = await sim.connect()
    c = await sim.call()
    await events.wait("StasisStart", c)
    path = f"/channels/{c}/record"
    assert await sim.ari("POST", path, expect=422, name="r1", format="mp9") == \
        msg("specified format is unknown on this system")
    assert await sim.ari("POST", path, expect=400, name="r1", format="wav", ifExists="maybe") == \
        msg("ifExists invalid")
    assert await sim.ari("POST", path, expect=400, name="r1", format="wav", terminateOn="x") == \
        msg("terminateOn invalid")
    assert await sim.ari("POST", path, expect=400, name="r1", format="wav", maxDurationSeconds="-1") == \
        msg("max_duration_seconds cannot be negative")
    assert await sim.ari("POST", "/channels/nope/record", expect=404, name="r1", format="wav") == \
        msg("Channel not found")
    rec = await sim.ari("POST", path, expect=201, name="r1", format="wav")
    assert rec == {"name": "r1", "format": "wav", "target_uri": f"channel:{c}", "state": "queued"}
    assert await sim.ari("POST", path, expect=409, name="r1", format="wav") == \
        msg("Recording 'r1' already exists and can not be overwritten")
    await events.wait("RecordingStarted", c)
    await sim.ari("POST", "/recordings/live/r1/pause", expect=204)
    assert (await sim.ari("GET", "/recordings/live/r1", expect=200))["state"] == "paused"
    await sim.ari("DELETE", "/recordings/live/r1/pause", expect=204)
    await sim.ari("POST", "/recordings/live/r1/mute", expect=204)
    await sim.ari("DELETE", "/recordings/live/r1/mute", expect=204)
    await sim.ari("POST", "/recordings/live/r1/stop", expect=204)
    finished = await events.wait("RecordingFinished", c)
    assert finished["recording"]["state"] == "done" and isinstance(finished["recording"]["duration"], int)
    for op, method in (("stop", "POST"), ("pause", "POST"), ("mute", "DELETE")):
        assert await sim.ari(method, f"/recordings/live/r1/{op}", expect=404) == msg("Recording not found")
    assert await sim.ari("GET", "/recordings/stored", expect=200) == [{"name": "r1", "format": "wav"}]
    assert await sim.ari("GET", "/recordings/stored/r1", expect=200) == {"name": "r1", "format": "wav"}
    assert await sim.ari("POST", "/recordings/stored/r1/copy", expect=200, destinationRecordingName="r2") == \
        {"name": "r2", "format": "wav"}
    assert await sim.ari("POST", "/recordings/stored/r1/copy", expect=409, destinationRecordingName="r2") == \
        msg("A recording with the same name already exists on the system")
    await sim.ari("DELETE", "/recordings/stored/r2", expect=204)
    for method, tail in (("GET", ""), ("DELETE", ""), ("GET", "/file")):
        assert await sim.ari(method, f"/recordings/stored/r2{tail}", expect=404) == msg("Recording not found")
    # ifExists=fail now refuses the stored name; overwrite accepts it.
    assert (await sim.req("POST", "/ari" + path, params={"name": "r1", "format": "wav"}))[0] == 409
    await sim.ari("POST", path, expect=201, name="r1", format="wav", ifExists="overwrite")
    await sim.ari("DELETE", "/recordings/live/r1", expect=204)
    cancelled = await events.wait("RecordingFinished", c, where=lambda e: e["recording"]["state"] == "canceled")
    assert cancelled["recording"]["name"] == "r1"
    await events.close()


# --- bridges -------------------------------------------------------------------------------------------------------
async def test_bridges(sim: Sim) -> None:
    events = await sim.connect()
    c = await sim.call()
    await events.wait("StasisStart", c)
    holding = await sim.ari("POST", "/bridges/H1", expect=200, type="holding", name="queue")
    assert holding == {"id": "H1", "technology": "holding_bridge", "bridge_type": "holding", "bridge_class": "stasis",
                       "creator": "Stasis", "name": "queue", "channels": [], "video_mode": "talker",
                       "creationtime": holding["creationtime"]}
    assert await sim.ari("POST", "/bridges", expect=409, bridgeId="H1") == msg("Bridge with id 'H1' already exists")
    assert (await sim.req("POST", "/ari/bridges", params={"type": "holding,mixing"}))[0] == 500
    mixing = await sim.ari("POST", "/bridges", expect=200)
    assert mixing["bridge_type"] == "mixing" and mixing["technology"] == "simple_bridge"
    assert await sim.ari("GET", "/bridges/nope", expect=404) == msg("Bridge not found")
    path = "/bridges/H1/addChannel"
    assert await sim.ari("POST", path, expect=400) == msg("Missing parameter channel")
    assert await sim.ari("POST", path, expect=400, channel="nope") == msg("Channel not found")
    assert await sim.ari("POST", "/bridges/nope/addChannel", expect=404, channel=c) == msg("Bridge not found")
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"mode": "no_answer"}, expect=200)
    await sim.ari("POST", "/channels/ringing", expect=200, endpoint=f"PJSIP/{AGENT}", app="callstream")
    assert await sim.ari("POST", path, expect=422, channel="ringing") == msg("Channel not in Stasis application")
    await sim.ari("POST", path, expect=204, channel=c, role="participant")
    entered = await events.wait("ChannelEnteredBridge", c)
    assert entered["bridge"]["channels"] == [c]
    assert (await sim.ari("GET", "/bridges/H1", expect=200))["channels"] == [c]
    assert [b["id"] for b in await sim.ari("GET", "/bridges", expect=200)] == ["H1", mixing["id"]]
    assert await sim.ari("POST", f"/bridges/{mixing['id']}/removeChannel", expect=422, channel=c) == \
        msg("Channel not in this bridge")
    assert await sim.ari("DELETE", "/bridges/H1/moh", expect=409) == msg("Bridge isn't playing music")
    await sim.ari("POST", "/bridges/H1/moh", expect=204, mohClass="default")
    await sim.ari("DELETE", "/bridges/H1/moh", expect=204)
    async with sim.session.post(sim.base + "/ari/bridges/H1/play", params={"media": "sound:hello"},
                                headers=basic()) as resp:
        assert resp.status == 201
        pb = await resp.json()
    assert pb["target_uri"] == "bridge:H1"
    await sim.ari("POST", "/bridges/H1/removeChannel", expect=204, channel=c)
    await events.wait("ChannelLeftBridge", c)
    await sim.ari("DELETE", "/bridges/H1", expect=204)
    destroyed = await events.wait("BridgeDestroyed", where=lambda e: e["bridge"]["id"] == "H1")
    assert destroyed["bridge"]["channels"] == []
    assert await sim.ari("DELETE", "/bridges/H1", expect=404) == msg("Bridge not found")
    await events.close()


# --- endpoints, device states, api-docs ----------------------------------------------------------------------------
async def test_endpoints_and_device_states(sim: Sim) -> None:
    eps = await sim.ari("GET", "/endpoints", expect=200)
    assert {"technology": "PJSIP", "resource": AGENT, "state": "online", "channel_ids": []} in eps
    assert len(await sim.ari("GET", "/endpoints/PJSIP", expect=200)) == len(eps)
    assert await sim.ari("GET", "/endpoints/IAX2", expect=404) == msg("No Endpoints found - invalid tech IAX2")
    assert await sim.ari("GET", f"/endpoints/PJSIP/{AGENT}", expect=200) == \
        {"technology": "PJSIP", "resource": AGENT, "state": "online", "channel_ids": []}
    assert await sim.ari("GET", "/endpoints/PJSIP/nobody", expect=404) == msg("Endpoint not found")
    assert await sim.ari("GET", "/deviceStates", expect=200) == []
    assert await sim.ari("PUT", "/deviceStates/Stasis:agent1", expect=400, deviceState="SLEEPY") == \
        msg("Invalid device state")
    await sim.ari("PUT", "/deviceStates/Stasis:agent1", expect=204, deviceState="INUSE")
    assert await sim.ari("GET", "/deviceStates/Stasis:agent1", expect=200) == {"name": "Stasis:agent1", "state": "INUSE"}
    assert await sim.ari("GET", "/deviceStates", expect=200) == [{"name": "Stasis:agent1", "state": "INUSE"}]
    assert await sim.ari("PUT", "/deviceStates/PJSIP%2Fx", expect=409, deviceState="INUSE") == \
        msg("Uncontrolled device specified")
    assert await sim.ari("GET", f"/deviceStates/PJSIP%2F{AGENT}", expect=200) == \
        {"name": f"PJSIP/{AGENT}", "state": "NOT_INUSE"}
    await sim.ari("DELETE", "/deviceStates/Stasis:agent1", expect=204)
    assert await sim.ari("DELETE", "/deviceStates/Stasis:agent1", expect=404) == msg("Device not found")


@pytest.mark.skipif(not (API_DOCS / "resources.json").is_file(), reason="Asterisk api-docs not available")
async def test_api_docs_base_path_follows_host(sim: Sim) -> None:
    listing = await sim.ari("GET", "/api-docs/resources.json", expect=200)
    host = sim.base.removeprefix("http://")
    assert listing["basePath"] == f"http://{host}/ari"
    assert any(api["path"] == "/api-docs/channels.{format}" for api in listing["apis"])
    status, channels = await sim.req("GET", "/ari/api-docs/channels.json",
                                     headers={**basic(), "Host": "pbx.example:8088"})
    assert status == 200 and channels["basePath"] == "http://pbx.example:8088/ari"
    assert channels["resourcePath"] == "/api-docs/channels.{format}"
    assert await sim.ari("GET", "/api-docs/nope.json", expect=404) == msg("Resource not found")
    assert (await sim.req("GET", "/ari/api-docs/resources.json", headers={}))[0] == 401


async def test_form_encoded_and_query_parameters(sim: Sim) -> None:
    # Asterisk also accepts parameters as an application/x-www-form-urlencoded body.
    async with sim.session.post(sim.base + "/ari/bridges", data={"bridgeId": "F1", "type": "holding"},
                                headers=basic()) as resp:
        assert resp.status == 200
        assert (await resp.json())["bridge_type"] == "holding"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    async with sim.session.get(sim.base + "/ari/bridges/F1", headers={"Authorization": f"basic {token}"}) as resp:
        assert resp.status == 200
