"""Server-Sent Events framing for the board stream.

Events on `/stream/{kind}/{id}` (docs/wallboard.md):
- `snapshot`: `id:` is the snapshot's `seq`, `data:` its BoardSnapshot JSON. The browser sends the last id
  back as `Last-Event-ID` when it reconnects, so the server never re-sends that snapshot or an older one.
- `heartbeat`: `{"now": <server time>, "interval_s": <heartbeat>}`; the first event of every stream, then one
  whenever the stream has been idle for an interval. It is an event and not an SSE comment because a page
  cannot see comments, and it must see the heartbeat to tell a quiet board from a dead link.

Snapshot frames are encoded once per publication and the same bytes are written to every client.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

# How long a browser waits before reconnecting after the stream ends (the SSE `retry:` field): short, so a
# restarted instance gets its TVs back at once; a refused reconnect costs the TV nothing.
RETRY_MS = 1000


@dataclass(frozen=True, slots=True)
class Frame:
    """One encoded snapshot event, shared by every client of the board."""

    scope: str
    seq: int
    data: bytes
    arrived: float  # time.monotonic() when the snapshot reached this instance (the delivery-latency origin)


def snapshot_frame(scope: str, seq: int, snapshot_json: bytes) -> Frame:
    # A `data:` line ends at a newline; JSON may contain newlines only as whitespace, and SSE joins several
    # `data:` lines with "\n", so splitting keeps pretty-printed JSON intact.
    lines = snapshot_json.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    body = b"".join(b"data: " + line + b"\n" for line in lines)
    return Frame(scope, seq, b"id: %d\nevent: snapshot\n%b\n" % (seq, body), time.monotonic())


def preamble() -> bytes:
    return b"retry: %d\n\n" % RETRY_MS


def heartbeat(interval_s: float, now: datetime | None = None) -> bytes:
    at = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    return b"event: heartbeat\ndata: %b\n\n" % json.dumps({"now": at, "interval_s": interval_s}).encode()


def last_seq(header: str | None, query: str | None) -> int | None:
    """The newest seq the client already has: `Last-Event-ID` (the browser's own reconnect) or `?last_seq=`
    (a page that opened a fresh EventSource after a stall, which sends no header). Garbage counts as none:
    the client then simply gets the stored snapshot again."""
    for raw in (header, query):
        if raw is not None and raw.strip().isdigit():
            return int(raw.strip())
    return None
