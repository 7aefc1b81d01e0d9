"""The agent-state service's settings: the common ones plus the state machine's policy and the worker's knobs."""

from __future__ import annotations

from pydantic import Field

from callstream_common.settings import SESSION_TIMEOUT_S, ServiceSettings


class AgentStateSettings(ServiceSettings):
    service: str = Field(default="agent-state", description="Service name, used in producer ids and logs.")
    auto_pause_after: int = Field(
        default=3, ge=0, le=100, description="Missed offers in a row that pause the agent ('missed'); 0: never.")
    default_wrapup_s: float = Field(
        default=10.0, ge=0, le=3600, description="Wrap-up after calls without a queue (direct calls).")
    reservation_timeout_s: float = Field(
        default=15.0, gt=0, le=600, description="A reservation no call.offered follows is given up after this.")
    tick_interval_s: float = Field(
        default=1.0, gt=0, le=60,
        description="How often wrap-up and reservation deadlines are checked; the lateness of a wrap-up's end.")
    endpoint_technology: str = Field(
        default="PJSIP", min_length=1, max_length=20,
        description="Channel technology of the agents' phones: configured endpoint 1001 is PJSIP/1001.")
    session_timeout_s: float = Field(
        default=SESSION_TIMEOUT_S, ge=6, le=300,
        description="How long Kafka waits for a silent worker before moving its PBXs to another: a killed worker "
        "is replaced within about this long; a worker whose event loop stalls longer (a long GC, CPU starvation) "
        "loses its partitions and rejoins.")
    web_port: int = Field(default=0, ge=0, le=65535, description="faust's web server (/metrics); 0: off.")
    datadir: str | None = Field(default=None, description="faust's data directory; default: beside the cwd.")
