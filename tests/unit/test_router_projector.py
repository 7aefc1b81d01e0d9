"""The router's projector: which records of a fetched batch become projection rows (pure part)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from callstream_common.codec import new_envelope
from callstream_common.messages.calls import CallQueued
from callstream_common.messages.commands import AriCommandResult
from callstream_router.projector import to_projected

AT = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def record(offset: int) -> SimpleNamespace:
    return SimpleNamespace(topic="calls", partition=3, offset=offset)


def test_call_events_with_a_pbx_become_rows_with_their_positions_and_the_rest_are_passed_over() -> None:
    queued = CallQueued(call_id="k1", at=AT, queue_id="q", channel_id="ch", waiting_since=AT)
    stray = AriCommandResult(command_id="c1", op="answer", outcome="ok", executed_at=AT, duration_ms=1.0)
    batch = [
        (new_envelope(queued, tenant="t", producer="router", pbx_id="pbx-1"), record(10)),
        (new_envelope(queued, tenant="t", producer="router"), record(11)),  # no PBX: nowhere to put it
        (new_envelope(stray, tenant="t", producer="x", pbx_id="pbx-1"), record(12)),  # not a call event
    ]
    rows = to_projected(batch)
    assert [(r.tenant, r.pbx_id, r.topic, r.partition, r.offset, r.event) for r in rows] == [
        ("t", "pbx-1", "calls", 3, 10, queued)]
