"""What agent-state knows of the site, built from the SQL configuration (`load_config`) at start. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callstream_common.availability import QueueRule, Strategy
from callstream_common.site import AgentConfig, SiteConfig

from callstream_agent_state.machine import AgentPolicy
from callstream_agent_state.settings import AgentStateSettings


@dataclass(frozen=True)
class AgentEntry:
    """One configured agent, as the availability store needs it."""

    agent_id: str
    pbx_id: str
    endpoint: str  # `<technology>/<name>`, the form of ARI endpoints and of cms.agent-login
    skills: Mapping[str, int]
    queues: Mapping[str, QueueRule]


@dataclass(frozen=True)
class Directory:
    """The configured agents, and which agent each phone (endpoint) belongs to."""

    agents: Mapping[str, AgentEntry]
    by_endpoint: Mapping[str, str]

    def agent_of(self, endpoint: str) -> str | None:
        return self.by_endpoint.get(endpoint)


def endpoint_name(technology: str, resource: str) -> str:
    return f"{technology}/{resource}"


def serving_agents(config: SiteConfig) -> dict[str, list[str]]:
    """Queue id -> the agents serving it, by agent id (the order of linear queues)."""
    return {queue_id: sorted(a.id for a in config.agents.values() if config.serves(a, queue))
            for queue_id, queue in config.queues.items()}


def agent_entry(config: SiteConfig, agent: AgentConfig, technology: str,
                serving: Mapping[str, list[str]] | None = None) -> AgentEntry:
    """The agent with the queues it serves (SiteConfig.serves); `serving` as computed by serving_agents, or
    computed here for this agent alone (its skills may have changed since)."""
    rules: dict[str, QueueRule] = {}
    for queue_id, queue in config.queues.items():
        if not config.serves(agent, queue):
            continue
        if serving is not None and agent.id in serving[queue_id]:
            order = serving[queue_id]
        else:
            order = sorted({a.id for a in config.agents.values() if config.serves(a, queue)} | {agent.id})
        strategy = Strategy(queue.strategy)
        rules[queue_id] = QueueRule(strategy, position=order.index(agent.id),
                                    skill=queue.required_skill if strategy == Strategy.SKILLS_BASED else None)
    return AgentEntry(agent.id, agent.pbx, endpoint_name(technology, agent.endpoint), dict(agent.skills), rules)


def build_directory(config: SiteConfig, technology: str) -> Directory:
    serving = serving_agents(config)
    agents = {agent.id: agent_entry(config, agent, technology, serving) for agent in config.agents.values()}
    return Directory(agents, {entry.endpoint: entry.agent_id for entry in agents.values()})


def build_policy(config: SiteConfig, settings: AgentStateSettings) -> AgentPolicy:
    """The machine's policy: the service's settings, and each queue's wrap-up time from SQL."""
    return AgentPolicy(
        auto_pause_after=settings.auto_pause_after,
        default_wrapup_s=settings.default_wrapup_s,
        wrapup_s={queue_id: float(queue.wrapup_s) for queue_id, queue in config.queues.items()},
        reservation_timeout_s=settings.reservation_timeout_s,
    )
