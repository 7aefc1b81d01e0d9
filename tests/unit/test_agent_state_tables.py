"""agent-state's states table: an agent's state in one partition never stands for its state in another.

A worker's table is one mapping over all the partitions it owns, filled at start by replaying each partition's
changelog in no set order. After a reassignment the agent has a state in its old PBX's partition (left behind,
logged out) and one in its new PBX's; a worker started later over both partitions must resume the new PBX's
agent from the new partition's entry, whichever changelog it replayed last. Here the replay is simulated by
filling a plain mapping in both orders and starting a fresh Processor over it (no stack: the tables are plain
mappings, nothing is sent)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime

import pytest

from callstream_common.messages.agents import AgentState

from callstream_agent_state.machine import AgentMachineState
from callstream_agent_state.processor import Processor, Tables
from callstream_agent_state.stored import state_key

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
OLD_PBX_PARTITION, NEW_PBX_PARTITION = 0, 1
LEFT_BEHIND = AgentMachineState(agent_id="a1", since=NOW, state=AgentState.LOGGED_OUT)
ON_CALL = AgentMachineState(agent_id="a1", since=NOW, state=AgentState.ON_CALL, call_id="c9",
                            session_id="s2", endpoint="PJSIP/2001", endpoint_registered=True)


async def no_send(topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Awaitable[object]:
    raise AssertionError("nothing is sent here")


def partition_keys(partition: int) -> set[bytes]:
    return {state_key(partition, "a1")}


def processor(states: dict[bytes, bytes]) -> Processor:
    tables = Tables(states=states, offered={}, endpoints={}, agents_of_partition={}, endpoint_agents={})
    return Processor(tables, no_send, tenant="t", producer="agent-state/test", agents_topic="agents", partitions=2,
                     generation=lambda: 1)


@pytest.mark.parametrize("replayed_last", [OLD_PBX_PARTITION, NEW_PBX_PARTITION])
def test_a_restarted_worker_resumes_each_partition_from_its_own_entry(replayed_last: int) -> None:
    # What the worker wrote before it stopped: the agent's last state on the old PBX, then on the new one.
    written: dict[bytes, bytes] = {}
    writer = processor(written)
    writer._store(OLD_PBX_PARTITION, {}, {"a1": LEFT_BEHIND})
    writer._store(NEW_PBX_PARTITION, {}, {"a1": ON_CALL})
    # The next worker's table, filled from the two changelogs in either order (a later entry of the same key
    # would replace an earlier one, as faust's replay does).
    replayed: dict[bytes, bytes] = {}
    for partition in (1 - replayed_last, replayed_last):
        replayed.update((key, value) for key, value in written.items() if key in partition_keys(partition))
    resumed = processor(replayed)
    assert resumed._stored(NEW_PBX_PARTITION, "a1") == ON_CALL
    assert resumed._stored(OLD_PBX_PARTITION, "a1") == LEFT_BEHIND


def test_an_agent_without_an_entry_in_a_partition_is_new_there() -> None:
    resumed = processor({})
    resumed._store(OLD_PBX_PARTITION, {}, {"a1": LEFT_BEHIND})
    assert resumed._stored(NEW_PBX_PARTITION, "a1") is None
    assert resumed._load(NEW_PBX_PARTITION, "a1", NOW) == AgentMachineState.new("a1", NOW)
