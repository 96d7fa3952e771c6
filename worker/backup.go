package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/instances"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/scheduler"
	"github.com/pgbroker/pgbroker/store"
)

// Dumper makes dumps and stops a dump's job; *provisioner.Provisioner is one.
type Dumper interface {
	Dump(ctx context.Context, in provisioner.Instance, backupID string, progress provisioner.Progress) error
	BatchStopper
}

// Executor is everything the worker asks of the orchestration
// (*provisioner.Provisioner implements it): operations, the orphan sweep,
// certificate renewal, dumps and base backups. Each worker of the package
// holds only the part it uses.
type Executor interface {
	Operator
	Orphans
	Renewals
	Dumper
	BaseBackuper
}

// queueBackups is the River queue of dumps and base backups; its worker
// count is Config.BackupWorkers, so backups never crowd out operations.
const queueBackups = "backups"

// slotWait is how long a backup that found every backup slot taken waits
// in the queue before it looks again.
const slotWait = 10 * time.Second

// takeSlot takes one of the n backup slots every broker on the state
// database shares, or returns river.JobSnooze: the job waits its turn in
// the queue (a snooze does not count as a failed attempt). release frees it.
func takeSlot(ctx context.Context, st *store.Store, n int) (release func(), err error) {
	slot, ok, err := st.Backups().TryBackupSlot(ctx, n)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, river.JobSnooze(slotWait)
	}
	return slot.Release, nil
}

// backupAttempts bounds the attempts of one dump; a dump still failing then is recorded failed.
const backupAttempts = 5

// BackupArgs is the River job of one dump.
type BackupArgs struct {
	BackupID string `json:"backup_id"`
}

// Kind names the job kind in River's table.
func (BackupArgs) Kind() string { return "backup" }

// InsertOpts: the backups queue, a few attempts, one job per backup.
func (BackupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueBackups, MaxAttempts: backupAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type backupWorker struct {
	river.WorkerDefaults[BackupArgs]
	slots   int // backups running at once across every broker (Config.BackupWorkers)
	store   *store.Store
	catalog *catalog.Catalog
	dumper  Dumper
	storage backup.Storage // where dumps land
	limits  backup.Limits  // how long one dump may run, by the plan's disk
	log     *slog.Logger
}

// Work makes one dump: it runs the dump job, then records the dump's size and
// SHA-256 as read back from storage, and applies retention to the instance.
// An attempt whose time is up while the job runs is snoozed (it does not
// count); the job runs on and the next attempt waits for it again. A dump
// job that failed (pg_dump's error) records the backup as failed; a dump
// past its time limit (backup.Limits, from its start) or a last attempt
// that failed otherwise records it failed only once its job was stopped.
// Other errors are retried.
func (w *backupWorker) Work(ctx context.Context, job *river.Job[BackupArgs]) error {
	b, err := w.store.Backups().GetBackup(ctx, job.Args.BackupID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if b.Status == store.BackupSucceeded || b.Status == store.BackupFailed {
		return nil
	}
	log := w.log.With(slog.String("instance_id", b.InstanceID), slog.String("backup_id", b.ID), slog.String("kind", string(b.Kind)))
	inst, err := w.store.Instances().GetInstance(ctx, b.InstanceID)
	if err != nil {
		return err
	}
	if inst.Gone() {
		return w.fail(ctx, log, b, "the instance was deprovisioned before the dump ran")
	}
	release, err := takeSlot(ctx, w.store, w.slots)
	if err != nil {
		return err
	}
	defer release()
	if b, err = w.store.Backups().StartBackup(ctx, b.ID); err != nil {
		return err
	}
	log.Info("dump attempt", slog.Int("attempt", job.Attempt))
	// On Business the dump reads a standby, through the read-only port.
	_, plan, _ := w.catalog.Plan(inst.PlanID)
	target := instances.Target(inst, plan)
	jobID := backup.DumpJobID(target.ShortID, b.ID)
	limit := w.limits.For(plan.DiskMiB)
	end := b.StartedAt.Add(limit)
	overdue := func() error {
		return w.stopAndFail(ctx, log, b, jobID, fmt.Sprintf("the dump did not finish within %s (the limit for a %d MiB disk); its job was stopped", limit, plan.DiskMiB))
	}
	if time.Now().After(end) {
		return overdue()
	}
	running, err := waitBatch(ctx, end, func(ctx context.Context) error { return w.dumper.Dump(ctx, target, b.ID, func(string) {}) })
	var failed *provisioner.JobFailedError
	switch {
	case running && time.Now().After(end):
		return overdue()
	case running:
		log.Info("the dump job is still running: waiting again in the next attempt")
		return river.JobSnooze(stillRunningSnooze)
	case errors.As(err, &failed):
		return w.fail(ctx, log, b, "pg_dump failed: "+failed.Error())
	case err != nil && job.Attempt >= backupAttempts:
		return w.stopAndFail(ctx, log, b, jobID, fmt.Sprintf("dump did not complete after %d attempts: %v", job.Attempt, err))
	case err != nil:
		log.Warn("dump attempt failed", slog.String("error", err.Error()))
		return err
	}
	size, sum, err := backup.Digest(ctx, w.storage, b.StorageKey)
	if errors.Is(err, backup.ErrNotFound) {
		return w.fail(ctx, log, b, "the dump job completed but no dump is in the backup storage")
	}
	if err != nil {
		return err
	}
	if err := w.store.Backups().SucceedBackup(ctx, b.ID, size, sum); err != nil {
		return err
	}
	log.Info("dump succeeded", slog.Int64("size_bytes", size), slog.String("sha256", sum))
	if err := sweepInstance(ctx, w.store, w.catalog, w.storage, inst, time.Now()); err != nil {
		log.Warn("retention after dump", slog.String("error", err.Error()))
	}
	return nil
}

// stopAndFail stops the dump's job, then records the backup failed with
// reason. While the job cannot be stopped (Nomad does not answer), nothing
// is recorded and the attempt is snoozed.
func (w *backupWorker) stopAndFail(ctx context.Context, log *slog.Logger, b store.Backup, jobID, reason string) error {
	if err := stopBatch(ctx, w.dumper, jobID); err != nil {
		log.Warn("stop the dump job before recording its failure", slog.String("error", err.Error()))
		return river.JobSnooze(stillRunningSnooze)
	}
	return w.fail(context.WithoutCancel(ctx), log, b, reason)
}

func (w *backupWorker) fail(ctx context.Context, log *slog.Logger, b store.Backup, reason string) error {
	log.Error("dump failed", slog.String("reason", reason))
	return w.store.Backups().FailBackup(ctx, b.ID, reason)
}

// sweepInstance deletes, from storage then from the store, the backups of
// inst that retention does not keep at now (scheduler.Keep with the plan's
// policy, in the instance's backup time zone). An instance whose plan left
// the catalog keeps everything.
func sweepInstance(ctx context.Context, st *store.Store, cat *catalog.Catalog, storage backup.Storage, inst store.Instance, now time.Time) error {
	_, plan, ok := cat.Plan(inst.PlanID)
	if !ok {
		return nil
	}
	backups, err := st.Backups().ListBackups(ctx, inst.ID)
	if err != nil {
		return err
	}
	loc := time.UTC
	var params map[string]any
	if json.Unmarshal(inst.Parameters, &params) == nil {
		if d, err := scheduler.FromParameters(params); err == nil {
			loc = d.Location()
		}
	}
	keep := scheduler.Keep(plan.Backups, records(backups), now, loc, inst.Gone())
	for _, b := range backups {
		if keep[b.ID] {
			continue
		}
		if err := storage.Delete(ctx, b.StorageKey); err != nil {
			return fmt.Errorf("delete dump of backup %s: %w", b.ID, err)
		}
		if err := st.Backups().DeleteBackup(ctx, b.ID); err != nil {
			return err
		}
	}
	return nil
}

// records converts backups for scheduler.Keep: a scheduled dump counts at
// its scheduled run, a manual one when it finished.
func records(backups []store.Backup) []scheduler.Record {
	out := make([]scheduler.Record, 0, len(backups))
	for _, b := range backups {
		r := scheduler.Record{ID: b.ID, Manual: b.Kind == store.BackupManual, At: b.CreatedAt}
		switch b.Status {
		case store.BackupSucceeded:
			r.State = scheduler.Succeeded
		case store.BackupFailed:
			r.State = scheduler.Failed
		default:
			r.State = scheduler.Unfinished
		}
		if b.FinishedAt != nil {
			r.At = *b.FinishedAt
		}
		if b.ScheduledAt != nil {
			r.At = *b.ScheduledAt
		}
		out = append(out, r)
	}
	return out
}

// RetentionArgs is the periodic River job that applies retention to every
// instance with backups, deprovisioned ones included. Run by River's leader.
type RetentionArgs struct{}

// Kind names the job kind in River's table.
func (RetentionArgs) Kind() string { return "backup_retention" }

// InsertOpts: a failed sweep waits for the next one.
func (RetentionArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type retentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	store   *store.Store
	catalog *catalog.Catalog
	storage backup.Storage
	log     *slog.Logger
}

// Work sweeps every instance that has backups.
func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	ids, err := w.store.Backups().InstanceIDsWithBackups(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, id := range ids {
		inst, err := w.store.Instances().GetInstance(ctx, id)
		if err != nil {
			return err
		}
		if err := sweepInstance(ctx, w.store, w.catalog, w.storage, inst, now); err != nil {
			w.log.Warn("retention sweep", slog.String("instance_id", id), slog.String("error", err.Error()))
		}
	}
	return nil
}
