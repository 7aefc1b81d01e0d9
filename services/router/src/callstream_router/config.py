"""What the router needs to know about one PBX's queues, DIDs and extensions (built by the service from SQL)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Strategy = Literal["longest_idle", "fewest_calls", "round_robin", "random", "linear", "ring_all"]
OverflowAction = Literal["queue", "voicemail", "hangup"]


@dataclass(frozen=True)
class QueueConfig:
    queue_id: str
    strategy: Strategy = "longest_idle"
    ring_timeout_s: int = 20
    max_wait_s: float | None = None
    overflow_action: OverflowAction = "hangup"
    overflow_queue_id: str | None = None
    priority: int = 0
    required_skill: str | None = None
    # Level 1-5 an agent needs in required_skill; it drops by one every relax_after_s the call waits, down
    # to 1 (any agent with the skill; availability never drops the skill itself).
    min_skill_level: int = 1
    relax_after_s: float | None = None
    moh_class: str | None = None
    # Where voicemail overflow continues in the dialplan: extension `voicemail_extension` of the router's
    # voicemail_context (the dialplan reads the queue from the channel's CALLSTREAM_QUEUE variable).
    voicemail_extension: str = "s"


@dataclass(frozen=True)
class DidRoute:
    """A DID goes to a queue, or straight to the agent behind an extension."""

    queue_id: str | None = None
    extension: str | None = None
    priority: int | None = None


@dataclass(frozen=True)
class RouterConfig:
    pbx_id: str
    app: str = "callstream"
    queues: Mapping[str, QueueConfig] = field(default_factory=dict)
    dids: Mapping[str, DidRoute] = field(default_factory=dict)
    # extension -> agent id, for direct calls and transfers to an extension.
    extensions: Mapping[str, str] = field(default_factory=dict)
    # Where a call on an unknown DID goes; None hangs it up (unallocated).
    default_queue_id: str | None = None
    direct_ring_timeout_s: int = 30
    voicemail_context: str = "callstream-voicemail"
    # Blind transfers to an extension that is no agent of this PBX continue here in the dialplan.
    external_context: str = "callstream-external"
    # Commands not run by then are answered `expired`: a backlog must not ring agents for long-gone calls.
    command_ttl_s: float = 30.0
    # Asterisk ends an unanswered originate after ring_timeout_s itself; the router's own deadline is a
    # safety net for lost events, so it fires a little later.
    ring_grace_s: float = 5.0
    # After "no agent available", a queue is not asked again at the same skill level for this long, unless
    # an agent becomes available (AgentFreed) first.
    retry_s: float = 2.0
    # A reservation without an answer after this is forgotten (the service lost it) and asked again.
    reserve_timeout_s: float = 5.0
    # Reservations asked at once per queue; the service runs them in the order given, so priority holds.
    max_inflight_per_queue: int = 4
    # Ended calls are remembered this long, so late events of their channels are recognised and ignored.
    tombstone_s: float = 600.0
    # A leg originated less than this before a snapshot was taken may not exist yet: it is not judged.
    snapshot_grace_s: float = 2.0
    # The sweeper: a call still open this long after it arrived is reported and ended (its channels hung up,
    # its agents released by its call.ended). No real call lasts that long; a lost event or a PBX that went
    # away without a snapshot can leave one open forever, and its agent with it.
    max_call_age_s: float = 4 * 3600.0

    def queue(self, queue_id: str | None) -> QueueConfig | None:
        return None if queue_id is None else self.queues.get(queue_id)
