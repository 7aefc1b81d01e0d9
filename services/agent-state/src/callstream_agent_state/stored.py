"""How the faust tables hold their values: agent states and small sets as JSON bytes (raw serializers).

The encoding is explicit (not pickle) so that a changelog written by one version of the service is read by
the next; a field added to AgentMachineState must get a default here when absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import orjson

from callstream_common.messages.agents import AgentState

from callstream_agent_state.machine import AgentMachineState

_TIMES = ("since", "wrapup_until", "reserved_until")


def state_key(partition: int, agent_id: str) -> bytes:
    """The states table's key of an agent's state in one partition (one PBX's).

    A worker's table is one mapping over every partition it owns, filled at start by replaying each partition's
    changelog. An agent reassigned to another PBX leaves its last state (logged out) behind in the old PBX's
    partition and gets a new one in the new PBX's; keyed by agent id alone, the two would share one entry, and a
    worker owning both partitions would resume with whichever changelog it happened to replay last. (Changelogs
    written before this key, by agent id alone, are not read: their agents start logged out and log in again.)
    """
    return b"%d:%s" % (partition, agent_id.encode())


def encode_state(state: AgentMachineState) -> bytes:
    return orjson.dumps(asdict(state))


def decode_state(raw: bytes) -> AgentMachineState:
    data: dict[str, Any] = orjson.loads(raw)
    for name in _TIMES:
        if data.get(name) is not None:
            data[name] = datetime.fromisoformat(data[name])
    data["state"] = AgentState(data["state"])
    data["ended_calls"] = tuple(data.get("ended_calls", ()))
    return AgentMachineState(**data)


def encode_names(names: Iterable[str]) -> bytes:
    return orjson.dumps(sorted(set(names)))


def decode_names(raw: bytes | None) -> frozenset[str]:
    return frozenset(orjson.loads(raw)) if raw else frozenset()
