-- +goose Up
-- backups: one row per logical dump (pg_dump -Fc) of an instance's database.
-- The dump itself lives in the backup storage under storage_key; the row is
-- deleted once retention has deleted the dump.
CREATE TABLE backups (
    id           text PRIMARY KEY,
    instance_id  text NOT NULL REFERENCES instances (id),
    -- daily: made by the schedule (scheduled_at is the run); manual: asked for through the API
    kind         text NOT NULL CHECK (kind IN ('daily', 'manual')),
    status       text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    scheduled_at timestamptz,
    storage_key  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    size_bytes   bigint,
    sha256       text,
    error        text NOT NULL DEFAULT '',
    CHECK ((kind = 'daily') = (scheduled_at IS NOT NULL))
);
-- One dump per scheduled run, however many brokers saw the run come due.
CREATE UNIQUE INDEX backups_one_per_run ON backups (instance_id, scheduled_at) WHERE kind = 'daily';
CREATE INDEX backups_by_instance ON backups (instance_id, created_at DESC);

-- +goose Down
DROP TABLE backups;
