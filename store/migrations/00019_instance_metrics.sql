-- +goose Up
-- The figures of each instance over time (package sampler), one row per
-- instance, tier (step_seconds) and bucket start (at). The tiers bound the
-- rows per instance (README "Metrics over time"): the sampler deletes rows
-- past their tier's range. One index, the primary key, serves one
-- instance's series; the roll-ups and deletions that span every instance
-- read the table whole, and run once per 5-minute bucket only (a second
-- index would cost about a third more space per instance).
CREATE TABLE instance_metrics (
	instance_id text NOT NULL,
	step_seconds integer NOT NULL,
	at timestamptz NOT NULL,
	cpu_percent real NOT NULL,
	memory_bytes bigint NOT NULL,
	swap_bytes bigint NOT NULL,
	connections real NOT NULL,
	data_size_bytes bigint NOT NULL,
	disk_size_bytes bigint NOT NULL,
	PRIMARY KEY (instance_id, step_seconds, at)
);

-- +goose Down
DROP TABLE instance_metrics;
