-- +goose Up
-- orphan_jobs: Nomad jobs carrying this broker's name whose instance the
-- store does not know (or knows as deprovisioned), with when a sweep first saw
-- them; they are removed once older than the grace period.
CREATE TABLE orphan_jobs (
    job_id     text PRIMARY KEY,
    first_seen timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE orphan_jobs;
