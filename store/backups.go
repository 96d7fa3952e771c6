package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backups are an instance's dumps, its weekly base backups behind PITR
// (basebackups.go) and the backup slots every broker shares (slots.go),
// from Store.Backups. CreateBackup and CreateBaseBackup enqueue the job in
// the transaction that records the row.
type Backups struct{ *db }

// BackupKind says why a dump was made.
type BackupKind string

// Backup kinds.
const (
	BackupDaily  BackupKind = "daily"  // made by the instance's daily schedule
	BackupManual BackupKind = "manual" // asked for through the management API
)

// BackupStatus is where a dump stands.
type BackupStatus string

// Backup statuses.
const (
	BackupPending   BackupStatus = "pending"   // recorded and queued
	BackupRunning   BackupStatus = "running"   // the dump job was started
	BackupSucceeded BackupStatus = "succeeded" // the dump is in storage: Size and SHA256 are set
	BackupFailed    BackupStatus = "failed"    // Error says why
)

// Backup is one logical dump (pg_dump -Fc) of an instance's database.
type Backup struct {
	ID          string
	InstanceID  string
	Kind        BackupKind
	Status      BackupStatus
	ScheduledAt *time.Time // daily: the scheduled run it belongs to; nil for manual
	StorageKey  string     // where the dump lives in the backup storage
	CreatedAt   time.Time
	StartedAt   *time.Time // when the dump job was started
	FinishedAt  *time.Time // when the dump was verified in storage, or failed
	SizeBytes   int64      // size of the dump file in bytes, once succeeded
	SHA256      string     // hex SHA-256 of the dump file, once succeeded
	Error       string     // why it failed
}

const backupColumns = `id, instance_id, kind, status, scheduled_at, storage_key, created_at, started_at, finished_at,
	coalesce(size_bytes, 0), coalesce(sha256, ''), error`

func scanBackup(row pgx.Row) (Backup, error) {
	var b Backup
	err := row.Scan(&b.ID, &b.InstanceID, &b.Kind, &b.Status, &b.ScheduledAt, &b.StorageKey, &b.CreatedAt,
		&b.StartedAt, &b.FinishedAt, &b.SizeBytes, &b.SHA256, &b.Error)
	return b, notFound(err)
}

// CreateBackup records b (pending) and calls enqueue with its id in the same
// transaction. A daily backup (ScheduledAt set) whose run is already recorded
// is not recorded again: created is false and enqueue is not called. Errors:
// ErrNotFound when the instance does not exist or was deprovisioned.
func (s *Backups) CreateBackup(ctx context.Context, b Backup, enqueue EnqueueFunc) (created bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var id string
		if err := tx.QueryRow(ctx, `SELECT id FROM instances WHERE id = $1 AND deprovisioned_at IS NULL`, b.InstanceID).Scan(&id); err != nil {
			return notFound(err)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO backups (id, instance_id, kind, status, scheduled_at, storage_key)
			VALUES ($1, $2, $3, 'pending', $4, $5)
			ON CONFLICT (instance_id, scheduled_at) WHERE kind = 'daily' DO NOTHING`,
			b.ID, b.InstanceID, b.Kind, b.ScheduledAt, b.StorageKey)
		if err != nil {
			return fmt.Errorf("insert backup: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		created = true
		return enqueue(ctx, tx, b.ID)
	})
	return created, err
}

// GetBackup returns the backup id. Errors: ErrNotFound.
func (s *Backups) GetBackup(ctx context.Context, id string) (Backup, error) {
	return scanBackup(s.pool.QueryRow(ctx, `SELECT `+backupColumns+` FROM backups WHERE id = $1`, id))
}

// ListBackups returns the instance's backups, newest first.
func (s *Backups) ListBackups(ctx context.Context, instanceID string) ([]Backup, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+backupColumns+` FROM backups WHERE instance_id = $1
		ORDER BY created_at DESC, id DESC`, instanceID)
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Backup, error) { return scanBackup(r) })
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", invalidValue(err))
	}
	return out, nil
}

// StartBackup marks a pending backup running (an already running one keeps
// its start time). It returns the backup as stored.
func (s *Backups) StartBackup(ctx context.Context, id string) (Backup, error) {
	return scanBackup(s.pool.QueryRow(ctx, `UPDATE backups
		SET status = 'running', started_at = coalesce(started_at, now())
		WHERE id = $1 AND status IN ('pending', 'running')
		RETURNING `+backupColumns, id))
}

// SucceedBackup records that the dump is in storage with its size in bytes
// and hex SHA-256. Only a pending or running backup changes.
func (s *Backups) SucceedBackup(ctx context.Context, id string, size int64, sha256 string) error {
	_, err := s.pool.Exec(ctx, `UPDATE backups SET status = 'succeeded', finished_at = now(), size_bytes = $2, sha256 = $3
		WHERE id = $1 AND status IN ('pending', 'running')`, id, size, sha256)
	if err != nil {
		return fmt.Errorf("record backup success: %w", err)
	}
	return nil
}

// FailBackup records why a backup failed. Only a pending or running backup changes.
func (s *Backups) FailBackup(ctx context.Context, id, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE backups SET status = 'failed', finished_at = now(), error = $2
		WHERE id = $1 AND status IN ('pending', 'running')`, id, reason)
	if err != nil {
		return fmt.Errorf("record backup failure: %w", err)
	}
	return nil
}

// DeleteBackup forgets a backup whose dump was deleted from storage. A
// missing row is not an error.
func (s *Backups) DeleteBackup(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM backups WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete backup: %w", err)
	}
	return nil
}

// InstanceIDsWithBackups returns the ids of every instance, deprovisioned
// ones included, that has at least one backup row.
func (s *Backups) InstanceIDsWithBackups(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT instance_id FROM backups ORDER BY instance_id`)
	if err != nil {
		return nil, fmt.Errorf("list instances with backups: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list instances with backups: %w", err)
	}
	return ids, nil
}

// ScheduledInstance is what the backup schedule needs of a live instance.
type ScheduledInstance struct {
	ID         string
	PlanID     string
	Parameters json.RawMessage // holds backup_time and backup_time_zone when set
	CreatedAt  time.Time
	// PostgresVersion is the version the instance runs ("15.20"; "" when
	// recorded before versions were: the default major's).
	PostgresVersion string
}

// ScheduledInstances returns every instance not deprovisioned whose
// provisioning succeeded, with what the backup schedule needs.
func (s *Backups) ScheduledInstances(ctx context.Context) ([]ScheduledInstance, error) {
	rows, err := s.pool.Query(ctx, `SELECT i.id, i.plan_id, i.parameters, i.created_at, coalesce(i.postgres_version, '') FROM instances i
		WHERE i.deprovisioned_at IS NULL AND EXISTS (SELECT 1 FROM operations o
			WHERE o.instance_id = i.id AND o.kind = 'provision' AND o.state = 'succeeded')`)
	if err != nil {
		return nil, fmt.Errorf("list live instances: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ScheduledInstance, error) {
		var i ScheduledInstance
		err := r.Scan(&i.ID, &i.PlanID, &i.Parameters, &i.CreatedAt, &i.PostgresVersion)
		return i, err
	})
	if err != nil {
		return nil, fmt.Errorf("list live instances: %w", err)
	}
	return out, nil
}

// BackupHealth is, per instance, when its last successful dump finished.
type BackupHealth struct {
	InstanceID  string
	LastSuccess time.Time // finished_at of the newest succeeded backup
}

// LastSuccessfulBackups returns, for every live instance that has a
// succeeded backup, when the newest one finished.
func (s *Backups) LastSuccessfulBackups(ctx context.Context) ([]BackupHealth, error) {
	rows, err := s.pool.Query(ctx, `SELECT b.instance_id, max(b.finished_at) FROM backups b
		JOIN instances i ON i.id = b.instance_id AND i.deprovisioned_at IS NULL
		WHERE b.status = 'succeeded' GROUP BY b.instance_id ORDER BY b.instance_id`)
	if err != nil {
		return nil, fmt.Errorf("read last successful backups: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BackupHealth, error) {
		var h BackupHealth
		err := r.Scan(&h.InstanceID, &h.LastSuccess)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("read last successful backups: %w", err)
	}
	return out, nil
}
