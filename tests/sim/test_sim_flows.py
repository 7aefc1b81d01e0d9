"""Call flows end to end with a plain aiohttp ARI client: the exact event sequence each channel shows an
application, as NOTES.md §b lays them out (b1 inbound -> holding -> agent -> mixing -> hangups, b2 abandon,
unanswered legs, b5 snoop, b6 recording, DTMF and hold, ApplicationReplaced, a dropped WebSocket)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import pytest
from test_sim_harness import Events, Sim, basic, running, sim  # noqa: F401

from helpers import until

AGENT, AGENT2, SUP = "pbx1-agent-0001", "pbx1-agent-0002", "pbx1-supervisor-0001"
RTPQOS = ["ChannelVarset"] * 5


@pytest.fixture
async def fast() -> AsyncIterator[Sim]:
    """Simulated time ten times faster than real time, for flows that wait on rings and timeouts."""
    async with running(time_scale=10.0) as s:
        yield s


def varsets(events: Events, channel_id: str) -> list[tuple[str, str]]:
    return [(e["variable"], e["value"]) for e in events.of(channel_id, types=("ChannelVarset",))
            if not e["variable"].startswith("RTPAUDIOQOS")]


async def test_b1_inbound_to_agent_then_both_hang_up(fast: Sim) -> None:
    sim = fast
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"ring_after_s": 0.1, "answer_after_s": 1.0}, expect=200)
    ev = await sim.connect()
    c = await sim.call("+15550001111", caller_name="Caller")
    start = await ev.wait("StasisStart", c)
    chan = start["channel"]
    assert chan["state"] == "Ring" and chan["name"].startswith("PJSIP/carrier-")
    assert chan["dialplan"] == {"context": "from-trunk", "exten": "5550100", "priority": 1, "app_name": "Stasis",
                                "app_data": "callstream,inbound,5550100"}
    assert start["asterisk_id"] == sim.pbx.entity_id and start["timestamp"].endswith("+0000")
    await sim.ari("POST", f"/channels/{c}/answer", expect=204)
    await sim.ari("POST", "/bridges/H", expect=200, type="holding")
    await sim.ari("POST", "/bridges/H/addChannel", expect=204, channel=c)
    a = (await sim.ari("POST", "/channels/A", expect=200, endpoint=f"PJSIP/{AGENT}", app="callstream",
                       appArgs="agent,call-1", callerId="Caller <+15550001111>", originator=c))["id"]
    agent_start = await ev.wait("StasisStart", a)
    assert agent_start["args"] == ["agent", "call-1"] and agent_start["channel"]["state"] == "Up"
    await sim.ari("POST", "/bridges/H/removeChannel", expect=204, channel=c)
    await sim.ari("POST", "/bridges/M", expect=200, type="mixing")
    await sim.ari("POST", "/bridges/M/addChannel", expect=204, channel=f"{c},{a}")
    await sim.ctl("POST", f"/channels/{c}/hangup", {}, expect=204)
    await ev.wait("StasisEnd", c)
    await sim.ari("DELETE", f"/channels/{a}", expect=204)
    await ev.wait("ChannelDestroyed", a)
    await sim.ari("DELETE", "/bridges/M", expect=204)
    await sim.ari("DELETE", "/bridges/H", expect=204)
    await ev.wait("BridgeDestroyed", where=lambda e: e["bridge"]["id"] == "H")

    assert ev.types(c) == [
        "StasisStart", "ChannelStateChange", "ChannelEnteredBridge", "ChannelLeftBridge",
        "ChannelEnteredBridge", "ChannelVarset", "ChannelVarset", "ChannelConnectedLine",
        *RTPQOS, "ChannelHangupRequest", "ChannelVarset", "ChannelLeftBridge", "StasisEnd",
    ]  # no ChannelDestroyed: StasisEnd ended the app's subscription to the inbound leg (§b1.7)
    assert ev.types(a) == [
        "Dial", "ChannelStateChange", "Dial", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart",
        "ChannelEnteredBridge", "ChannelVarset", "ChannelVarset",
        "ChannelHangupRequest", "ChannelLeftBridge", "StasisEnd", "ChannelVarset", *RTPQOS, "ChannelDestroyed",
    ]
    dials = ev.of(a, types=("Dial",))
    assert [d["dialstatus"] for d in dials] == ["", "RINGING", "ANSWER"]
    assert all("caller" not in d and d["dialstring"] == AGENT and d["forward"] == "" for d in dials)
    assert [e["channel"]["state"] for e in ev.of(a, types=("ChannelStateChange",))] == ["Ringing", "Up"]
    assert dials[0]["peer"]["dialplan"]["app_name"] == "AppDial2"
    hangup_c = ev.of(c, types=("ChannelHangupRequest",))[0]
    assert hangup_c["cause"] == 16 and "soft" not in hangup_c
    hangup_a = ev.of(a, types=("ChannelHangupRequest",))[0]
    assert hangup_a["soft"] is True and hangup_a["cause"] == 32
    destroyed = ev.of(a, types=("ChannelDestroyed",))[0]
    assert (destroyed["cause"], destroyed["cause_txt"]) == (16, "Normal Clearing")
    assert destroyed["channel"]["dialplan"]["app_name"] == "AppDial2"
    assert varsets(ev, a) == [("STASISSTATUS", ""), ("BRIDGEPEER", ev.of(c)[0]["channel"]["name"]),
                              ("BRIDGEPVTCALLID", chan["protocol_id"]), ("STASISSTATUS", "SUCCESS")]
    assert varsets(ev, c)[-1] == ("BRIDGEPEER", "")
    entered = [e for e in ev.of(types=("ChannelEnteredBridge",)) if e["bridge"]["id"] == "M"]
    assert [e["bridge"]["channels"] for e in entered] == [[c], [c, a]]
    assert entered[0]["bridge"]["technology"] == "simple_bridge" and entered[0]["bridge"]["bridge_class"] == "stasis"
    holding = ev.of(c, types=("ChannelEnteredBridge",))[0]["bridge"]
    assert (holding["technology"], holding["bridge_type"], holding["creator"]) == ("holding_bridge", "holding",
                                                                                   "Stasis")
    assert "BridgeCreated" not in ev.types()  # bridges created over REST give no BridgeCreated (§g)
    assert [e["bridge"]["channels"] for e in ev.of(types=("BridgeDestroyed",))] == [[], []]
    await ev.close()


async def test_b2_caller_abandons_while_agent_rings(fast: Sim) -> None:
    sim = fast
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"mode": "no_answer"}, expect=200)
    ev = await sim.connect()
    c = await sim.call(patience_s=2.0)
    await ev.wait("StasisStart", c)
    await sim.ari("POST", f"/channels/{c}/answer", expect=204)
    await sim.ari("POST", "/bridges/H", expect=200, type="holding")
    await sim.ari("POST", "/bridges/H/addChannel", expect=204, channel=c)
    await sim.ari("POST", "/channels/A", expect=200, endpoint=f"PJSIP/{AGENT}", app="callstream")
    await ev.wait("Dial", "A", where=lambda e: e["dialstatus"] == "RINGING")
    await ev.wait("StasisEnd", c)  # the caller's patience ran out
    await sim.ari("DELETE", "/channels/A", expect=204)
    await ev.wait("ChannelDestroyed", "A")
    assert ev.types(c) == ["StasisStart", "ChannelStateChange", "ChannelEnteredBridge", *RTPQOS,
                           "ChannelHangupRequest", "ChannelLeftBridge", "StasisEnd"]
    assert ev.types("A") == ["Dial", "ChannelStateChange", "Dial", "ChannelHangupRequest", "Dial",
                             "ChannelDestroyed"]
    assert [d["dialstatus"] for d in ev.of("A", types=("Dial",))] == ["", "RINGING", "NOANSWER"]
    assert ev.of("A", types=("ChannelDestroyed",))[0]["cause"] == 16
    await ev.close()


@pytest.mark.parametrize(("mode", "status", "cause", "text"), [
    ("busy", "BUSY", 17, "User busy"),
    ("reject", "NOANSWER", 21, "Call Rejected"),
])
async def test_failed_agent_legs(fast: Sim, mode: str, status: str, cause: int, text: str) -> None:
    sim = fast
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"mode": mode, "reject_after_s": 0.5}, expect=200)
    ev = await sim.connect()
    await sim.ari("POST", "/channels/A", expect=200, endpoint=f"PJSIP/{AGENT}", app="callstream")
    destroyed = await ev.wait("ChannelDestroyed", "A")
    assert (destroyed["cause"], destroyed["cause_txt"]) == (cause, text)
    dials = [d["dialstatus"] for d in ev.of("A", types=("Dial",))]
    assert dials[0] == "" and dials[-1] == status
    assert "StasisStart" not in ev.types("A") and "StasisEnd" not in ev.types("A")
    await ev.close()


async def test_no_answer_leg_times_out(fast: Sim) -> None:
    sim = fast
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"mode": "no_answer"}, expect=200)
    ev = await sim.connect()
    await sim.ari("POST", "/channels/A", expect=200, endpoint=f"PJSIP/{AGENT}", app="callstream", timeout=2)
    destroyed = await ev.wait("ChannelDestroyed", "A")
    assert ev.types("A") == ["Dial", "ChannelStateChange", "Dial", "Dial", "ChannelDestroyed"]
    assert [d["dialstatus"] for d in ev.of("A", types=("Dial",))] == ["", "RINGING", "NOANSWER"]
    # asterisk/asterisk#963: an originate that times out is destroyed with cause 0.
    assert (destroyed["cause"], destroyed["cause_txt"]) == (0, "Unknown")
    await ev.close()


async def test_b5_snoop_and_supervisor(fast: Sim) -> None:
    sim = fast
    await sim.ctl("PUT", f"/endpoints/PJSIP/{SUP}", {"answer_after_s": 0.2}, expect=200)
    ev = await sim.connect()
    c = await sim.call()
    await ev.wait("StasisStart", c)
    await sim.ari("POST", f"/channels/{c}/answer", expect=204)
    snoop = await sim.ari("POST", f"/channels/{c}/snoop/S1", expect=200, spy="both", whisper="none",
                          app="callstream", appArgs="snoop,sess-1")
    assert snoop["name"].startswith(f"Snoop/{c}-") and snoop["state"] == "Up"
    start = await ev.wait("StasisStart", "S1")
    assert start["args"] == ["snoop", "sess-1"]
    await sim.ari("POST", "/bridges/SB", expect=200, type="mixing")
    await sim.ari("POST", "/bridges/SB/addChannel", expect=204, channel="S1")
    await sim.ari("POST", "/channels/SUP", expect=200, endpoint=f"PJSIP/{SUP}", app="callstream",
                  appArgs="supervisor,sess-1")
    await ev.wait("StasisStart", "SUP")
    await sim.ari("POST", "/bridges/SB/addChannel", expect=204, channel="SUP")
    entered = await ev.wait("ChannelEnteredBridge", "SUP")
    assert entered["bridge"]["channels"] == ["S1", "SUP"]
    await sim.ari("DELETE", "/channels/S1", expect=204)
    await ev.wait("StasisEnd", "S1")
    # The app did not subscribe to the snoop channel beyond Stasis: no ChannelDestroyed for it.
    assert ev.types("S1")[0] == "StasisStart" and "ChannelDestroyed" not in ev.types("S1")
    # A snoop channel goes when the channel it spies on hangs up.
    await sim.ari("POST", f"/channels/{c}/snoop/S2", expect=200, spy="in", app="callstream")
    await ev.wait("StasisStart", "S2")
    await sim.ctl("POST", f"/channels/{c}/hangup", {}, expect=204)
    await ev.wait("StasisEnd", "S2")
    assert (await sim.req("GET", "/ari/channels/S2"))[0] == 404
    await ev.close()


async def test_b6_bridge_recording_and_stored_files(fast: Sim) -> None:
    sim = fast
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"answer_after_s": 0.2}, expect=200)
    ev = await sim.connect()
    c = await sim.call()
    await ev.wait("StasisStart", c)
    await sim.ari("POST", f"/channels/{c}/answer", expect=204)
    await sim.ari("POST", "/channels/A", expect=200, endpoint=f"PJSIP/{AGENT}", app="callstream")
    await ev.wait("StasisStart", "A")
    await sim.ari("POST", "/bridges/M", expect=200, type="mixing")
    await sim.ari("POST", "/bridges/M/addChannel", expect=204, channel=f"{c},A")
    rec = await sim.ari("POST", "/bridges/M/record", expect=201, name="calls/2026/abc", format="wav",
                        maxSilenceSeconds="5")
    assert rec == {"name": "calls/2026/abc", "format": "wav", "target_uri": "bridge:M", "state": "queued"}
    started = await ev.wait("RecordingStarted")
    assert started["recording"]["state"] == "recording" and started["recording"]["target_uri"] == "bridge:M"
    assert (await sim.ari("GET", "/bridges/M", expect=200))["technology"] == "softmix"  # the recorder joined
    await until(lambda: sim.pbx.clock.now() > 25, timeout=10, what="a few simulated seconds of recording")
    await sim.ari("POST", "/recordings/live/calls%2F2026%2Fabc/stop", expect=204)
    finished = (await ev.wait("RecordingFinished"))["recording"]
    assert finished["state"] == "done" and finished["duration"] >= 20
    assert finished["talking_duration"] + finished["silence_duration"] == finished["duration"]
    async with sim.session.get(sim.base + "/ari/recordings/stored/calls%2F2026%2Fabc/file",
                               headers=basic()) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "audio/wav"
        data = await resp.read()
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    channels, rate, bits = struct.unpack("<H I 6x H", data[22:36])
    assert (channels, rate, bits) == (1, 8000, 16)
    (data_len,) = struct.unpack("<I", data[40:44])
    assert data_len == len(data) - 44
    # Asterisk reports whole seconds; the file holds every sample.
    assert finished["duration"] * 16000 <= data_len < (finished["duration"] + 1) * 16000
    # A channel recorded in its own codec, outside any bridge: raw mu-law bytes, served as audio/ulaw.
    await sim.ari("POST", "/bridges/M/removeChannel", expect=204, channel=c)
    await sim.ari("POST", f"/channels/{c}/record", expect=201, name="voicemail-1", format="ulaw",
                  maxDurationSeconds="3")
    done = await ev.wait("RecordingFinished", c)
    assert done["recording"]["duration"] == 3 and "talking_duration" not in done["recording"]
    async with sim.session.get(sim.base + "/ari/recordings/stored/voicemail-1/file", headers=basic()) as resp:
        assert resp.headers["Content-Type"] == "audio/ulaw"
        assert await resp.read() == b"\xff" * 24000
    # Recording a bridged channel is accepted, then fails (res_stasis_recording.c record_file()).
    await sim.ari("POST", f"/channels/A/record", expect=201, name="bridged", format="wav")
    failed = await ev.wait("RecordingFailed", "A")
    assert failed["recording"]["cause"] == "Cannot record channel while in bridge"
    await ev.close()


async def test_playback_sequence(fast: Sim) -> None:
    sim = fast
    ev = await sim.connect()
    c = await sim.call()
    await ev.wait("StasisStart", c)
    await sim.ari("POST", f"/channels/{c}/answer", expect=204)
    await sim.ari("POST", f"/channels/{c}/play/G1", expect=201, media="sound:welcome,digits:42")
    await ev.wait("PlaybackFinished", c)
    kinds = [(e["type"], e["playback"]["state"], e["playback"]["media_uri"])
             for e in ev.of(c, types=("PlaybackStarted", "PlaybackContinuing", "PlaybackFinished"))]
    # Each media starts; the Continuing snapshot still names the media that ended (playback_final_update()).
    assert kinds == [("PlaybackStarted", "playing", "sound:welcome"),
                     ("PlaybackContinuing", "continuing", "sound:welcome"),
                     ("PlaybackStarted", "playing", "digits:42"),
                     ("PlaybackFinished", "done", "digits:42")]
    nexts = [e["playback"].get("next_media_uri") for e in ev.of(c, types=("PlaybackStarted", "PlaybackContinuing",
                                                                          "PlaybackFinished"))]
    assert nexts == ["digits:42", "digits:42", None, None]
    # A repeated media parameter keeps only its last value, as Asterisk's stubs do.
    async with sim.session.post(sim.base + f"/ari/channels/{c}/play", params=[("media", "sound:a"),
                                                                            ("media", "digits:1")],
                                headers=basic()) as resp:
        assert (await resp.json())["media_uri"] == "digits:1"
    await ev.close()


async def test_dtmf_hold_and_talk_detection(fast: Sim) -> None:
    sim = fast
    ev = await sim.connect()
    c = await sim.call()
    await ev.wait("StasisStart", c)
    await sim.ari("POST", f"/channels/{c}/answer", expect=204)
    await sim.ctl("POST", f"/channels/{c}/dtmf", {"digits": "12#", "duration_ms": 80}, expect=204)
    await sim.ctl("POST", f"/channels/{c}/hold", {"musicclass": "default"}, expect=204)
    await sim.ctl("POST", f"/channels/{c}/unhold", {}, expect=204)
    await until(lambda: len(ev.of(c, types=("ChannelDtmfReceived",))) == 3, timeout=5, what="three digits")
    dtmf = ev.of(c, types=("ChannelDtmfReceived",))
    assert [(d["digit"], d["duration_ms"]) for d in dtmf] == [("1", 80), ("2", 80), ("#", 80)]
    hold = await ev.wait("ChannelHold", c)
    assert hold["musicclass"] == "default"
    await ev.wait("ChannelUnhold", c)
    assert (await sim.ctl("POST", f"/channels/{c}/dtmf", {"digits": "x"}))["message"].startswith("digits:")
    await ev.close()


async def test_outbound_outcomes_and_answering_machine(fast: Sim) -> None:
    sim = fast
    rules = {"rules": [{"match": "_1555000XXXX", "outcome": "machine", "ring_s": 1, "greeting_s": 3},
                       {"match": "_1555111XXXX", "outcome": "busy"},
                       {"match": "_X.", "outcome": "answer", "ring_s": 1, "talk_s": 30}]}
    assert len((await sim.ctl("PUT", "/outcomes", rules, expect=200))["rules"]) == 3
    ev = await sim.connect()
    await sim.ari("POST", "/channels/M1", expect=200, endpoint="PJSIP/15550001234@carrier", app="callstream")
    start = await ev.wait("StasisStart", "M1")
    assert start["channel"]["name"].startswith("PJSIP/carrier-")
    assert varsets(ev, "M1")[:2] == [("AMDSTATUS", "MACHINE"), ("AMDCAUSE", "LONGGREETING-2500-1500")]
    assert (await sim.ari("GET", "/channels/M1/variable", expect=200, variable="AMDSTATUS")) == {"value": "MACHINE"}
    await sim.ari("POST", "/channels/M1/variable", expect=204, variable="TALK_DETECT(set)", value="")
    finished = await ev.wait("ChannelTalkingFinished", "M1")
    assert finished["duration"] == 3000 and "ChannelTalkingStarted" in ev.types("M1")
    await sim.ari("POST", "/channels/B1", expect=200, endpoint="PJSIP/carrier/sip:15551112222@198.51.100.10",
                  app="callstream")
    busy = await ev.wait("ChannelDestroyed", "B1")
    assert busy["cause"] == 17 and ev.of("B1", types=("Dial",))[-1]["dialstatus"] == "BUSY"
    await sim.ari("POST", "/channels/H1", expect=200, endpoint="PJSIP/15559990000@carrier", app="callstream")
    await ev.wait("StasisStart", "H1")
    assert ("AMDSTATUS", "HUMAN") in varsets(ev, "H1")
    gone = await ev.wait("ChannelDestroyed", "H1", timeout=10)  # the human hangs up after the talk time
    assert gone["cause"] == 16 and "ChannelHangupRequest" in ev.types("H1")
    await ev.close()


async def test_create_dial_move_and_continue(fast: Sim) -> None:
    sim = fast
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"answer_after_s": 0.3}, expect=200)
    ev = await sim.connect()
    c = await sim.call()
    await ev.wait("StasisStart", c)
    created = await sim.ari("POST", "/channels/create", expect=200, endpoint=f"PJSIP/{AGENT}", app="callstream",
                            appArgs="created", channelId="X1")
    assert created["state"] == "Down"
    start = await ev.wait("StasisStart", "X1")
    assert start["channel"]["state"] == "Down" and start["args"] == ["created"]
    await sim.ari("POST", "/channels/X1/dial", expect=204, caller=c, timeout=10)
    await ev.wait("Dial", "X1", where=lambda e: e["dialstatus"] == "ANSWER")
    assert all(d["caller"]["id"] == c for d in ev.of("X1", types=("Dial",)))
    assert ev.types("X1")[:2] == ["ChannelVarset", "StasisStart"]  # Stasis() sets STASISSTATUS first
    # move to an app with no WebSocket fails; to a live one it ends Stasis here and starts it there.
    await sim.ari("POST", f"/channels/{c}/move", expect=204, app="nobody", appArgs="x")
    failed = await ev.wait("ApplicationMoveFailed", c)
    assert failed["destination"] == "nobody" and failed["args"] == ["x"]
    other = await sim.connect("other")
    await sim.ari("POST", f"/channels/{c}/move", expect=204, app="other", appArgs="moved")
    await ev.wait("StasisEnd", c)
    moved = await other.wait("StasisStart", c)
    assert moved["application"] == "other" and moved["args"] == ["moved"]
    await sim.ari("POST", f"/channels/{c}/continue", expect=204, context="after", extension="s", priority="1")
    await other.wait("StasisEnd", c)
    assert (await sim.req("POST", f"/ari/channels/{c}/answer"))[0] == 409  # no longer in Stasis
    await other.close()
    await ev.close()


async def test_application_replaced(sim: Sim) -> None:
    first = await sim.connect()
    second = await sim.connect()
    replaced = await first.wait("ApplicationReplaced")
    assert replaced["application"] == "callstream" and replaced["asterisk_id"] == sim.pbx.entity_id
    await until(first.closed.is_set, timeout=5, what="the replaced WebSocket closed")
    c = await sim.call()
    await second.wait("StasisStart", c)
    assert first.of(c) == [] and "ApplicationReplaced" not in second.types()
    await second.close()


async def test_websocket_drop_loses_events_and_deactivates_app(sim: Sim) -> None:
    ev = await sim.connect()
    c = await sim.call()
    await ev.wait("StasisStart", c)
    await sim.ari("POST", f"/channels/{c}/answer", expect=204)
    assert (await sim.ctl("POST", "/websocket/drop", {"mode": "abort"}, expect=200))["dropped"] == 1
    await until(ev.closed.is_set, timeout=5, what="the WebSocket dropped")
    lost_before = sim.pbx.counters.events_lost
    await sim.ctl("POST", f"/channels/{c}/dtmf", {"digits": "3"}, expect=204)
    assert sim.pbx.counters.events_lost > lost_before  # dropped, not buffered
    assert (await sim.ari("GET", f"/channels/{c}", expect=200))["id"] == c  # channels in Stasis stay
    gap = await sim.ctl("POST", "/calls", {"did": "5550100", "caller_number": "+15550009999"}, expect=201)
    assert gap["stasis"] is False  # Stasis() fails for an inactive app
    await sim.ctl("PUT", "/websocket/refuse", {"refuse": True}, expect=200)
    async with sim.session.get(sim.base + "/ari/events", params={"app": "callstream"}, headers=basic()) as resp:
        assert resp.status == 503
    await sim.ctl("PUT", "/websocket/refuse", {"refuse": False}, expect=200)
    again = await sim.connect()
    await sim.ctl("POST", f"/channels/{c}/dtmf", {"digits": "4"}, expect=204)
    got = await again.wait("ChannelDtmfReceived", c)
    assert got["digit"] == "4" and again.of(c, types=("ChannelDtmfReceived",)) == [got]
    await again.close()


async def test_endpoint_and_device_state_events(sim: Sim) -> None:
    everything = await sim.connect("observer", subscribe_all=True)
    plain = await sim.connect()
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT2}", {"registered": False}, expect=200)
    await everything.wait("DeviceStateChanged", where=lambda e: e["device_state"]["state"] == "UNAVAILABLE")
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT2}", {"registered": True}, expect=200)
    await everything.wait("DeviceStateChanged", where=lambda e: e["device_state"] == {
        "name": f"PJSIP/{AGENT2}", "state": "NOT_INUSE"})
    seq = [(e["type"], e.get("contact_info", {}).get("contact_status") or e.get("peer", {}).get("peer_status")
            or e.get("endpoint", {}).get("state") or e["device_state"]["state"])
           for e in everything.items if e["type"] in ("ContactStatusChange", "PeerStatusChange",
                                                      "EndpointStateChange", "DeviceStateChanged")]
    assert seq == [("ContactStatusChange", "Removed"), ("PeerStatusChange", "Unreachable"),
                   ("EndpointStateChange", "offline"), ("DeviceStateChanged", "UNAVAILABLE"),
                   ("ContactStatusChange", "Reachable"), ("PeerStatusChange", "Reachable"),
                   ("EndpointStateChange", "online"), ("DeviceStateChanged", "NOT_INUSE")]
    assert plain.items == []  # endpoint events need a subscription or subscribeAll
    await sim.ari("POST", "/applications/callstream/subscription", expect=200, eventSource=f"endpoint:PJSIP/{AGENT2}")
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT2}", {"registered": False}, expect=200)
    await plain.wait("EndpointStateChange")
    # subscribeAll also shows channel creation, which a plain app never sees for its inbound calls.
    c = await sim.call()
    await plain.wait("StasisStart", c)
    assert "ChannelCreated" in everything.types(c) and "ChannelCreated" not in plain.types(c)
    await everything.close()
    await plain.close()


async def _bridged_call(sim: Sim, ev: Events, agent: str, leg: str, bridge: str) -> str:
    c = await sim.call()
    await ev.wait("StasisStart", c)
    await sim.ari("POST", f"/channels/{c}/answer", expect=204)
    await sim.ari("POST", f"/channels/{leg}", expect=200, endpoint=f"PJSIP/{agent}", app="callstream")
    await ev.wait("StasisStart", leg)
    await sim.ari("POST", f"/bridges/{bridge}", expect=200, type="mixing")
    await sim.ari("POST", f"/bridges/{bridge}/addChannel", expect=204, channel=f"{c},{leg}")
    await ev.wait("ChannelConnectedLine", leg)  # the last event of the join: the leg learns who it talks to
    return c


async def test_b3_blind_transfer_by_the_phone(fast: Sim) -> None:
    sim = fast
    await sim.ctl("PUT", f"/endpoints/PJSIP/{AGENT}", {"answer_after_s": 0.2}, expect=200)
    ev = await sim.connect()
    c = await _bridged_call(sim, ev, AGENT, "A", "M")
    mark = len(ev.items)
    locals_ = await sim.ctl("POST", "/channels/A/blind_transfer", {"exten": "2000", "context": "from-internal"},
                            expect=200)
    one, two = locals_["local_one"], locals_["local_two"]
    await ev.wait("StasisStart", two)
    await ev.wait("ChannelDestroyed", "A")
    after = [(e["type"], (e.get("channel") or {}).get("id")) for e in ev.items[mark:]
             if e["type"] in ("BridgeBlindTransfer", "StasisStart", "ChannelLeftBridge", "ChannelEnteredBridge",
                              "StasisEnd")]
    assert after[:5] == [("BridgeBlindTransfer", "A"), ("StasisStart", one), ("ChannelLeftBridge", "A"),
                         ("ChannelEnteredBridge", one), ("StasisEnd", "A")]
    xfer = ev.of(types=("BridgeBlindTransfer",))[0]
    assert xfer["transferee"]["id"] == c and xfer["replace_channel"]["id"] == one and xfer["bridge"]["id"] == "M"
    assert (xfer["exten"], xfer["context"], xfer["result"], xfer["is_external"]) == ("2000", "from-internal",
                                                                                    "Success", True)
    start_one = ev.of(one, types=("StasisStart",))[0]
    assert start_one["replace_channel"]["id"] == "A" and start_one["channel"]["name"].endswith(";1")
    assert ev.of(two, types=("StasisStart",))[0]["args"] == ["transfer", "2000"]
    assert sorted((await sim.ari("GET", "/bridges/M", expect=200))["channels"]) == sorted([c, one])
    # The Local pair lives and dies together.
    await sim.ari("DELETE", f"/channels/{two}", expect=204)
    await ev.wait("StasisEnd", one)
    await ev.close()


async def test_b4_attended_transfer_by_the_phone(fast: Sim) -> None:
    sim = fast
    for agent in (AGENT, AGENT2):
        await sim.ctl("PUT", f"/endpoints/PJSIP/{agent}", {"answer_after_s": 0.2}, expect=200)
    ev = await sim.connect()
    c = await _bridged_call(sim, ev, AGENT, "A", "M")
    d = await _bridged_call(sim, ev, AGENT2, "A2", "M2")
    result = await sim.ctl("POST", "/channels/A/attended_transfer", {"other": "A2"}, expect=200)
    one, two = result["local_one"], result["local_two"]
    await ev.wait("StasisEnd", "A2")
    xfer = ev.of(types=("BridgeAttendedTransfer",))[0]
    assert (xfer["transferer_first_leg"]["id"], xfer["transferer_second_leg"]["id"]) == ("A", "A2")
    assert (xfer["transferee"]["id"], xfer["transfer_target"]["id"]) == (c, d)
    assert xfer["destination_type"] == "link" and xfer["destination_link_first_leg"]["id"] == one
    assert xfer["transferer_first_leg_bridge"]["id"] == "M" and xfer["transferer_second_leg_bridge"]["id"] == "M2"
    assert ev.of(one, types=("StasisStart",))[0]["replace_channel"]["id"] == "A"
    assert ev.of(two, types=("StasisStart",))[0]["replace_channel"]["id"] == "A2"
    assert sorted((await sim.ari("GET", "/bridges/M2", expect=200))["channels"]) == sorted([d, two])
    await ev.close()
