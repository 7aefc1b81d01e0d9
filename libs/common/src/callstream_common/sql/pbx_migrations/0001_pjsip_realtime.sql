-- The PJSIP realtime tables in the PBX database (its own DSN, `pbx_pg_dsn`), which every Asterisk node reads
-- through sorcery `realtime` + res_config_pgsql, and into which callstream provisions agents' phones.
--
-- Only the columns callstream writes are created here. Names and types are Asterisk's own, as its alembic scripts
-- (contrib/ast-db-manage/config) leave them today: ids varchar(255) and ps_endpoints.aors varchar(2048)
-- (revision dac2b4c328b8), boolean options as ast_bool_values (74dc751dfe8e), dtmf_mode as
-- pjsip_dtmf_mode_values_v3, auth_type as pjsip_auth_type_values_v2, realm varchar(255). A database that Asterisk's
-- alembic has already set up holds a superset of these columns: every statement below is then a no-op, and
-- callstream writes into Asterisk's tables. Asterisk declares the ids UNIQUE; a primary key is the same to it.
--
-- Keep queries against this database few and cheap: it is the most latency-sensitive part of the platform.

DO $$
BEGIN
    CREATE TYPE ast_bool_values AS ENUM ('0', '1', 'off', 'on', 'false', 'true', 'no', 'yes');
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;

DO $$
BEGIN
    CREATE TYPE pjsip_dtmf_mode_values_v3 AS ENUM ('rfc4733', 'inband', 'info', 'auto', 'auto_info');
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;

DO $$
BEGIN
    CREATE TYPE pjsip_auth_type_values_v2 AS ENUM ('md5', 'userpass', 'google_oauth');
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;

CREATE TABLE IF NOT EXISTS ps_endpoints (
    id              varchar(255) NOT NULL PRIMARY KEY,
    transport       varchar(40),
    aors            varchar(2048),
    auth            varchar(255),
    context         varchar(40),
    disallow        varchar(200),
    allow           varchar(200),
    direct_media    ast_bool_values,
    force_rport     ast_bool_values,
    rewrite_contact ast_bool_values,
    rtp_symmetric   ast_bool_values,
    ice_support     ast_bool_values,
    callerid        varchar(40),
    mailboxes       varchar(40),
    dtmf_mode       pjsip_dtmf_mode_values_v3
);

CREATE TABLE IF NOT EXISTS ps_aors (
    id                varchar(255) NOT NULL PRIMARY KEY,
    max_contacts      integer,
    remove_existing   ast_bool_values,
    qualify_frequency integer
);

CREATE TABLE IF NOT EXISTS ps_auths (
    id        varchar(255) NOT NULL PRIMARY KEY,
    auth_type pjsip_auth_type_values_v2,
    username  varchar(40),
    password  varchar(80),
    realm     varchar(255)
);

-- Which ps_* ids callstream provisioned, and for which agent: the loader removes the phones of agents that left
-- the site file, and refuses to overwrite endpoints it did not create (trunks, hand-made test phones).
-- Asterisk never reads this table.
CREATE TABLE callstream_endpoints (
    id         varchar(255) NOT NULL PRIMARY KEY,  -- the same id in ps_endpoints, ps_aors and ps_auths
    tenant_id  text        NOT NULL,
    agent_id   text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
