-- +goose Up
-- Restoring a dump into the instance, and a point-in-time restore, are
-- operations too (last_operation shows them).
ALTER TABLE operations DROP CONSTRAINT operations_kind_check;
ALTER TABLE operations ADD CONSTRAINT operations_kind_check
    CHECK (kind IN ('provision', 'update', 'deprovision', 'restore', 'pitr'));

-- +goose Down
ALTER TABLE operations DROP CONSTRAINT operations_kind_check;
ALTER TABLE operations ADD CONSTRAINT operations_kind_check
    CHECK (kind IN ('provision', 'update', 'deprovision'));
