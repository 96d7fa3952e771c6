-- +goose Up
-- The PostgreSQL version each instance runs ("15.18"): an upgrade changes it
-- when it succeeds. Instances made before it run Debian bookworm's
-- postgresql-15, 15.18, the only version the broker offered then; an
-- instance inserted without one reads as '' (the job files' default binaries).
ALTER TABLE instances ADD COLUMN postgres_version text NOT NULL DEFAULT '15.18';
ALTER TABLE instances ALTER COLUMN postgres_version SET DEFAULT '';

-- +goose Down
ALTER TABLE instances DROP COLUMN postgres_version;
