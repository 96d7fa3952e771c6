package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/instances"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

// BaseBackuper takes pgBackRest base backups; *provisioner.Provisioner is
// one. BaseBackup takes the base backup baseBackupID (the same id after a
// crash finds the same run) and returns its pgBackRest label; a
// *provisioner.JobFailedError says pgBackRest failed.
type BaseBackuper interface {
	BaseBackup(ctx context.Context, in provisioner.Instance, baseBackupID string) (string, error)
	BatchStopper
}

// BaseBackupArgs is the River job of one weekly base backup.
type BaseBackupArgs struct {
	BaseBackupID string `json:"base_backup_id"`
}

// Kind names the job kind in River's table.
func (BaseBackupArgs) Kind() string { return "base_backup" }

// InsertOpts: the backups queue, a few attempts, one job per base backup.
func (BaseBackupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueBackups, MaxAttempts: backupAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type baseBackupWorker struct {
	river.WorkerDefaults[BaseBackupArgs]
	slots   int // backups running at once across every broker (Config.BackupWorkers)
	store   *store.Store
	catalog *catalog.Catalog
	taker   BaseBackuper
	limits  backup.Limits // how long one base backup may run, by the plan's disk
	log     *slog.Logger
}

// Work takes the base backup and records its label, or why it failed. An
// attempt whose time is up while the job runs is snoozed (it does not
// count). A failed pgBackRest run is retried (a failover may have moved the
// primary under it) until the last attempt, which records the failure; a
// base backup past its time limit (backup.Limits, from its start) or a last
// attempt that failed otherwise is recorded failed only once its job was
// stopped.
func (w *baseBackupWorker) Work(ctx context.Context, job *river.Job[BaseBackupArgs]) error {
	bb, err := w.store.Backups().GetBaseBackup(ctx, job.Args.BaseBackupID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if bb.Status == store.BackupSucceeded || bb.Status == store.BackupFailed {
		return nil
	}
	log := w.log.With(slog.String("instance_id", bb.InstanceID), slog.String("base_backup_id", bb.ID))
	inst, err := w.store.Instances().GetInstance(ctx, bb.InstanceID)
	if err != nil {
		return err
	}
	fail := func(reason string) error {
		log.Error("base backup failed", slog.String("reason", reason))
		return w.store.Backups().FinishBaseBackup(context.WithoutCancel(ctx), bb.ID, store.BackupFailed, "", reason)
	}
	if inst.Gone() {
		return fail("the instance was deprovisioned")
	}
	release, err := takeSlot(ctx, w.store, w.slots)
	if err != nil {
		return err
	}
	defer release()
	if bb, err = w.store.Backups().StartBaseBackup(ctx, bb.ID); err != nil {
		return err
	}
	target := instances.Target(inst, catalog.Plan{}) // pgBackRest reads the node, never the gateways
	_, plan, _ := w.catalog.Plan(inst.PlanID)
	limit := w.limits.For(plan.DiskMiB)
	end := bb.StartedAt.Add(limit)
	stopAndFail := func(reason string) error {
		if err := stopBatch(ctx, w.taker, backup.BaseBackupJobID(target.ShortID, bb.ID)); err != nil {
			log.Warn("stop the base backup job before recording its failure", slog.String("error", err.Error()))
			return river.JobSnooze(stillRunningSnooze)
		}
		return fail(reason)
	}
	overdue := fmt.Sprintf("the base backup did not finish within %s (the limit for a %d MiB disk); its job was stopped", limit, plan.DiskMiB)
	if time.Now().After(end) {
		return stopAndFail(overdue)
	}
	var label string
	running, err := waitBatch(ctx, end, func(ctx context.Context) (err error) {
		label, err = w.taker.BaseBackup(ctx, target, bb.ID)
		return err
	})
	var failed *provisioner.JobFailedError
	switch {
	case running && time.Now().After(end):
		return stopAndFail(overdue)
	case running:
		log.Info("the base backup job is still running: waiting again in the next attempt")
		return river.JobSnooze(stillRunningSnooze)
	case errors.As(err, &failed) && job.Attempt >= backupAttempts:
		return fail("pgbackrest backup failed: " + failed.Error())
	case err != nil && job.Attempt >= backupAttempts:
		return stopAndFail(fmt.Sprintf("base backup did not complete after %d attempts: %v", job.Attempt, err))
	case err != nil:
		log.Warn("base backup attempt failed", slog.String("error", err.Error()))
		return err
	}
	log.Info("base backup succeeded", slog.String("label", label))
	return w.store.Backups().FinishBaseBackup(ctx, bb.ID, store.BackupSucceeded, label, "")
}

// isoWeek names the ISO week of t in UTC, "2026-W48".
func isoWeek(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// scheduleBaseBackups records and enqueues this week's base backup of each
// instance in ids (instances on a plan with PITR).
func (w *scheduleWorker) scheduleBaseBackups(ctx context.Context, client *river.Client[pgx.Tx], ids []string, now time.Time) {
	week := isoWeek(now)
	for _, id := range ids {
		bbID := uuid.NewString()
		created, err := w.store.Backups().CreateBaseBackup(ctx, bbID, id, week, func(ctx context.Context, tx pgx.Tx, bbID string) error {
			_, err := client.InsertTx(ctx, tx, BaseBackupArgs{BaseBackupID: bbID}, nil)
			return err
		})
		if err != nil {
			w.log.Warn("record base backup", slog.String("instance_id", id), slog.String("error", err.Error()))
			continue
		}
		if created {
			w.log.Info("base backup due", slog.String("instance_id", id), slog.String("base_backup_id", bbID), slog.String("week", week))
		}
	}
}
