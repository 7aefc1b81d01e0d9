"""The workers' Kafka session as their defaults build it: a killed router or agent-state worker must be replaced
within 10 s (issue 5), which the group coordinator does only once the dead worker's session has expired. (The
end-to-end runs that kill a worker use the defaults too.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from callstream_agent_state.app import build as build_agent_state
from callstream_agent_state.settings import AgentStateSettings
from callstream_router.app import build as build_router
from callstream_router.settings import RouterSettings

REPLACED_WITHIN_S = 10.0


@pytest.mark.parametrize("build", [lambda: build_router(RouterSettings()),
                                   lambda: build_agent_state(AgentStateSettings())], ids=["router", "agent-state"])
def test_a_dead_worker_s_partitions_move_within_ten_seconds(build: Callable[[], Any]) -> None:
    conf = build().conf
    assert conf.broker_session_timeout <= REPLACED_WITHIN_S - conf.broker_heartbeat_interval
    assert conf.broker_heartbeat_interval <= conf.broker_session_timeout / 3
