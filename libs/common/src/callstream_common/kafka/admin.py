"""Idempotent creation of the catalogue's topics (and their dead-letter topics).

Creating is safe to repeat and to race: a topic that already exists is checked, not re-created. An existing
topic with another partition count is an error, because it would break co-partitioning (a PBX's calls and
its ARI events would be owned by different workers) and the key-to-partition mapping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from callstream_common.topics import CATALOGUE, DLQ_RETENTION_MS, TopicSpec, dlq_name, topic_name

log = logging.getLogger(__name__)


class TopicMismatch(RuntimeError):
    pass


@dataclass(frozen=True)
class PlannedTopic:
    name: str
    partitions: int
    config: dict[str, str]


def plan_topics(
    prefix: str = "",
    *,
    pbx_partitions: int,
    tenant_partitions: int,
    specs: Iterable[TopicSpec] = CATALOGUE,
    with_dlq: bool = True,
) -> list[PlannedTopic]:
    """The physical topics of the catalogue: one per spec, and its dead-letter twin."""
    planned = []
    for entry in specs:
        name = topic_name(entry.name, prefix)
        partitions = entry.partitions(pbx_partitions, tenant_partitions)
        planned.append(PlannedTopic(name, partitions, {
            "cleanup.policy": entry.cleanup_policy, "retention.ms": str(entry.retention_ms)}))
        if with_dlq:
            planned.append(PlannedTopic(dlq_name(name), partitions, {
                "cleanup.policy": "delete", "retention.ms": str(DLQ_RETENTION_MS)}))
    return planned


async def ensure_topics(
    bootstrap: str, planned: list[PlannedTopic], *, replication_factor: int = 1
) -> list[str]:
    """Create what is missing, check what exists; returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="callstream-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in planned if t.name not in existing]
        created: list[str] = []
        for topic in missing:
            # One request per topic: a concurrent creator's TopicAlreadyExists then concerns only that one.
            try:
                await admin.create_topics([NewTopic(topic.name, topic.partitions, replication_factor,
                                                    topic_configs=topic.config)])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        present = [t for t in planned if t.name not in created]
        if present:
            described = await admin.describe_topics([t.name for t in present])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            wrong = [f"{t.name} has {counts.get(t.name)} partitions, the catalogue wants {t.partitions}"
                     for t in present if counts.get(t.name) != t.partitions]
            if wrong:
                raise TopicMismatch("; ".join(wrong))
        if created:
            await _until_described(admin, {t.name: t.partitions for t in planned if t.name in created})
            log.info("created topics: %s", ", ".join(created))
        return created
    finally:
        await admin.close()


async def _until_described(admin: AIOKafkaAdminClient, expected: dict[str, int], timeout_s: float = 15.0) -> None:
    """Wait until the broker describes each new topic with all its partitions: a create returns before the
    metadata has spread (a busy or freshly started broker describes a new topic with 0 partitions for a
    moment), and a producer or a consumer group meeting it then would leave it out."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await admin.describe_topics(list(expected))
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        missing = {name: n for name, n in expected.items() if counts.get(name) != n}
        if not missing:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TopicMismatch(f"topics not described with their partitions after {timeout_s:g} s: "
                                + ", ".join(f"{name} ({counts.get(name)} of {n})" for name, n in missing.items()))
        await asyncio.sleep(0.1)


async def topic_partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="callstream-admin")
    await admin.start()
    try:
        return {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
    finally:
        await admin.close()


async def delete_prefixed_topics(bootstrap: str, prefixes: list[str]) -> list[str]:
    """Delete every topic named `<prefix>.<...>` or `<prefix>-<...>` for the given prefixes (a test's or a
    benchmark's own topics, faust's changelogs included); returns the names deleted. For throw-away tenants:
    a long-lived broker otherwise keeps every partition of every run, and each costs it open files."""
    if not prefixes:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="callstream-admin")
    await admin.start()
    try:
        starts = tuple(f"{p}{sep}" for p in prefixes for sep in (".", "-"))
        doomed = sorted(name for name in await admin.list_topics() if name.startswith(starts))
        for start in range(0, len(doomed), 100):  # bounded requests
            await admin.delete_topics(doomed[start:start + 100])
        return doomed
    finally:
        await admin.close()
