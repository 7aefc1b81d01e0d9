"""Which agents an input concerns, and as which machine input. Pure: the handlers call these and feed `evolve`.

The routing of call events follows machine.py's contract: each call event goes to the agents it names and to
every agent the call was offered to (the `offered` set the service keeps per call), so the losing legs of a
ring-all and the agents of an abandoned call are released too.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from callstream_common.messages.ari import GatewaySnapshot, RawAriEvent
from callstream_common.messages.calls import (
    CallAbandoned,
    CallAgentMissed,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallTransferred,
)
from callstream_common.messages.cms import AgentEndWrapUp, AgentLogin, AgentLogout, AgentPause, AgentUnpause

from callstream_agent_state.config import endpoint_name
from callstream_agent_state.machine import CallInput, CmsAgentCommand, EndpointRegistration

CMS_AGENT_COMMANDS = (AgentLogin, AgentLogout, AgentPause, AgentUnpause, AgentEndWrapUp)
CALL_INPUTS = (CallOffered, CallAgentMissed, CallAnswered, CallAbandoned, CallEnded, CallTransferred)


def as_cms_command(body: object) -> CmsAgentCommand | None:
    """The body as an agent command of the machine; None for the other services' commands."""
    return body if isinstance(body, CMS_AGENT_COMMANDS) else None


def as_call_input(body: object) -> CallInput | None:
    """The body as a call input of the machine; None for call.queued and call.overflowed (no agent in them)."""
    return body if isinstance(body, CALL_INPUTS) else None


def named_agents(event: CallInput) -> list[str]:
    """The agents a call event names, in a fixed order."""
    match event:
        case CallOffered() | CallAgentMissed() | CallAnswered():
            names: list[str | None] = [event.agent_id]
        case CallEnded():
            names = [event.agent_id]
        case CallAbandoned():
            names = [event.while_ringing_agent]
        case CallTransferred():
            names = [event.from_agent_id, event.to_agent_id]
    return [name for name in names if name is not None]


def call_targets(event: CallInput, offered: Iterable[str]) -> list[str]:
    """Every agent the event goes to: those it names first, then the others the call was offered to."""
    targets = named_agents(event)
    return [*targets, *sorted(set(offered) - set(targets))]


def offered_after(event: CallInput, offered: Collection[str]) -> frozenset[str] | None:
    """The call's offered set after the event; None once the call is over (the set can be forgotten)."""
    if isinstance(event, CallEnded | CallAbandoned):
        return None
    if isinstance(event, CallOffered):
        return frozenset({*offered, event.agent_id})
    if isinstance(event, CallTransferred) and event.to_agent_id is not None:
        return frozenset({*offered, event.to_agent_id})
    return frozenset(offered)


def _state_registered(state: object) -> bool | None:
    # ARI endpoint states: online, offline, unknown. Unknown tells nothing: no input.
    if state == "online":
        return True
    if state == "offline":
        return False
    return None


def _registration(endpoint: Mapping[str, Any], at: datetime | None) -> EndpointRegistration | None:
    technology, resource = endpoint.get("technology"), endpoint.get("resource")
    registered = _state_registered(endpoint.get("state"))
    if not isinstance(technology, str) or not isinstance(resource, str) or registered is None:
        return None
    return EndpointRegistration(endpoint_name(technology, resource), registered, at)


# The one ARI event type agent-state reads (the others are passed over undecoded: kafka/faust_app.decoded).
REGISTRATION_EVENT = "EndpointStateChange"


def ari_registrations(event: RawAriEvent, at: datetime | None) -> list[EndpointRegistration]:
    """EndpointStateChange as a registration; every other ARI event concerns no agent's registration."""
    data = event.data
    if data.get("type") != REGISTRATION_EVENT or not isinstance(data.get("endpoint"), dict):
        return []
    registration = _registration(data["endpoint"], at)
    return [registration] if registration is not None else []


def snapshot_registrations(snapshot: GatewaySnapshot) -> list[EndpointRegistration]:
    """The registration of every endpoint listed in a gateway snapshot."""
    found = (_registration(endpoint, snapshot.taken_at) for endpoint in snapshot.endpoints)
    return [registration for registration in found if registration is not None]
