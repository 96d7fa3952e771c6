package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeploymentID is the identity of this broker deployment (a UUID made with
// its state database, table deployment): every Nomad job it registers
// carries it, and the orphan sweep takes only jobs carrying it as its own.
func (s *Store) DeploymentID(ctx context.Context) (string, error) {
	var id string
	if err := s.pool.QueryRow(ctx, `SELECT id::text FROM deployment`).Scan(&id); err != nil {
		return "", fmt.Errorf("read the deployment's identity: %w", err)
	}
	return id, nil
}

// InstanceRecords returns, for every instance the state database knows,
// whether it is deprovisioned (its tombstone: the row with deprovisioned_at
// set), by short id. An instance it does not know is absent.
func (s *Orphans) InstanceRecords(ctx context.Context) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT short_id, deprovisioned_at IS NOT NULL FROM instances`)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	out := map[string]bool{}
	var short string
	var gone bool
	_, err = pgx.ForEachRow(rows, []any{&short, &gone}, func() error {
		out[short] = out[short] || gone
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return out, nil
}

// RecordSweepRefusal records why the orphan sweep refused to remove jobs
// ("" when it refused nothing).
func (s *Orphans) RecordSweepRefusal(ctx context.Context, reason string) error {
	var err error
	if reason == "" {
		_, err = s.pool.Exec(ctx, `DELETE FROM sweep_refusal`)
	} else {
		_, err = s.pool.Exec(ctx, `INSERT INTO sweep_refusal (reason, at) VALUES ($1, now())
			ON CONFLICT (singleton) DO UPDATE SET reason = $1, at = now()`, reason)
	}
	if err != nil {
		return fmt.Errorf("record the orphan sweep's refusal: %w", err)
	}
	return nil
}

// SweepRefusal returns the last sweep's refusal and when it was recorded;
// "" when there is none.
func (s *Orphans) SweepRefusal(ctx context.Context) (string, time.Time, error) {
	var reason string
	var at time.Time
	err := s.pool.QueryRow(ctx, `SELECT reason, at FROM sweep_refusal`).Scan(&reason, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read the orphan sweep's refusal: %w", err)
	}
	return reason, at, nil
}
