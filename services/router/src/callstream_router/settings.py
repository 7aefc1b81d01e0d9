"""The router service's settings: the common ones plus the ARI application, the tick and the command policy."""

from __future__ import annotations

from pydantic import Field

from callstream_common.settings import SESSION_TIMEOUT_S, ServiceSettings


class RouterSettings(ServiceSettings):
    service: str = Field(default="router", description="Service name, used in producer ids and logs.")
    ari_app: str = Field(default="callstream", min_length=1, max_length=80,
                         description="The Stasis application the PBXs' dialplans send calls to.")
    tick_interval_s: float = Field(
        default=0.5, gt=0, le=60,
        description="How often due deadlines (ring, max wait, retry) are checked: the lateness of a timer.")
    emit_commands: bool = Field(
        default=True,
        description="False for replays and rebuilds: state and call events are rebuilt, no ARI command is sent. "
        "Redis intents still run (the decider needs their answers): point a replay at a scratch Redis.")
    command_ttl_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="Commands the gateway has not run by then are answered 'expired' (a backlog must not ring "
        "agents for calls long gone).")
    deadline_backlog_slack: int = Field(
        default=50, ge=0, le=1_000_000,
        description="Deadlines of a PBX wait while the worker is more than this many records behind on its "
        "ari.events partition (a backlog may hold the answer that cancels them).")
    max_call_age_s: float = Field(
        default=4 * 3600.0, gt=0, le=7 * 24 * 3600,
        description="The sweeper: a call still open this long after it arrived is reported and ended.")
    session_timeout_s: float = Field(
        default=SESSION_TIMEOUT_S, ge=6, le=300,
        description="How long Kafka waits for a silent worker before moving its PBXs to another: a killed worker "
        "is replaced within about this long; a worker whose event loop stalls longer (a long GC, CPU starvation) "
        "loses its partitions and rejoins.")
    web_port: int = Field(default=0, ge=0, le=65535, description="faust's web server (/metrics); 0: off.")
    datadir: str | None = Field(default=None, description="faust's data directory; default: beside the cwd.")


class ProjectorSettings(ServiceSettings):
    service: str = Field(default="router-projector", description="Service name, used in producer ids and logs.")
    batch_size: int = Field(default=500, ge=1, le=10_000,
                            description="Call events per fetch, applied in one SQL transaction.")
    fetch_wait_ms: int = Field(
        default=250, ge=0, le=5000,
        description="How long the broker may hold a fetch to fill it: more events per transaction (fewer WAL "
        "flushes) for at most this much more lag of the tables.")
