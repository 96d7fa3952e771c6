-- +goose Up
-- instances: one row per OSB service instance (OSB 2.17 "Provisioning").
-- Secrets are never stored here: they live in Nomad Variables.
CREATE TABLE instances (
    id                text PRIMARY KEY,
    short_id          text NOT NULL UNIQUE,
    service_id        text NOT NULL,
    plan_id           text NOT NULL,
    organization_guid text NOT NULL,
    space_guid        text NOT NULL,
    parameters        jsonb NOT NULL DEFAULT '{}',
    context           jsonb NOT NULL DEFAULT '{}',
    gateway_port      integer UNIQUE,
    node_id           text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    deprovisioned_at  timestamptz
);

-- operations: every asynchronous OSB operation, durable across restarts.
CREATE TABLE operations (
    id                   text PRIMARY KEY,
    instance_id          text NOT NULL REFERENCES instances (id),
    kind                 text NOT NULL CHECK (kind IN ('provision', 'update', 'deprovision')),
    state                text NOT NULL CHECK (state IN ('in progress', 'succeeded', 'failed')),
    description          text NOT NULL DEFAULT '',
    plan_id              text NOT NULL,
    parameters           jsonb NOT NULL DEFAULT '{}',
    -- who asked: X-Broker-API-Originating-Identity, decoded (OSB 2.17 "Originating Identity")
    originating_platform text NOT NULL DEFAULT '',
    originating_identity jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz
);
-- At most one operation in flight per instance (OSB 2.17: concurrent operations get 422).
CREATE UNIQUE INDEX operations_one_in_flight ON operations (instance_id) WHERE state = 'in progress';
CREATE INDEX operations_by_instance ON operations (instance_id, created_at DESC);

-- bindings: one login role per OSB binding.
CREATE TABLE bindings (
    instance_id text NOT NULL REFERENCES instances (id),
    id          text NOT NULL,
    role_name   text NOT NULL,
    read_only   boolean NOT NULL,
    parameters  jsonb NOT NULL DEFAULT '{}',
    app_guid    text NOT NULL DEFAULT '',
    originating_platform text NOT NULL DEFAULT '',
    originating_identity jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, id)
);

-- +goose Down
DROP TABLE bindings;
DROP TABLE operations;
DROP TABLE instances;
