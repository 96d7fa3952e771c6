-- +goose Up
-- The reconcile loop's last verdict on each instance, compared with Nomad
-- ("running", "repairing", "degraded: ..."); empty until it first looked.
-- A column, not memory: GET instance may be answered by any broker.
ALTER TABLE instances ADD COLUMN status text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE instances DROP COLUMN status;
