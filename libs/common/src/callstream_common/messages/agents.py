"""Agent domain events on `agents`, produced by agent-state."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from callstream_common.messages.base import Body
from callstream_common.messages.common import Endpoint, Id, Skill, SkillLevel
from callstream_common.topics import TopicName


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RESERVED = "reserved"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class AgentEvent(Body):
    TOPIC = TopicName.AGENTS
    agent_id: Id
    at: AwareDatetime


class AgentLoggedIn(AgentEvent):
    type: Literal["agent.logged-in"] = "agent.logged-in"
    session_id: Id
    endpoint: Endpoint
    station: str | None = Field(default=None, max_length=64)


class AgentLoggedOut(AgentEvent):
    type: Literal["agent.logged-out"] = "agent.logged-out"
    session_id: Id
    reason: Literal["requested", "forced", "shift_end", "endpoint_lost"] = "requested"


class AgentStateChanged(AgentEvent):
    HINT_FIELD = "state"  # the router reads only the agents made available
    type: Literal["agent.state-changed"] = "agent.state-changed"
    state: AgentState
    previous_state: AgentState
    pause_reason: str | None = Field(default=None, max_length=64, description="Set when state is paused.")
    call_id: Id | None = Field(default=None, description="The call behind reserved, ringing, on_call, wrap_up.")


class AgentSkillsChanged(AgentEvent):
    type: Literal["agent.skills-changed"] = "agent.skills-changed"
    skills: dict[Skill, SkillLevel]


class AgentReassigned(AgentEvent):
    """The agent moves to another PBX; from now on its commands go to that PBX's gateway."""

    type: Literal["agent.reassigned"] = "agent.reassigned"
    from_pbx_id: str
    to_pbx_id: str
