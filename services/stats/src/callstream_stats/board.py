"""The board snapshot: what a wallboard shows, as the aggregator publishes it and the web side serves it.

This is the contract between the two halves of the stats service. The aggregator writes one snapshot per
board to Redis (`board_key`) and then publishes the same JSON on `board_channel`; a web instance sends a
client the stored snapshot on connect and every published one after it. Snapshots are whole (no deltas), so
a client that missed one is right again with the next, and `seq` (per board, increasing) lets it drop an
older snapshot that arrives after a newer one.

Times are ISO 8601 with offset. A figure that has no value yet (a rate with no calls) is null, never 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ScopeKind = Literal["tenant", "department", "floor", "queue"]
PeriodName = Literal["today", "60m", "15m"]
# How abandoned calls enter the service level (docs/metrics.md): left out of the denominator; counted as
# failures; or left out when abandoned within the threshold and counted as failures after it.
AbandonPolicy = Literal["exclude", "count_as_failed", "exclude_within_threshold"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BoardSettings(_Frozen):
    """The parameters behind the figures, shown on the board so everyone reads them alike."""

    sl_threshold_s: int = Field(ge=0, description="Answered within this many seconds counts as in service level.")
    short_abandon_s: int = Field(ge=0, description="Abandoned within this many seconds: a short abandon.")
    abandon_policy: AbandonPolicy
    time_zone: str = Field(description="IANA zone of the tenant; 'today' starts at its midnight.")


class Now(_Frozen):
    """The present: calls waiting and agents by state, as of `BoardSnapshot.updated_at`."""

    waiting: int = Field(ge=0)
    oldest_waiting_since: AwareDatetime | None = Field(
        description="Start of the longest current wait: the page counts the longest wait up from it by itself.")
    agents: dict[str, int] = Field(description="Agent state (machine names: available, reserved, ringing, "
                                   "on_call, wrap_up, paused) -> agents in it; logged-out agents are not counted.")
    paused_reasons: dict[str, int] = Field(description="Pause reason -> paused agents with it.")


class Period(_Frozen):
    """Counts and averages over one period (today, or the rolling 60 and 15 minutes)."""

    offered: int = Field(ge=0)
    answered: int = Field(ge=0)
    abandoned: int = Field(ge=0)
    short_abandoned: int = Field(ge=0)
    answered_in_sl: int = Field(ge=0)
    sl_pct: float | None = Field(ge=0, le=100)
    abandon_pct: float | None = Field(ge=0, le=100)
    asa_s: float | None = Field(ge=0, description="Average speed of answer.")
    aht_s: float | None = Field(ge=0, description="Average handle time: talk + hold + wrap-up.")
    avg_wrapup_s: float | None = Field(ge=0)
    occupancy_pct: float | None = Field(ge=0, le=100)


class BoardSnapshot(_Frozen):
    tenant: str
    scope: str = Field(description="`kind/id`: tenant/all, department/<id>, floor/<id>, queue/<id>.")
    kind: ScopeKind
    title: str
    seq: int = Field(ge=0, description="Increases with every snapshot of this board.")
    updated_at: AwareDatetime = Field(description="When the aggregator built this snapshot.")
    last_event_at: AwareDatetime | None = Field(
        description="PBX time (`at`) of the newest event folded in.")
    oldest_event_at: AwareDatetime | None = Field(
        default=None,
        description="PBX time of the oldest event folded into this board since its previous snapshot (None when "
        "none was: a periodic refresh). Receipt time minus this is the latency of the least fresh change the "
        "snapshot carries: the source of the latency measures.")
    settings: BoardSettings
    now: Now
    periods: dict[PeriodName, Period]


def scope_of(kind: ScopeKind, ident: str) -> str:
    return f"{kind}/{ident}"
