-- Where each incremental ingest job got to (goald/match/store.py cursor_get / cursor_set): the
-- recent-list sync's `time`, the reference syncs' `time`. Shared by every node on the database,
-- so a restart or another node goes on from there instead of from the beginning.
CREATE TABLE ingest_cursors (
    name       text PRIMARY KEY,
    value      bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
