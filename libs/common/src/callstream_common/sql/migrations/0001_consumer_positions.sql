-- Tracking records: the input position a projection has applied, written in the same transaction as the
-- projection's rows. A re-delivered record at or below the stored offset is skipped, so replays are no-ops
-- and "rebuild" means "reset the projection and its positions, then replay".
CREATE TABLE consumer_positions (
    projection  text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);
