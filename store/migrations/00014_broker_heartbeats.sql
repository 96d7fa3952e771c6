-- +goose Up
-- Each running broker (its River client id) writes its heartbeat here every
-- few seconds. A running job whose broker stopped beating (kill -9, a lost
-- host) is handed to another broker within seconds (worker, issue 12 hole 7)
-- instead of after River's rescue delay.
CREATE TABLE broker_heartbeats (
	client_id text PRIMARY KEY,
	seen_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE broker_heartbeats;
