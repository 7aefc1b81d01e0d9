"""Dialer events on `dialer.events` (keyed by tenant), for the CMS."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from callstream_common.messages.base import Body
from callstream_common.messages.common import Id, PhoneNumber
from callstream_common.topics import TopicName

Outcome = Literal["answered", "machine", "busy", "no_answer", "congestion", "failed", "abandoned", "rejected"]


class DialerEvent(Body):
    TOPIC = TopicName.DIALER_EVENTS
    campaign_id: Id
    at: AwareDatetime


class AttemptStarted(DialerEvent):
    type: Literal["dialer.attempt-started"] = "dialer.attempt-started"
    attempt_id: Id
    lead_id: Id
    number: PhoneNumber
    pbx_id: str
    attempt: int = Field(ge=1)


class AttemptFinished(DialerEvent):
    type: Literal["dialer.attempt-finished"] = "dialer.attempt-finished"
    attempt_id: Id
    lead_id: Id
    outcome: Outcome
    agent_id: Id | None = None
    call_id: Id | None = None
    ring_s: float = Field(default=0, ge=0)
    talk_s: float = Field(default=0, ge=0)


class LeadCompleted(DialerEvent):
    type: Literal["dialer.lead-completed"] = "dialer.lead-completed"
    lead_id: Id
    disposition: str = Field(min_length=1, max_length=64)
    attempts: int = Field(ge=0)


class CampaignStatus(DialerEvent):
    type: Literal["dialer.campaign-status"] = "dialer.campaign-status"
    state: Literal["running", "paused", "finished", "outside_window", "abandon_cap_reached"]
    dial_ratio: float = Field(ge=0)
    abandon_rate_30d: float = Field(ge=0, le=1)
    leads_remaining: int = Field(ge=0)
