"""InOrderAcks: records passed over by the consumer are acked only after every record delivered before them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callstream_common.kafka.pass_over import InOrderAcks, ari_types, hinted

P = ("ari.events", 0)


def test_a_passed_over_record_with_nothing_in_hand_before_it_is_acked_at_once() -> None:
    acks: InOrderAcks[int] = InOrderAcks()
    assert acks.passed_over(P, 0)  # nothing delivered yet
    acks.delivered(P, 1)
    assert acks.done(P, 1) == []
    assert acks.passed_over(P, 2)  # 1 is done


def test_passed_over_records_wait_for_the_delivered_record_before_them_and_go_in_order() -> None:
    acks: InOrderAcks[int] = InOrderAcks()
    acks.delivered(P, 10)
    assert not acks.passed_over(P, 11)
    acks.delivered(P, 12)
    assert not acks.passed_over(P, 13)
    assert acks.holding(P) == 2
    assert acks.done(P, 10) == [11]  # 13 waits for 12
    assert acks.done(P, 12) == [13]
    assert acks.holding(P) == 0
    assert acks.passed_over(P, 14)


def test_a_held_record_keeps_the_next_passed_over_one_behind_it() -> None:
    acks: InOrderAcks[int] = InOrderAcks()
    acks.delivered(P, 0)
    assert not acks.passed_over(P, 1)
    # 2 waits behind 1, which is held, even with nothing new delivered in between.
    assert not acks.passed_over(P, 2)
    assert acks.done(P, 0) == [1, 2]


def test_a_reset_drops_what_is_held_and_partitions_are_apart() -> None:
    acks: InOrderAcks[int] = InOrderAcks()
    other = ("ari.events", 1)
    acks.delivered(P, 5)
    assert not acks.passed_over(P, 6)
    assert acks.passed_over(other, 6)  # nothing in hand on the other partition
    acks.reset(P)
    assert acks.holding(P) == 0 and acks.done(P, 5) == []
    assert acks.passed_over(P, 3)  # read again from the seek: nothing in hand


@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=3)), min_size=1, max_size=60))
def test_no_passed_over_record_is_acked_before_a_record_delivered_earlier_is_done(
        script: list[tuple[bool, int]]) -> None:
    """Each step reads the next offset (delivered to the stream, or passed over), then the stream finishes up to
    `n` of its delivered records, in order. At every step, an acked offset has no unfinished delivered one
    before it; at the end, with the stream finished, every record is acked or done."""
    acks: InOrderAcks[int] = InOrderAcks()
    in_stream: list[int] = []
    finished: set[int] = set()
    acked: set[int] = set()
    for offset, (deliver, n) in enumerate(script):
        if deliver:
            acks.delivered(P, offset)
            in_stream.append(offset)
        elif acks.passed_over(P, offset):
            acked.add(offset)
        for _ in range(min(n, len(in_stream))):
            done = in_stream.pop(0)
            finished.add(done)
            acked.update(acks.done(P, done))
        unfinished = [o for o, (d, _) in enumerate(script[:offset + 1]) if d and o not in finished]
        assert all(a < min(unfinished) for a in acked) if unfinished else True
    while in_stream:
        done = in_stream.pop(0)
        finished.add(done)
        acked.update(acks.done(P, done))
    assert acked | finished == set(range(len(script)))
    assert acks.holding(P) == 0


def test_records_are_passed_over_by_their_header_and_those_without_it_are_not() -> None:
    wanted = ari_types({"StasisStart"})
    assert wanted.passes_over([("type", b"ari.event"), ("ari_type", b"ChannelVarset")])
    assert not wanted.passes_over([("ari_type", b"StasisStart")])
    assert not wanted.passes_over([("type", b"gateway.snapshot")])
    failures = hinted({"error", "expired", "rejected"})
    assert failures.passes_over([("type", b"ari.command-result"), ("hint", b"ok")])
    assert not failures.passes_over([("hint", b"error")])
    assert not failures.passes_over([("type", b"ari.command-result")])  # an older gateway: decoded, judged after


def test_the_bodies_that_name_a_hint_carry_it_in_a_header() -> None:
    from datetime import UTC, datetime

    from callstream_common.codec import encode, new_envelope
    from callstream_common.messages.agents import AgentState, AgentStateChanged
    from callstream_common.messages.calls import CallQueued
    from callstream_common.messages.commands import AriCommandResult

    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    result = AriCommandResult(command_id="c1", op="originate", outcome="ok", executed_at=at, duration_ms=2.0)
    freed = AgentStateChanged(agent_id="a1", at=at, state=AgentState.AVAILABLE, previous_state=AgentState.WRAP_UP)
    queued = CallQueued(call_id="k1", at=at, queue_id="q", channel_id="ch", waiting_since=at)
    hints = [dict(encode(new_envelope(body, tenant="t", producer="p"))[0]).get("hint")
             for body in (result, freed, queued)]
    assert hints == [b"ok", b"available", None]
