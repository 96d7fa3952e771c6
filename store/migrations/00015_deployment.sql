-- +goose Up
-- deployment: the identity of this broker deployment, made once with its
-- state database. Every Nomad job the broker registers carries it in its
-- Meta (pgbroker_deployment), so a second deployment with the same
-- PGBROKER_BROKER_NAME, or this broker pointed at another state database,
-- never takes another deployment's jobs for its own (issue 12, hole 3).
CREATE TABLE deployment (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	id uuid NOT NULL DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO deployment DEFAULT VALUES;

-- sweep_refusal: why the last orphan sweep would not remove an instance's
-- jobs (its state database holds no record of instances Nomad runs for this
-- deployment: restored from an older backup?); /readyz reports it. Empty
-- when the last sweep had nothing to refuse.
CREATE TABLE sweep_refusal (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	reason text NOT NULL,
	at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE sweep_refusal;
DROP TABLE deployment;
