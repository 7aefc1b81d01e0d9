"""The wallboard web server's pure parts: a client's buffer, SSE framing, settings. No Redis, no sockets."""

from __future__ import annotations

import asyncio

import pytest

from callstream_common.settings import SettingsError, load_settings
from callstream_stats.web.mailbox import Mailbox
from callstream_stats.web.settings import StatsWebSettings
from callstream_stats.web.sse import heartbeat, last_seq, snapshot_frame


async def test_a_slow_client_keeps_only_the_newest_snapshot() -> None:
    box = Mailbox("queue/q", last_seq=None)
    for seq in range(1, 1001):  # a thousand publications while the client took none
        box.offer(snapshot_frame("queue/q", seq, b"{}"))
    taken = await box.take(timeout=0.1)
    assert taken is not None and taken.seq == 1000
    assert await box.take(timeout=0.01) is None  # nothing else was kept: the buffer is one frame


async def test_older_and_repeated_snapshots_are_refused() -> None:
    box = Mailbox("queue/q", last_seq=5)
    assert not box.offer(snapshot_frame("queue/q", 5, b"{}"))  # the client has it (Last-Event-ID)
    assert box.offer(snapshot_frame("queue/q", 7, b"{}"))
    assert not box.offer(snapshot_frame("queue/q", 6, b"{}"))  # older than the pending one
    assert (await box.take(timeout=0.1)).seq == 7  # type: ignore[union-attr]
    assert not box.offer(snapshot_frame("queue/q", 7, b"{}"))  # already sent
    box.restart_sequence()
    assert box.offer(snapshot_frame("queue/q", 1, b"{}"))


async def test_closing_wakes_a_waiting_stream() -> None:
    box = Mailbox("queue/q", last_seq=None)
    waiter = asyncio.create_task(box.take(timeout=30))
    await asyncio.sleep(0)  # let it start waiting
    box.close()
    assert await asyncio.wait_for(waiter, 1) is None and box.closed


def test_snapshot_frames_carry_the_seq_as_id_and_survive_newlines() -> None:
    f = snapshot_frame("queue/q", 42, b'{\n  "a": 1\n}')
    assert f.data == b'id: 42\nevent: snapshot\ndata: {\ndata:   "a": 1\ndata: }\n\n'
    assert heartbeat(2.5).startswith(b'event: heartbeat\ndata: {"now": "') and heartbeat(2.5).endswith(b"\n\n")


@pytest.mark.parametrize(("header", "query", "expected"), [
    ("12", None, 12), (None, "7", 7), ("12", "7", 12), ("x", "7", 7), ("", None, None), (None, "-1", None),
])
def test_last_seq_comes_from_the_header_or_the_query(header: str | None, query: str | None,
                                                    expected: int | None) -> None:
    assert last_seq(header, query) == expected


def test_invalid_settings_name_the_field() -> None:
    with pytest.raises(SettingsError, match="heartbeat_s"):
        load_settings(StatsWebSettings, ["--heartbeat-s", "0"])
    with pytest.raises(SettingsError, match="port"):
        load_settings(StatsWebSettings, ["--port", "70000"])
    with pytest.raises(SettingsError, match="write_timeout_s must be longer than heartbeat_s"):
        load_settings(StatsWebSettings, ["--heartbeat-s", "20", "--write-timeout-s", "10"])
    settings = load_settings(StatsWebSettings, ["--port", "8099", "--tenant", "acme", "--heartbeat-s", "2"])
    assert (settings.port, settings.tenant, settings.heartbeat_s, settings.service) == (8099, "acme", 2.0, "stats-web")
