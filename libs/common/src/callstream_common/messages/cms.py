"""What the CMS (and agents' desktops through it) asks, on `cms.commands`.

The CMS sends only what a call needs: ids and numbers, never financial data. Models forbid extra fields,
so a balance or an account history added by mistake is refused (dead-lettered) instead of travelling on.
Each command carries the CMS's own command id, so a command sent twice is acted on once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from callstream_common.messages.base import Body
from callstream_common.messages.common import Endpoint, Id, PhoneNumber, Skill, SkillLevel
from callstream_common.topics import TopicName


class CmsCommand(Body):
    TOPIC = TopicName.CMS_COMMANDS
    command_id: Id
    requested_at: AwareDatetime


class AgentLogin(CmsCommand):
    type: Literal["cms.agent-login"] = "cms.agent-login"
    agent_id: Id
    endpoint: Endpoint
    station: str | None = Field(default=None, max_length=64)


class AgentLogout(CmsCommand):
    type: Literal["cms.agent-logout"] = "cms.agent-logout"
    agent_id: Id


class AgentPause(CmsCommand):
    type: Literal["cms.agent-pause"] = "cms.agent-pause"
    agent_id: Id
    reason: str = Field(min_length=1, max_length=64)


class AgentUnpause(CmsCommand):
    type: Literal["cms.agent-unpause"] = "cms.agent-unpause"
    agent_id: Id


class AgentEndWrapUp(CmsCommand):
    type: Literal["cms.agent-end-wrapup"] = "cms.agent-end-wrapup"
    agent_id: Id


class AgentSetSkills(CmsCommand):
    type: Literal["cms.agent-set-skills"] = "cms.agent-set-skills"
    agent_id: Id
    skills: dict[Skill, SkillLevel]


class AgentReassign(CmsCommand):
    type: Literal["cms.agent-reassign"] = "cms.agent-reassign"
    agent_id: Id
    to_pbx_id: str = Field(min_length=1, max_length=64)


class TransferBlind(CmsCommand):
    """Send the agent's current call to a department's queue or to an extension, without consulting."""

    type: Literal["cms.transfer-blind"] = "cms.transfer-blind"
    agent_id: Id
    call_id: Id
    to_queue_id: Id | None = None
    to_extension: PhoneNumber | None = None


class TransferAttendedStart(CmsCommand):
    """Put the caller on hold and call the target (a queue or an extension) for a consultation."""

    type: Literal["cms.transfer-attended-start"] = "cms.transfer-attended-start"
    agent_id: Id
    call_id: Id
    to_queue_id: Id | None = None
    to_extension: PhoneNumber | None = None


class TransferAttendedFinish(CmsCommand):
    type: Literal["cms.transfer-attended-finish"] = "cms.transfer-attended-finish"
    agent_id: Id
    call_id: Id
    action: Literal["complete", "cancel"]


class ClickToCall(CmsCommand):
    type: Literal["cms.click-to-call"] = "cms.click-to-call"
    agent_id: Id
    number: PhoneNumber
    lead_id: Id | None = None
    caller_id: PhoneNumber | None = None


class CampaignUpsert(CmsCommand):
    type: Literal["cms.campaign-upsert"] = "cms.campaign-upsert"
    campaign_id: Id
    name: str = Field(min_length=1, max_length=128)
    mode: Literal["preview", "progressive", "predictive"]
    queue_id: Id = Field(description="The agents' queue that takes the campaign's answered calls.")
    caller_id: PhoneNumber
    max_abandon_rate: float = Field(default=0.03, gt=0, le=0.05, description="Cap over the rolling 30 days.")
    max_attempts_per_lead: int = Field(default=3, ge=1, le=20)
    retry_after_s: dict[str, int] = Field(
        default_factory=dict, description="Minimum delay before a retry, per disposition (busy, no_answer, ...)."
    )
    window_start: str = Field(default="08:00", pattern=r"^\d{2}:\d{2}$", description="In the lead's time zone.")
    window_end: str = Field(default="21:00", pattern=r"^\d{2}:\d{2}$")
    active: bool = True


class Lead(BaseModel):
    """One person to call: ids and numbers only."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    lead_id: Id
    numbers: list[PhoneNumber] = Field(min_length=1, max_length=5, description="In the order to try them.")
    timezone: str = Field(min_length=1, max_length=64, description="IANA zone for the calling window.")
    priority: int = Field(default=0, ge=0, le=100)


class LeadsBatch(CmsCommand):
    type: Literal["cms.leads-batch"] = "cms.leads-batch"
    campaign_id: Id
    batch_id: Id
    leads: list[Lead] = Field(min_length=1, max_length=10_000)


class DoNotCall(CmsCommand):
    """Add numbers to (or remove them from) the tenant's do-not-call list; the dialer never dials them."""

    type: Literal["cms.do-not-call"] = "cms.do-not-call"
    action: Literal["add", "remove"] = "add"
    numbers: list[PhoneNumber] = Field(min_length=1, max_length=10_000)
