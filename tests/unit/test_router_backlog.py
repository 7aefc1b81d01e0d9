"""The router holds a partition's deadlines while it is behind on that partition's ari.events."""

from __future__ import annotations

from callstream_router.backlog import Backlog


def test_deadlines_wait_while_the_events_that_may_cancel_them_are_unread() -> None:
    backlog = Backlog(slack=10)
    # Just assigned, nothing handled yet: judged from the committed offset.
    assert backlog.behind(0, highwater=500, committed=100)
    assert not backlog.behind(0, highwater=105, committed=100)
    assert not backlog.behind(0, highwater=None, committed=100)
    assert not backlog.behind(0, highwater=3, committed=None)  # a new topic, almost empty
    backlog.processed(0, 480)
    assert backlog.behind(0, highwater=500, committed=100)  # 19 records still to read
    backlog.processed(0, 495)
    assert not backlog.behind(0, highwater=500, committed=100)
    backlog.processed(0, 200)  # a replayed older record does not move the mark back
    assert not backlog.behind(0, highwater=500, committed=100)
    assert backlog.behind(1, highwater=500, committed=0)  # partitions are separate
    backlog.forget(0)
    assert backlog.behind(0, highwater=500, committed=100)
