package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/scheduler"
	"github.com/pgbroker/pgbroker/store"
)

// ScheduleArgs is the periodic River job that records and enqueues the
// daily dumps that came due. River runs periodic jobs on its elected leader
// only, and the store records one backup per instance and scheduled run
// (a unique index), so a run fires once however many brokers share the
// state database.
type ScheduleArgs struct{}

// Kind names the job kind in River's table.
func (ScheduleArgs) Kind() string { return "backup_schedule" }

// InsertOpts: a failed tick waits for the next one.
func (ScheduleArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type scheduleWorker struct {
	river.WorkerDefaults[ScheduleArgs]
	store   *store.Store
	catalog *catalog.Catalog
	window  time.Duration // a run missed for longer than this is skipped
	pitr    bool          // weekly base backups are taken (PITR is on)
	log     *slog.Logger
}

// Work records a daily backup for every live instance on a plan with daily
// dumps whose scheduled run came due (scheduler.Due), and enqueues its dump;
// with PITR on, it also records and enqueues this week's base backup of
// every live instance on a plan with PITR that has none yet.
func (w *scheduleWorker) Work(ctx context.Context, _ *river.Job[ScheduleArgs]) error {
	instances, err := w.store.Backups().ScheduledInstances(ctx)
	if err != nil {
		return err
	}
	entries := make([]scheduler.Entry, 0, len(instances))
	var pitr []string
	for _, inst := range instances {
		_, plan, ok := w.catalog.Plan(inst.PlanID)
		// An instance on a major the clients' pgBackRest does not know
		// archives no WAL: no base backup either (pgversion.Archived).
		if ok && w.pitr && plan.Backups.PITRDays > 0 && pgversion.Archived(inst.PostgresVersion) {
			pitr = append(pitr, inst.ID)
		}
		if !ok || !plan.Backups.Daily {
			continue
		}
		var params map[string]any
		_ = json.Unmarshal(inst.Parameters, &params)
		d, err := scheduler.FromParameters(params)
		if err != nil {
			w.log.Warn("invalid backup schedule", slog.String("instance_id", inst.ID), slog.String("error", err.Error()))
			continue
		}
		entries = append(entries, scheduler.Entry{InstanceID: inst.ID, Daily: d, Since: inst.CreatedAt})
	}
	client := river.ClientFromContext[pgx.Tx](ctx)
	now := time.Now()
	w.scheduleBaseBackups(ctx, client, pitr, now)
	for _, run := range scheduler.Due(entries, now, w.window) {
		at := run.At
		id := uuid.NewString()
		short := naming.ShortID(run.InstanceID)
		created, err := w.store.Backups().CreateBackup(ctx, store.Backup{
			ID: id, InstanceID: run.InstanceID, Kind: store.BackupDaily, ScheduledAt: &at,
			StorageKey: naming.DumpKey(short, id),
		}, func(ctx context.Context, tx pgx.Tx, backupID string) error {
			_, err := client.InsertTx(ctx, tx, BackupArgs{BackupID: backupID}, nil)
			return err
		})
		if err != nil {
			w.log.Warn("record scheduled backup", slog.String("instance_id", run.InstanceID), slog.String("error", err.Error()))
			continue
		}
		if created {
			w.log.Info("scheduled backup due", slog.String("instance_id", run.InstanceID), slog.String("backup_id", id),
				slog.Time("scheduled_at", at))
		}
	}
	return nil
}
