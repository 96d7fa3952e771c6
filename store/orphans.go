package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Orphans are what the orphan reaper reads and records: which instances
// are live, which Nomad jobs it saw orphaned and since when, and whether the
// run a batch job carries out is still under way. From Store.Orphans.
type Orphans struct{ *db }

// SeeOrphans records the orphan jobs of this sweep and forgets the ones no
// longer orphaned. It returns when each was first seen.
func (s *Orphans) SeeOrphans(ctx context.Context, jobIDs []string) (map[string]time.Time, error) {
	seen := make(map[string]time.Time, len(jobIDs))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM orphan_jobs WHERE NOT (job_id = ANY($1))`, jobIDs); err != nil {
			return fmt.Errorf("forget orphans: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO orphan_jobs (job_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, jobIDs); err != nil {
			return fmt.Errorf("record orphans: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT job_id, first_seen FROM orphan_jobs`)
		if err != nil {
			return fmt.Errorf("read orphans: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var t time.Time
			if err := rows.Scan(&id, &t); err != nil {
				return err
			}
			seen[id] = t
		}
		return rows.Err()
	})
	return seen, err
}

// activeRun selects whether the run a batch job of each kind carries out is
// still under way: a dump pending or running, a restore operation in
// progress, a base backup pending or running.
var activeRun = map[string]string{
	"dump":       `SELECT EXISTS (SELECT 1 FROM backups WHERE id = $1 AND status IN ('pending', 'running'))`,
	"restore":    `SELECT EXISTS (SELECT 1 FROM operations WHERE id = $1 AND state = 'in progress')`,
	"basebackup": `SELECT EXISTS (SELECT 1 FROM base_backups WHERE id = $1 AND status IN ('pending', 'running'))`,
}

// RunActive reports whether the run id of a batch job of kind ("dump": a
// backup id, "restore": an operation id, "basebackup": a base backup id) is
// still under way. Unknown ids are not; unknown kinds are an error.
func (s *Orphans) RunActive(ctx context.Context, kind, id string) (bool, error) {
	q, ok := activeRun[kind]
	if !ok {
		return false, fmt.Errorf("no batch job kind %q", kind)
	}
	var active bool
	if err := s.pool.QueryRow(ctx, q, id).Scan(&active); err != nil {
		return false, fmt.Errorf("read the state of %s %s: %w", kind, id, err)
	}
	return active, nil
}
