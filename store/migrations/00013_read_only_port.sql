-- +goose Up
-- The static port of the gateways' read-only listener (issue #5), allocated
-- from the same range as gateway_port when an instance first runs on a plan
-- with standbys (Business), kept for the instance's life so its
-- read_only_uri stays valid, released with gateway_port at deprovisioning.
ALTER TABLE instances ADD COLUMN read_only_port int UNIQUE;

-- +goose Down
ALTER TABLE instances DROP COLUMN read_only_port;
