-- +goose Up
-- The Nomad client holding each node's data directory of an instance whose
-- plan has standbys, by node index (node_clients[1] is node-0's): recorded
-- once its nodes run (provision, plan change, and the reconcile loop while
-- Nomad runs them), so that jobs Nomad lost are registered again with each
-- node on its own data. Empty: not known (single-node plans use node_id).
ALTER TABLE instances ADD COLUMN node_clients text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE instances DROP COLUMN node_clients;
