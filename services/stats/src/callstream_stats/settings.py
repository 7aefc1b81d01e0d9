"""The stats aggregator's settings: the common ones plus the figures' parameters and the publishing pace."""

from __future__ import annotations

from pydantic import Field

from callstream_common.settings import ServiceSettings
from callstream_stats.board import AbandonPolicy


class StatsSettings(ServiceSettings):
    service: str = Field(default="stats", description="Service name, used in producer ids and logs.")
    short_abandon_s: int = Field(
        default=5, ge=0, le=600,
        description="A caller who hangs up after less than this in the queue is a short abandon (a wrong number, "
        "an IVR slip): counted apart and left out of the service level and the abandon rate. 0: none.")
    abandon_policy: AbandonPolicy = Field(
        default="count_as_failed",
        description="How abandons enter the service level (docs/metrics.md). The default is the strict one "
        "(Cisco's 'negative'): a caller who gave up was not served.")
    default_sl_threshold_s: int = Field(
        default=20, ge=1, le=3600,
        description="The threshold shown on boards whose queues have different ones (each call is still judged "
        "by its own queue's threshold).")
    time_zone: str | None = Field(
        default=None, description="IANA zone where 'today' starts at midnight; default: the tenant's (config).")
    publish_interval_s: float = Field(
        default=0.1, gt=0, le=10,
        description="Boards changed by an event are published at most this late: the latency floor of a TV, "
        "traded against Redis traffic (a burst of events on one board is one snapshot per interval).")
    refresh_interval_s: float = Field(
        default=2.0, gt=0, le=60,
        description="Every board is published at least this often even without events: rolling windows move "
        "and occupancy grows with time. The page counts the longest wait up by itself.")
    interval_flush_s: float = Field(
        default=5.0, gt=0, le=300, description="How often changed 15-minute interval rows are written to SQL.")
    replay_lookback_h: float | None = Field(
        default=24.0, ge=0, le=30 * 24,
        description="At start, the state is rebuilt from the topics read from this many hours before today's "
        "midnight: an agent or call whose last event is older is unknown until its next event. None: from the "
        "beginning of the topics (30 days of retention: slow, exact).")
    batch_size: int = Field(default=2000, ge=1, le=100_000, description="Records fetched and folded at a time.")
