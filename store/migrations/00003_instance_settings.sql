-- +goose Up
-- Settings of an instance that update parameters and the management API
-- change (issue #6): Force TLS (pg_hba.conf allows TLS connections only) and
-- the extensions the broker manages in the instance's database, whose
-- libraries may need shared_preload_libraries. Certificates and keys are
-- secrets: they live in Nomad Variables, never here.
ALTER TABLE instances
    ADD COLUMN force_tls  boolean NOT NULL DEFAULT false,
    ADD COLUMN extensions text[]  NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE instances DROP COLUMN force_tls, DROP COLUMN extensions;
