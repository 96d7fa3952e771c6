-- +goose Up
-- base_backups: pgBackRest full base backups behind point-in-time recovery,
-- one a week (ISO week, UTC) per instance on a plan with PITR. pgBackRest
-- keeps them in its repository and expires them itself (time retention).
CREATE TABLE base_backups (
    id          text PRIMARY KEY,
    instance_id text NOT NULL REFERENCES instances (id),
    week        text NOT NULL, -- "2026-W48": the ISO week it is due for
    status      text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    label       text NOT NULL DEFAULT '', -- pgBackRest's backup label, once succeeded
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error       text NOT NULL DEFAULT ''
);
-- One base backup a week, however many brokers saw it come due; a failed one may be tried again.
CREATE UNIQUE INDEX base_backups_one_a_week ON base_backups (instance_id, week) WHERE status <> 'failed';

-- +goose Down
DROP TABLE base_backups;
