-- Site configuration (docs/acd.md, "Configuration"): what `callstream-admin site load FILE` writes and what the
-- router and agent-state read at start (callstream_common.site.load_config). The YAML site file is the source;
-- these rows are its last applied state.
--
-- Every key starts with tenant_id so that one database can hold several tenants when a deployment wants that.
-- Things that history refers to (PBXs, queues, agents, pause reasons) are never deleted: a row that left the
-- file is marked inactive, so calls and state intervals keep a name to show; it becomes active again if it comes
-- back. Plain relations (DIDs, agent skills) are replaced by what the file says.
-- updated_at moves only when a value changes: the loader skips rows that are already equal.

CREATE TABLE tenants (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    timezone   text        NOT NULL,  -- IANA name; interval statistics and calling windows use it
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pbxs (
    tenant_id  text        NOT NULL REFERENCES tenants (id),
    id         text        NOT NULL,  -- the Kafka key of every PBX-scoped topic
    ari_url    text        NOT NULL,  -- no credentials: the gateway's settings hold them
    entity_id  text        NOT NULL,  -- Asterisk's system entity id, as the gateway sees it
    active     boolean     NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE queues (
    tenant_id         text        NOT NULL REFERENCES tenants (id),
    id                text        NOT NULL,
    department        text        NOT NULL,
    strategy          text        NOT NULL CHECK (strategy IN (
                          'longest_idle', 'fewest_calls', 'round_robin', 'ring_all', 'random', 'linear',
                          'skills_based')),
    ring_timeout_s    integer     NOT NULL CHECK (ring_timeout_s > 0),
    wrapup_s          integer     NOT NULL CHECK (wrapup_s >= 0),
    max_wait_s        integer     NOT NULL CHECK (max_wait_s > 0),
    overflow_action   text        NOT NULL CHECK (overflow_action IN ('queue', 'voicemail', 'hangup')),
    overflow_queue_id text,
    sl_threshold_s    integer     NOT NULL CHECK (sl_threshold_s > 0),
    priority          integer     NOT NULL DEFAULT 0,  -- higher first among calls waiting for the same agents
    required_skill    text,
    -- An agent serves the queue when it has required_skill (any level; every agent when there is none). For a
    -- call it needs min_skill_level, minus one level per relax_after_s the call has waited, until any agent
    -- serving the queue qualifies; relax_after_s NULL never relaxes.
    min_skill_level   smallint    NOT NULL DEFAULT 1 CHECK (min_skill_level BETWEEN 1 AND 5),
    relax_after_s     integer     CHECK (relax_after_s > 0),
    moh_class         text        NOT NULL DEFAULT 'default',
    active            boolean     NOT NULL DEFAULT true,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, overflow_queue_id) REFERENCES queues (tenant_id, id),
    CHECK ((overflow_action = 'queue') = (overflow_queue_id IS NOT NULL)),
    CHECK (overflow_queue_id IS DISTINCT FROM id),
    CHECK (strategy <> 'skills_based' OR required_skill IS NOT NULL),
    CHECK (required_skill IS NOT NULL OR (min_skill_level = 1 AND relax_after_s IS NULL))
);

CREATE TABLE dids (
    tenant_id  text        NOT NULL REFERENCES tenants (id),
    number     text        NOT NULL,  -- as the carrier delivers it: the StasisStart args `inbound,<DID>`
    queue_id   text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, number),
    FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, id)
);

CREATE TABLE agents (
    tenant_id  text        NOT NULL REFERENCES tenants (id),
    id         text        NOT NULL,
    name       text        NOT NULL,
    extension  text        NOT NULL,
    endpoint   text        NOT NULL,  -- the PJSIP endpoint (ps_endpoints.id in the PBX database): PJSIP/<endpoint>
    pbx_id     text        NOT NULL,
    floor      smallint    CHECK (floor >= 0),
    active     boolean     NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pbx_id) REFERENCES pbxs (tenant_id, id),
    -- Unique among active agents only, so that a departed agent's extension can be given to a new one; checked
    -- at commit, so that one load can swap two agents' extensions.
    CONSTRAINT agents_active_extension_unique
        EXCLUDE USING btree (tenant_id WITH =, extension WITH =) WHERE (active) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT agents_active_endpoint_unique
        EXCLUDE USING btree (tenant_id WITH =, endpoint WITH =) WHERE (active) DEFERRABLE INITIALLY DEFERRED
);

CREATE INDEX agents_by_pbx ON agents (tenant_id, pbx_id) WHERE active;

CREATE TABLE agent_skills (
    tenant_id  text        NOT NULL,
    agent_id   text        NOT NULL,
    skill      text        NOT NULL,
    level      smallint    NOT NULL CHECK (level BETWEEN 1 AND 5),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, agent_id, skill),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX agent_skills_by_skill ON agent_skills (tenant_id, skill);

CREATE TABLE pause_reasons (
    tenant_id      text        NOT NULL REFERENCES tenants (id),
    id             text        NOT NULL,  -- the reason in cms.agent-pause and in agent states: paused(<id>)
    label          text        NOT NULL,
    paid           boolean     NOT NULL DEFAULT false,  -- counts as working time in reports
    max_duration_s integer     CHECK (max_duration_s > 0),  -- wallboards flag a pause that runs longer
    active         boolean     NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
