"""The topic catalogue: every topic of the contract in DESIGN.md, as code.

Names are built here and nowhere else (an optional tenant prefix is applied by `topic_name`). Every
PBX-scoped topic is created with the same partition count so that topics are co-partitioned: the worker
that owns partition p of ari.events also owns partition p of calls, agents and ari.commands, and so sees
all of one PBX's traffic in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DAY_MS = 24 * 60 * 60 * 1000

# Partitions of every PBX-scoped topic. 12 divides evenly among 1, 2, 3, 4, 6 and 12 consumers of a group
# and leaves room for a site of dozens of PBXs; it can be raised per deployment (all together, never one).
DEFAULT_PBX_PARTITIONS = 12
# Tenant-keyed topics carry far less traffic.
DEFAULT_TENANT_PARTITIONS = 6


class TopicName(StrEnum):
    ARI_EVENTS = "ari.events"
    ARI_COMMANDS = "ari.commands"
    ARI_COMMAND_RESULTS = "ari.command-results"
    CALLS = "calls"
    AGENTS = "agents"
    CMS_COMMANDS = "cms.commands"
    DIALER_EVENTS = "dialer.events"


class Key(StrEnum):
    PBX_ID = "pbx_id"
    TENANT = "tenant"
    PBX_ID_OR_TENANT = "pbx_id or tenant"


@dataclass(frozen=True)
class TopicSpec:
    name: TopicName
    key: Key
    pbx_scoped: bool
    retention_ms: int
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    # Every topic here is an event log (delete policy): state lives in faust changelogs (compacted, created by
    # faust) and in the SQL/Redis projections.
    cleanup_policy: str = "delete"

    def partitions(self, pbx_partitions: int = DEFAULT_PBX_PARTITIONS,
                   tenant_partitions: int = DEFAULT_TENANT_PARTITIONS) -> int:
        return pbx_partitions if self.pbx_scoped else tenant_partitions


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        TopicName.ARI_EVENTS, Key.PBX_ID, True, 30 * DAY_MS,
        ("ari-gateway",), ("router", "agent-state", "stats", "dialer"),
        "Raw ARI events, byte for byte, in the envelope; gateway connection markers and resync snapshots. "
        "The source of truth for what happened on the PBXs: kept 30 days for replays and audits.",
    ),
    TopicSpec(
        TopicName.ARI_COMMANDS, Key.PBX_ID, True, 1 * DAY_MS,
        ("router", "agent-state", "dialer"), ("ari-gateway",),
        "Commands for the gateway of one PBX; each carries a deterministic command id and an expiry.",
    ),
    TopicSpec(
        TopicName.ARI_COMMAND_RESULTS, Key.PBX_ID, True, 7 * DAY_MS,
        ("ari-gateway",), ("router", "agent-state", "dialer"),
        "The outcome of each command: ok, ARI error with its status, expired, or a repeat of a stored result.",
    ),
    TopicSpec(
        TopicName.CALLS, Key.PBX_ID, True, 30 * DAY_MS,
        ("router",), ("router", "stats", "agent-state", "dialer"),
        "Call domain events: queued, offered, answered, abandoned, transferred, overflowed, ended.",
    ),
    TopicSpec(
        TopicName.AGENTS, Key.PBX_ID, True, 30 * DAY_MS,
        ("agent-state",), ("router", "stats", "dialer"),
        "Agent domain events: sessions, state changes with reasons, skills, PBX reassignment.",
    ),
    TopicSpec(
        TopicName.CMS_COMMANDS, Key.PBX_ID_OR_TENANT, True, 7 * DAY_MS,
        ("cms",), ("agent-state", "router", "dialer"),
        "What the CMS and agent desktops ask: agent login/logout/pause, transfers, click-to-call, campaigns, "
        "leads. Agent and call commands are keyed by pbx_id, campaign and lead commands by tenant.",
    ),
    TopicSpec(
        TopicName.DIALER_EVENTS, Key.TENANT, False, 30 * DAY_MS,
        ("dialer",), ("cms", "stats"),
        "Dialer attempts, outcomes and dispositions, for the CMS.",
    ),
)

DLQ_SUFFIX = ".dlq"
DLQ_RETENTION_MS = 30 * DAY_MS


def spec(name: TopicName) -> TopicSpec:
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    raise KeyError(name)


def topic_name(name: TopicName | str, prefix: str = "") -> str:
    """The physical topic name: `<prefix>.<name>` when a (tenant or test) prefix is configured."""
    return f"{prefix}.{name}" if prefix else str(name)


def dlq_name(source_topic: str) -> str:
    """The dead-letter topic of a physical topic: `<topic>.dlq`, with the source's partition count."""
    return f"{source_topic}{DLQ_SUFFIX}"
