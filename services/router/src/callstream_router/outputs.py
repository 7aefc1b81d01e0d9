"""What the decider produces besides ARI commands and call events: intents for Redis, and notes to log.

The service runs intents in the order given (so the call with the higher priority reserves first) and feeds
each ReserveAgent's answer back in as a ReservationResult.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from callstream_common.messages.calls import (
    CallAbandoned,
    CallAgentMissed,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallTransferred,
)
from callstream_common.messages.commands import AriCommand


@dataclass(frozen=True)
class ReserveAgent:
    """Reserve agents for `call_id` in Redis (one atomic script).

    - `agent_id` set: that agent only (a direct call or a transfer to its extension), if available.
    - otherwise from `queue_id`'s ready set in score order, with a level of at least `min_level` in `skill`
      (already relaxed by the call's wait: pass it as availability's min_level with relax_levels 0), skipping
      `exclude` (agents that just missed this call); `count="all"` takes every eligible one (ring-all).

    The script must be idempotent per call: asked again for a call that already holds a reservation, it
    returns the agents already reserved for it (the first answer may have been lost in a crash).
    """

    request_id: str
    call_id: str
    queue_id: str | None
    agent_id: str | None = None
    skill: str | None = None
    min_level: int = 0
    count: Literal["one", "all"] = "one"
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReleaseAgent:
    """Undo a reservation that no call event announces (an answer for a call that no longer wants it, ring-all
    surplus, an unusable endpoint): agent-state never heard of it, so the router puts the agent back itself,
    a compare-and-set on (reserved, call_id) to available.

    Every other release is agent-state's: the call event naming the agent (agent-missed, abandoned, answered
    by another agent, ended) is the release, and agent-state's machine decides where the agent goes
    (available, a pending pause, auto-pause, logout). Once a call event names an agent, only agent-state moves
    it out of reserved or ringing: with two writers, a router release followed by a new reservation raced
    with agent-state's own move and left agents stuck (docs/acd.md, "Who moves an agent")."""

    agent_id: str
    call_id: str


@dataclass(frozen=True)
class RouterNote:
    """An input the router ignored or could not act on, for the service's log (never an error)."""

    kind: str
    detail: str


CallEventOut = (
    CallQueued | CallOffered | CallAgentMissed | CallAnswered | CallAbandoned | CallTransferred | CallOverflowed
    | CallEnded
)
Intent = ReserveAgent | ReleaseAgent
RouterOutput = AriCommand | CallEventOut | ReserveAgent | ReleaseAgent | RouterNote
