-- +goose Up
-- A restore of a dump into the instance is an operation too (last_operation shows it).
ALTER TABLE operations DROP CONSTRAINT operations_kind_check;
ALTER TABLE operations ADD CONSTRAINT operations_kind_check
    CHECK (kind IN ('provision', 'update', 'deprovision', 'restore'));

-- +goose Down
ALTER TABLE operations DROP CONSTRAINT operations_kind_check;
ALTER TABLE operations ADD CONSTRAINT operations_kind_check
    CHECK (kind IN ('provision', 'update', 'deprovision'));
