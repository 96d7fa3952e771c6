-- +goose Up
-- Sealed copies of the Nomad Variables holding instances' secrets and the
-- CA (package sealed: envelope encryption under the operator's key), so
-- that losing Nomad's state loses no secret. Never plain text.
CREATE TABLE sealed_variables (
	path        text PRIMARY KEY,        -- the Nomad Variable's path, also the envelope's additional data
	key_id      text NOT NULL,           -- id of the operator key that wrapped the data key
	wrapped_key bytea NOT NULL,          -- nonce, then the data key sealed with the operator key
	nonce       bytea NOT NULL,          -- nonce of ciphertext
	ciphertext  bytea NOT NULL,          -- the items (JSON) sealed with the data key
	updated_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE sealed_variables;
