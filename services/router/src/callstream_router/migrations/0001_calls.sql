-- The router's projections of its own call events (topic `calls`): one row per call, one per offered leg.
-- Written by the router's calls projection with the consumed position (consumer_positions) in the same
-- transaction, so a replay is a no-op and a rebuild is "truncate, reset the position, replay".
CREATE TABLE calls (
    tenant         text        NOT NULL,
    call_id        text        NOT NULL,
    pbx_id         text        NOT NULL,
    queue_id       text,
    agent_id       text,
    direction      text        NOT NULL DEFAULT 'inbound',
    caller_number  text,
    caller_name    text,
    did            text,
    priority       integer     NOT NULL DEFAULT 0,
    queued_at      timestamptz,
    answered_at    timestamptz,
    ended_at       timestamptz,
    wait_s         double precision,
    talk_s         double precision,
    hold_s         double precision,
    outcome        text,
    hangup_by      text,
    cause          integer,
    transfers      integer     NOT NULL DEFAULT 0,
    overflows      integer     NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, call_id)
);
CREATE INDEX calls_queued_at ON calls (tenant, queued_at);
CREATE INDEX calls_agent ON calls (tenant, agent_id, answered_at);

CREATE TABLE call_legs (
    tenant          text        NOT NULL,
    call_id         text        NOT NULL,
    attempt         integer     NOT NULL,
    agent_id        text        NOT NULL,
    agent_channel_id text       NOT NULL,
    endpoint        text        NOT NULL,
    queue_id        text,
    offered_at      timestamptz NOT NULL,
    answered_at     timestamptz,
    missed_at       timestamptz,
    outcome         text,       -- answered, or the miss reason (no_answer, busy, unreachable, rejected, failed)
    PRIMARY KEY (tenant, call_id, agent_channel_id)
);
CREATE INDEX call_legs_agent ON call_legs (tenant, agent_id, offered_at);
