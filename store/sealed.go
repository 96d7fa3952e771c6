package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/sealed"
)

// SealedVariables are the sealed copies of Nomad Variables (table
// sealed_variables), by the Variable's path. They hold envelopes only,
// never plain text; package sealed makes and opens them.
type SealedVariables struct{ *db }

// Get returns the envelope kept for path. Errors: ErrNotFound.
func (s *SealedVariables) Get(ctx context.Context, path string) (sealed.Envelope, error) {
	var e sealed.Envelope
	err := s.pool.QueryRow(ctx, `SELECT key_id, wrapped_key, nonce, ciphertext FROM sealed_variables WHERE path = $1`, path).
		Scan(&e.KeyID, &e.WrappedKey, &e.Nonce, &e.Ciphertext)
	if errors.Is(err, pgx.ErrNoRows) {
		return sealed.Envelope{}, ErrNotFound
	}
	if err != nil {
		return sealed.Envelope{}, fmt.Errorf("read the sealed copy of %s: %w", path, err)
	}
	return e, nil
}

// Insert stores e as the copy of path unless one is there already, and
// reports whether it did.
func (s *SealedVariables) Insert(ctx context.Context, path string, e sealed.Envelope) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO sealed_variables (path, key_id, wrapped_key, nonce, ciphertext) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (path) DO NOTHING`, path, e.KeyID, e.WrappedKey, e.Nonce, e.Ciphertext)
	if err != nil {
		return false, fmt.Errorf("store the sealed copy of %s: %w", path, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Update runs change on the copy of path (nil when there is none) and
// stores the envelope it returns (nil: nothing to store), in one
// transaction holding a lock on path until it ends: Updates of one path,
// from any broker, run one after the other, so the last to run stores what
// change saw last. It reports whether it stored.
func (s *SealedVariables) Update(ctx context.Context, path string, change func(current *sealed.Envelope) (*sealed.Envelope, error)) (bool, error) {
	stored := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sealed_variables ' || $1, 0))`, path); err != nil {
			return err
		}
		var cur *sealed.Envelope
		var e sealed.Envelope
		err := tx.QueryRow(ctx, `SELECT key_id, wrapped_key, nonce, ciphertext FROM sealed_variables WHERE path = $1`, path).
			Scan(&e.KeyID, &e.WrappedKey, &e.Nonce, &e.Ciphertext)
		switch {
		case err == nil:
			cur = &e
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		next, err := change(cur)
		if err != nil || next == nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO sealed_variables (path, key_id, wrapped_key, nonce, ciphertext) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (path) DO UPDATE SET key_id = excluded.key_id, wrapped_key = excluded.wrapped_key,
				nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = now()`,
			path, next.KeyID, next.WrappedKey, next.Nonce, next.Ciphertext)
		stored = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("update the sealed copy of %s: %w", path, err)
	}
	return stored, nil
}

// Delete deletes the copy of path; a missing one is not an error.
func (s *SealedVariables) Delete(ctx context.Context, path string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sealed_variables WHERE path = $1`, path); err != nil {
		return fmt.Errorf("delete the sealed copy of %s: %w", path, err)
	}
	return nil
}

// DeleteUnder deletes the copy of every path starting with prefix.
func (s *SealedVariables) DeleteUnder(ctx context.Context, prefix string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sealed_variables WHERE starts_with(path, $1)`, prefix); err != nil {
		return fmt.Errorf("delete the sealed copies under %s: %w", prefix, err)
	}
	return nil
}

// Paths returns the path of every copy starting with prefix, sorted.
func (s *SealedVariables) Paths(ctx context.Context, prefix string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT path FROM sealed_variables WHERE starts_with(path, $1) ORDER BY path`, prefix)
	if err != nil {
		return nil, fmt.Errorf("list the sealed copies under %s: %w", prefix, err)
	}
	paths, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the sealed copies under %s: %w", prefix, err)
	}
	return paths, nil
}
