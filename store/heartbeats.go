package store

import (
	"context"
	"fmt"
	"time"
)

// Beat records that the broker whose River client id is clientID is alive
// now (table broker_heartbeats), and forgets heartbeats older than a day.
func (s *Store) Beat(ctx context.Context, clientID string) error {
	_, err := s.pool.Exec(ctx, `
		WITH forget AS (DELETE FROM broker_heartbeats WHERE seen_at < now() - interval '1 day')
		INSERT INTO broker_heartbeats (client_id, seen_at) VALUES ($1, now())
		ON CONFLICT (client_id) DO UPDATE SET seen_at = now()`, clientID)
	if err != nil {
		return fmt.Errorf("record the broker's heartbeat: %w", err)
	}
	return nil
}

// TakeOverAbandoned makes every running River job whose current attempt
// belongs to a broker that has not beaten for stale available again at
// once, with an attempt error saying why, and returns the ids of those jobs.
// A broker that never beat (one that predates heartbeats) is left to
// River's own rescue (worker.Config.RescueAfter).
func (s *Store) TakeOverAbandoned(ctx context.Context, stale time.Duration) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `
		UPDATE river_job SET state = 'available', scheduled_at = now(),
			errors = array_append(errors, jsonb_build_object('at', now(), 'attempt', attempt,
				'error', 'the broker running this attempt stopped beating for ' || $1::text || ': taken over', 'trace', ''))
		WHERE state = 'running' AND cardinality(attempted_by) > 0
		AND attempted_by[cardinality(attempted_by)] IN (
			SELECT client_id FROM broker_heartbeats WHERE seen_at < now() - make_interval(secs => $2))
		RETURNING id`, stale.String(), stale.Seconds())
	if err != nil {
		return nil, fmt.Errorf("take over abandoned jobs: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
