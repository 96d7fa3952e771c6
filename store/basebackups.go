package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// KindPITR is a point-in-time restore of the instance; Parameters hold "target_time".
const KindPITR OperationKind = "pitr"

// BaseBackup is one pgBackRest full base backup of an instance.
type BaseBackup struct {
	ID         string
	InstanceID string
	Week       string       // ISO week it is due for, "2026-W48"
	Status     BackupStatus // pending, running, succeeded, failed
	Label      string       // pgBackRest's label, once succeeded
	CreatedAt  time.Time
	StartedAt  *time.Time // when its job was first started (StartBaseBackup)
	FinishedAt *time.Time
	Error      string
}

const baseBackupColumns = `id, instance_id, week, status, label, created_at, started_at, finished_at, error`

func scanBaseBackup(row pgx.Row) (BaseBackup, error) {
	var b BaseBackup
	err := row.Scan(&b.ID, &b.InstanceID, &b.Week, &b.Status, &b.Label, &b.CreatedAt, &b.StartedAt, &b.FinishedAt, &b.Error)
	return b, notFound(err)
}

// CreateBaseBackup records the base backup of instanceID due for week and
// calls enqueue with its id in the same transaction, unless that week's base
// backup is already recorded (and not failed) or one failed less than an
// hour ago: created is false then.
func (s *Backups) CreateBaseBackup(ctx context.Context, id, instanceID, week string, enqueue EnqueueFunc) (created bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO base_backups (id, instance_id, week, status)
			SELECT $1, $2, $3, 'pending'
			WHERE NOT EXISTS (SELECT 1 FROM base_backups WHERE instance_id = $2 AND status = 'failed'
				AND finished_at > now() - interval '1 hour')
			ON CONFLICT (instance_id, week) WHERE status <> 'failed' DO NOTHING`, id, instanceID, week)
		if err != nil {
			return fmt.Errorf("insert base backup: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		created = true
		return enqueue(ctx, tx, id)
	})
	return created, err
}

// GetBaseBackup returns the base backup id. Errors: ErrNotFound.
func (s *Backups) GetBaseBackup(ctx context.Context, id string) (BaseBackup, error) {
	return scanBaseBackup(s.pool.QueryRow(ctx, `SELECT `+baseBackupColumns+` FROM base_backups WHERE id = $1`, id))
}

// StartBaseBackup marks a pending base backup running (a running one keeps
// its start time) and returns it as stored. Errors: ErrNotFound when it is
// neither pending nor running.
func (s *Backups) StartBaseBackup(ctx context.Context, id string) (BaseBackup, error) {
	return scanBaseBackup(s.pool.QueryRow(ctx, `UPDATE base_backups
		SET status = 'running', started_at = coalesce(started_at, now())
		WHERE id = $1 AND status IN ('pending', 'running')
		RETURNING `+baseBackupColumns, id))
}

// FinishBaseBackup records a pending or running base backup's outcome:
// succeeded with pgBackRest's label, or failed with reason.
func (s *Backups) FinishBaseBackup(ctx context.Context, id string, status BackupStatus, label, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE base_backups SET status = $2, label = $3, error = $4, finished_at = now()
		WHERE id = $1 AND status IN ('pending', 'running')`, id, status, label, reason)
	if err != nil {
		return fmt.Errorf("record base backup: %w", err)
	}
	return nil
}

// FirstBaseBackup returns when the instance's oldest succeeded base backup
// finished; ok is false when it has none.
func (s *Backups) FirstBaseBackup(ctx context.Context, instanceID string) (at time.Time, ok bool, err error) {
	var t *time.Time
	err = s.pool.QueryRow(ctx, `SELECT min(finished_at) FROM base_backups WHERE instance_id = $1 AND status = 'succeeded'`,
		instanceID).Scan(&t)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read base backups: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}
