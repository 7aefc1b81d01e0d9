"""Call domain events on `calls`, produced by the router.

A call is one customer interaction from the moment it reached callstream (inbound StasisStart, or an
outbound attempt answered) until its last leg hung up; transfers keep the same call_id.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from callstream_common.messages.base import Body
from callstream_common.messages.common import AriId, Id, PhoneNumber
from callstream_common.topics import TopicName

Direction = Literal["inbound", "outbound", "internal"]


class CallEvent(Body):
    TOPIC = TopicName.CALLS
    call_id: Id
    at: AwareDatetime = Field(description="When it happened on the PBX (the ARI event's timestamp).")


class CallQueued(CallEvent):
    type: Literal["call.queued"] = "call.queued"
    queue_id: Id
    direction: Direction = "inbound"
    caller_number: str | None = Field(default=None, max_length=64)
    caller_name: str | None = Field(default=None, max_length=128)
    did: PhoneNumber | None = None
    priority: int = Field(default=0, ge=0, le=100)
    channel_id: AriId
    waiting_since: AwareDatetime = Field(
        description="Start of the wait that counts for priority and SLA; a transfer keeps the first one."
    )


class CallOffered(CallEvent):
    type: Literal["call.offered"] = "call.offered"
    queue_id: Id | None
    agent_id: Id
    agent_channel_id: AriId
    endpoint: str
    attempt: int = Field(ge=1, description="1 for the first agent offered this call, 2 for the next, ...")


class CallAgentMissed(CallEvent):
    type: Literal["call.agent-missed"] = "call.agent-missed"
    queue_id: Id | None
    agent_id: Id
    reason: Literal["no_answer", "busy", "unreachable", "rejected", "failed"]


class CallAnswered(CallEvent):
    type: Literal["call.answered"] = "call.answered"
    queue_id: Id | None
    agent_id: Id
    bridge_id: AriId
    wait_s: float = Field(ge=0, description="From waiting_since to the agent's answer.")


class CallAbandoned(CallEvent):
    type: Literal["call.abandoned"] = "call.abandoned"
    queue_id: Id
    wait_s: float = Field(ge=0)
    while_ringing_agent: Id | None = None


class CallTransferred(CallEvent):
    type: Literal["call.transferred"] = "call.transferred"
    kind: Literal["blind_queue", "blind_extension", "attended"]
    from_agent_id: Id | None
    from_queue_id: Id | None
    to_queue_id: Id | None = None
    to_extension: PhoneNumber | None = None
    to_agent_id: Id | None = None


class CallOverflowed(CallEvent):
    type: Literal["call.overflowed"] = "call.overflowed"
    from_queue_id: Id
    to_queue_id: Id | None = Field(description="None when it went to voicemail or was hung up.")
    action: Literal["queue", "voicemail", "hangup"]
    wait_s: float = Field(ge=0)


class CallEnded(CallEvent):
    type: Literal["call.ended"] = "call.ended"
    queue_id: Id | None
    agent_id: Id | None
    outcome: Literal["completed", "abandoned", "overflowed", "failed", "rejected"]
    hangup_by: Literal["caller", "agent", "system"]
    talk_s: float = Field(default=0, ge=0)
    hold_s: float = Field(default=0, ge=0)
    cause: int | None = Field(default=None, description="Q.850 cause of the hangup, when known.")
