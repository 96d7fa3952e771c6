-- +goose Up
-- When a base backup's job was first started (its time limit runs from
-- then, backup.Limits); NULL while it waits for a backup slot.
ALTER TABLE base_backups ADD COLUMN started_at timestamptz;

-- +goose Down
ALTER TABLE base_backups DROP COLUMN started_at;
