"""The wallboard web server's settings: the common ones plus where to listen and how the stream paces itself."""

from __future__ import annotations

from pydantic import Field, model_validator

from callstream_common.settings import ServiceSettings


class StatsWebSettings(ServiceSettings):
    service: str = Field(default="stats-web", description="Service name, used in logs.")
    # The TVs reach the server over the LAN, so a deployment sets 0.0.0.0; the default stays on loopback so that
    # a developer's run exposes nothing by accident.
    host: str = Field(default="127.0.0.1", min_length=1, description="Address the HTTP server listens on.")
    port: int = Field(default=8090, ge=0, le=65535, description="HTTP port; 0 picks a free one (tests).")
    heartbeat_s: float = Field(
        default=5.0, ge=0.2, le=60,
        description="Seconds between heartbeats on an idle stream. A page shows its lost-connection sign after "
        "two intervals of silence, so this is also how fast a dead link is noticed; shorter costs a few bytes "
        "per client per interval.")
    max_streams: int = Field(
        default=2000, ge=1, le=100_000,
        description="Open streams this instance accepts; beyond it a client gets 503 and retries (the page "
        "reconnects by itself), so an instance cannot be exhausted by a reconnect storm.")
    write_timeout_s: float = Field(
        default=15.0, gt=0, le=300,
        description="A client that has not taken one event within this time is disconnected: its socket is "
        "dead or hopelessly slow, and its coroutine and buffer are freed.")
    redis_pool_max: int = Field(
        default=32, ge=2, le=1000,
        description="Redis connections for reads (one more holds the subscription); connecting clients wait "
        "for a free one instead of opening hundreds at once.")

    @model_validator(mode="after")
    def _write_timeout_covers_heartbeat(self) -> StatsWebSettings:
        if self.write_timeout_s <= self.heartbeat_s:
            raise ValueError("write_timeout_s must be longer than heartbeat_s (a healthy idle client would be cut)")
        return self
