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
