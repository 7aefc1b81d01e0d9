"""Which boards exist, and which boards a queue's call or an agent's time counts on (from the configuration).

A queue leg counts on its queue, the queue's department and the tenant. An agent's state and time count on
the tenant, the agent's floor, and every queue the agent serves (SiteConfig.serves) with those queues'
departments. A call counts on a floor through the agent who answered it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callstream_common.site.model import SiteConfig
from callstream_stats.board import ScopeKind, scope_of

TENANT_SCOPE = scope_of("tenant", "all")
DEFAULT_SL_THRESHOLD_S = 20


@dataclass(frozen=True)
class Board:
    scope: str
    kind: ScopeKind
    title: str
    # The SL threshold shown on the board: the queue's, or the one its queues share; a board whose queues
    # differ shows the tenant default (each call is still judged by its own queue's threshold).
    sl_threshold_s: int


@dataclass(frozen=True)
class Scopes:
    boards: dict[str, Board]
    queue_scopes: dict[str, frozenset[str]]
    queue_thresholds_s: dict[str, int]
    agent_scopes: dict[str, frozenset[str]]  # state and time: tenant, floor, served queues, their departments
    agent_floor_scopes: dict[str, frozenset[str]] = field(default_factory=dict)  # calls: tenant and floor
    default_threshold_s: int = DEFAULT_SL_THRESHOLD_S

    def of_queue(self, queue_id: str | None) -> frozenset[str]:
        """A queue unknown to the configuration counts on the tenant board only."""
        if queue_id is None:
            return frozenset((TENANT_SCOPE,))
        return self.queue_scopes.get(queue_id, frozenset((TENANT_SCOPE,)))

    def threshold_s(self, queue_id: str | None) -> int:
        if queue_id is None:
            return self.default_threshold_s
        return self.queue_thresholds_s.get(queue_id, self.default_threshold_s)

    def of_agent(self, agent_id: str) -> frozenset[str]:
        return self.agent_scopes.get(agent_id, frozenset((TENANT_SCOPE,)))

    def floor_of_agent(self, agent_id: str | None) -> frozenset[str]:
        """The floor board of the agent (empty when it has none or is unknown)."""
        if agent_id is None:
            return frozenset()
        return self.agent_floor_scopes.get(agent_id, frozenset())


def build_scopes(config: SiteConfig, default_threshold_s: int = DEFAULT_SL_THRESHOLD_S) -> Scopes:
    boards: dict[str, Board] = {
        TENANT_SCOPE: Board(TENANT_SCOPE, "tenant", config.tenant.name,
                            _shared([q.sl_threshold_s for q in config.queues.values()], default_threshold_s)),
    }
    departments: dict[str, list[int]] = {}
    queue_scopes: dict[str, frozenset[str]] = {}
    for queue in config.queues.values():
        scope = scope_of("queue", queue.id)
        department = scope_of("department", queue.department)
        boards[scope] = Board(scope, "queue", queue.id, queue.sl_threshold_s)
        departments.setdefault(queue.department, []).append(queue.sl_threshold_s)
        queue_scopes[queue.id] = frozenset((scope, department, TENANT_SCOPE))
    for department_id, thresholds in departments.items():
        scope = scope_of("department", department_id)
        boards[scope] = Board(scope, "department", department_id, _shared(thresholds, default_threshold_s))
    agent_scopes: dict[str, frozenset[str]] = {}
    agent_floor_scopes: dict[str, frozenset[str]] = {}
    floors: dict[int, list[int]] = {}
    for agent in config.agents.values():
        scopes = {TENANT_SCOPE}
        floor_scopes: set[str] = set()
        if agent.floor is not None:
            floor = scope_of("floor", str(agent.floor))
            floor_scopes.add(floor)
            floors.setdefault(agent.floor, [])
            scopes.add(floor)
        for queue in config.queues.values():
            if config.serves(agent, queue):
                scopes |= queue_scopes[queue.id]
                if agent.floor is not None:
                    floors[agent.floor].append(queue.sl_threshold_s)
        agent_scopes[agent.id] = frozenset(scopes)
        agent_floor_scopes[agent.id] = frozenset(floor_scopes)
    for number, thresholds in floors.items():
        scope = scope_of("floor", str(number))
        boards[scope] = Board(scope, "floor", f"Floor {number}", _shared(thresholds, default_threshold_s))
    return Scopes(boards=boards, queue_scopes=queue_scopes,
                  queue_thresholds_s={q.id: q.sl_threshold_s for q in config.queues.values()},
                  agent_scopes=agent_scopes, agent_floor_scopes=agent_floor_scopes,
                  default_threshold_s=default_threshold_s)


def _shared(thresholds: list[int], default: int) -> int:
    distinct = set(thresholds)
    return distinct.pop() if len(distinct) == 1 else default
