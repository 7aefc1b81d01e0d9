"""The firehose: as many valid events as one WebSocket client can take, for benchmarks.

Each event is a complete, schema-valid ChannelVarset with a realistic channel snapshot (as in a real capture,
where about half of all events are ChannelVarset). Bodies are assembled from pre-serialised parts, frames
are queued in batches, and the producer waits only when the client's backlog is large, so that what is
measured is the client and the socket, not the simulator.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from .ws import WsClient, frame_header

if TYPE_CHECKING:
    from .pbx import Pbx

_BATCH = 2000
_MAX_BACKLOG = 20000


def _fake_channels(pbx: Pbx, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        cid = f"{int(pbx.clock.epoch)}.{900000 + i}"
        snap: dict[str, Any] = {
            "id": cid, "name": f"PJSIP/{pbx.cfg.trunk}-{0xF0000 + i:08x}", "state": "Up",
            "protocol_id": f"{i:032x}@198.51.100.10:5060",
            "caller": {"name": "", "number": f"+1555{1000000 + i:07d}"},
            "connected": {"name": "Agent", "number": f"{1001 + i}"},
            "accountcode": "",
            "dialplan": {"context": "from-trunk", "exten": "5550100", "priority": 1, "app_name": "Stasis",
                         "app_data": f"{pbx.default_app},inbound,5550100"},
            "creationtime": pbx.clock.timestamp(), "language": "en",
        }
        out.append(orjson.dumps(snap))
    return out


_VARIABLES = [
    (b"BRIDGEPEER", b"PJSIP/pbx1-agent-0001-0000002a"),
    (b"BRIDGEPVTCALLID", b"628bf32b-8ea8-47af-92b8-a83b03cb346d"),
    (b"RTPAUDIOQOS", b"ssrc=1409893217;themssrc=1907344211;lp=0;rxjitter=0.000250;rxcount=1544;"
                     b"txjitter=0.000125;txcount=1540;rlp=0;rtt=0.001000;rxmes=4.400000;txmes=4.400000"),
    (b"RTPAUDIOQOSJITTER", b"minrxjitter=0.000000;maxrxjitter=0.000500;avgrxjitter=0.000250;"
                           b"stdevrxjitter=0.000000;"),
    (b"STASISSTATUS", b""),
    (b"CALLSTREAM_CALL_ID", b"c-0001"),
]


async def run(pbx: Pbx, count: int, app_name: str | None) -> dict[str, Any]:
    name = app_name or pbx.default_app
    app = pbx.router.get(name)
    client = app.client if app is not None else None
    if not isinstance(client, WsClient) or client.closed:
        return {"count": count, "sent": 0, "elapsed_s": 0.0, "events_per_s": 0.0, "app": name,
                "error": "no WebSocket client for the app"}
    channels = _fake_channels(pbx, 16)
    eid = orjson.dumps(pbx.entity_id)
    app_json = orjson.dumps(name)
    tail = b',"asterisk_id":' + eid + b',"application":' + app_json + b"}"
    parts = [
        (b'","variable":"' + var + b'","value":"' + value + b'","channel":' + channels[i % len(channels)] + tail)
        for i, (var, value) in enumerate(_VARIABLES * 3)
    ]
    head = b'{"type":"ChannelVarset","timestamp":"'
    t0 = time.perf_counter()
    sent = 0
    n_parts = len(parts)
    while sent < count and not client.closed:
        n = min(_BATCH, count - sent)
        ts_head = head + pbx.clock.timestamp().encode()
        frames: list[bytes] = []
        for k in range(sent, sent + n):
            payload = ts_head + parts[k % n_parts]
            frames.append(frame_header(len(payload)))
            frames.append(payload)
        client.send_frames(frames, n)
        sent += n
        await client.wait_backlog(_MAX_BACKLOG)
    await client.wait_backlog(0)
    elapsed = time.perf_counter() - t0
    pbx.counters.events_total += sent
    pbx.counters.events_by_type["ChannelVarset"] += sent
    return {"count": count, "sent": sent, "elapsed_s": round(elapsed, 6),
            "events_per_s": round(sent / elapsed, 1) if elapsed > 0 else 0.0, "app": name}
