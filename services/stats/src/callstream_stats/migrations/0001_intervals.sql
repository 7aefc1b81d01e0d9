-- The stats aggregator's 15-minute interval rows, for historical reports (docs/metrics.md, "Interval rows").
-- One row per board and interval: the raw counts and sums the period figures are computed from, so a report
-- can compute any of the service-level formulas afterwards. Rows are upserted with absolute values computed
-- from the folded topics, so writing a row again (a restart, a redelivery) changes nothing.
CREATE TABLE stats_intervals (
    tenant           text        NOT NULL,
    scope            text        NOT NULL,  -- tenant/all, department/<id>, queue/<id>, floor/<n>
    interval_start   timestamptz NOT NULL,  -- 15 minutes from here; facts are counted by their event time
    offered          integer     NOT NULL,
    answered         integer     NOT NULL,
    answered_in_sl   integer     NOT NULL,
    answer_wait_ms   bigint      NOT NULL,
    abandoned        integer     NOT NULL,
    abandoned_in_sl  integer     NOT NULL,
    short_abandoned  integer     NOT NULL,
    overflowed       integer     NOT NULL,
    handled          integer     NOT NULL,
    handle_ms        bigint      NOT NULL,
    wrapups          integer     NOT NULL,
    wrapup_ms        bigint      NOT NULL,
    busy_ms          bigint      NOT NULL,
    idle_ms          bigint      NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, scope, interval_start)
);
CREATE INDEX stats_intervals_start ON stats_intervals (tenant, interval_start);
