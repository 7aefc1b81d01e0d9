"""The router's view of the site (config.RouterConfig per PBX), built from the SQL configuration. Pure."""

from __future__ import annotations

from callstream_common.site import SiteConfig
from callstream_common.site.model import Queue

from callstream_router.config import DidRoute, QueueConfig, RouterConfig, Strategy
from callstream_router.settings import RouterSettings

# The router only distinguishes ring-all from "one agent at a time": the order of the agents is the ready
# set's, scored by availability per the site's strategy (skills-based included).
_STRATEGIES: dict[str, Strategy] = {
    "longest_idle": "longest_idle", "fewest_calls": "fewest_calls", "round_robin": "round_robin",
    "random": "random", "linear": "linear", "ring_all": "ring_all", "skills_based": "longest_idle",
}


def queue_config(queue: Queue) -> QueueConfig:
    return QueueConfig(
        queue_id=queue.id, strategy=_STRATEGIES.get(queue.strategy, "longest_idle"),
        ring_timeout_s=queue.ring_timeout_s, max_wait_s=float(queue.max_wait_s),
        overflow_action=queue.overflow_action, overflow_queue_id=queue.overflow_queue,
        priority=max(0, min(100, queue.priority)), required_skill=queue.required_skill,
        min_skill_level=queue.min_skill_level,
        relax_after_s=float(queue.relax_after_s) if queue.relax_after_s is not None else None,
        moh_class=queue.moh_class,
    )


def router_configs(site: SiteConfig, settings: RouterSettings) -> dict[str, RouterConfig]:
    """One RouterConfig per PBX of the site: every queue and DID (calls of any PBX may reach any queue), and
    the extensions of the agents of that PBX."""
    queues = {queue_id: queue_config(queue) for queue_id, queue in site.queues.items()}
    dids = {number: DidRoute(queue_id=queue_id) for number, queue_id in site.dids.items()}
    configs: dict[str, RouterConfig] = {}
    for pbx_id in site.pbxs:
        extensions = {agent.extension: agent.id for agent in site.agents.values() if agent.pbx == pbx_id}
        configs[pbx_id] = RouterConfig(pbx_id=pbx_id, app=settings.ari_app, queues=queues, dids=dids,
                                       extensions=extensions, command_ttl_s=settings.command_ttl_s,
                                       max_call_age_s=settings.max_call_age_s)
    return configs
