-- Agent sessions and state intervals, written by agent-state (component agent_state). Rows are upserted by
-- natural key together with the applied input position (consumer_positions), so a replay changes nothing.

CREATE TABLE agent_sessions (
    tenant      text        NOT NULL,
    session_id  text        NOT NULL,  -- the login command's id
    agent_id    text        NOT NULL,
    login_at    timestamptz NOT NULL,
    logout_at   timestamptz,
    endpoint    text        NOT NULL,
    station     text,
    PRIMARY KEY (tenant, session_id)
);
CREATE INDEX agent_sessions_agent ON agent_sessions (tenant, agent_id, login_at);

CREATE TABLE agent_state_intervals (
    tenant      text        NOT NULL,
    agent_id    text        NOT NULL,
    started_at  timestamptz NOT NULL,
    state       text        NOT NULL,
    reason      text,                  -- the pause reason
    call_id     text,
    ended_at    timestamptz,           -- null while the agent is in this state
    cause       text        NOT NULL,  -- the input's topic/partition/offset
    PRIMARY KEY (tenant, agent_id, started_at, state)
);
-- At most one open interval per agent: the next transition closes it.
CREATE UNIQUE INDEX agent_state_intervals_open ON agent_state_intervals (tenant, agent_id) WHERE ended_at IS NULL;
