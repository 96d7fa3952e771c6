// Package worker carries out queued operations. Each operation is one durable
// River job (riverqueue/river), enqueued in the same transaction that records
// the operation; the job drives the provisioner and records progress and the
// outcome in the store. A broker killed mid-operation leaves the job running
// in River's table; River's rescuer makes it available again after
// Config.RescueAfter and the idempotent provisioner steps finish the work.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

// Operator carries out operations; *provisioner.Provisioner is one.
type Operator interface {
	Provision(ctx context.Context, in provisioner.Instance, size provisioner.Size, progress provisioner.Progress) (provisioner.Placement, error)
	ChangePlan(ctx context.Context, in provisioner.Instance, from, to provisioner.Size, progress provisioner.Progress) (provisioner.Placement, error)
	UpgradeMajor(ctx context.Context, from, to provisioner.Instance, size provisioner.Size, operationID string, progress provisioner.Progress) error
	Configure(ctx context.Context, from, to provisioner.Instance, progress provisioner.Progress) error
	Deprovision(ctx context.Context, in provisioner.Instance, progress provisioner.Progress) error
	Restore(ctx context.Context, in provisioner.Instance, operationID, backupID, from string, progress provisioner.Progress) error
	RestoreToTime(ctx context.Context, in provisioner.Instance, size provisioner.Size, restoreID string, target time.Time, progress provisioner.Progress) error
	RestoreFromStanza(ctx context.Context, in provisioner.Instance, size provisioner.Size, source, restoreID string, target time.Time, progress provisioner.Progress) error
	RestoreRegistered(ctx context.Context, in provisioner.Instance, restoreID string) (bool, error)
	BatchStopper // a restore job past the operation's deadline
}

// Config bounds how operations run.
type Config struct {
	Workers        int           // operations carried out at once by this broker
	AttemptTimeout time.Duration // one attempt of an operation; steps resume on the next
	RescueAfter    time.Duration // a running attempt older than this is taken as crashed; > AttemptTimeout
	// TakeoverAfter: a running attempt whose broker has not written its
	// heartbeat for this long is handed to another broker (lease.go); 0
	// means 20 s. Brokers beat every TakeoverAfter/4.
	TakeoverAfter     time.Duration
	Deadline          time.Duration // an operation still unfinished this long after it was asked for fails
	MaxRetryDelay     time.Duration // longest pause between attempts
	ReapInterval      time.Duration // how often orphan Nomad jobs are swept
	OrphanGrace       time.Duration // an orphan job is removed this long after it was first seen
	Deployment        string        // this deployment's identity (store.DeploymentID): the sweep takes only jobs carrying it
	CertRenewInterval time.Duration // how often server certificates are checked for renewal

	BackupWorkers     int           // backups (dumps, base backups) running at once across every broker on the state database
	ScheduleTick      time.Duration // how often due daily dumps are looked for
	ScheduleWindow    time.Duration // a daily dump missed for longer than this (broker down) is skipped
	RetentionInterval time.Duration // how often retention sweeps every instance's backups
	PITR              bool          // WAL archiving is on: weekly base backups are taken
	// BatchLimits bound one dump, restore or base backup from its start,
	// by the plan's disk; zero means backup.DefaultLimits.
	BatchLimits backup.Limits
}

// VerdictWithin is how long after it was asked for an operation's outcome
// (succeeded or failed) is recorded at the latest: an attempt may start
// just inside Deadline, run until it is taken as crashed (RescueAfter, longer
// than AttemptTimeout), wait MaxRetryDelay for its retry, and that retry
// fails the operation past Deadline. Plans announce it as their
// maximum_polling_duration.
func (c Config) VerdictWithin() time.Duration {
	return c.Deadline + c.RescueAfter + c.MaxRetryDelay
}

// OperationArgs is the River job of one operation.
type OperationArgs struct {
	OperationID string `json:"operation_id"`
}

// Kind names the job kind in River's table.
func (OperationArgs) Kind() string { return "operation" }

// InsertOpts: effectively unlimited attempts (Config.Deadline ends an
// operation), and one job per operation.
func (OperationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10000, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Runner runs the River client and this broker's lease (heartbeat and
// takeover of crashed brokers' attempts).
type Runner struct {
	client    *river.Client[pgx.Tx]
	lease     *lease
	stopLease context.CancelFunc
}

// New returns a Runner that works operations from st with ex (operations,
// the orphan sweep, certificate renewal, dumps and base backups), keeps dumps
// in dumps and applies their retention there.
func New(st *store.Store, cat *catalog.Catalog, ex Executor, dumps backup.Storage, cfg Config, log *slog.Logger) (*Runner, error) {
	if cfg.BackupWorkers < 1 {
		cfg.BackupWorkers = 1
	}
	if cfg.ScheduleTick <= 0 {
		cfg.ScheduleTick = time.Minute
	}
	if cfg.ScheduleWindow <= 0 {
		cfg.ScheduleWindow = 2 * time.Hour
	}
	if cfg.BatchLimits == (backup.Limits{}) {
		cfg.BatchLimits = backup.DefaultLimits
	}
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = time.Hour
	}
	if cfg.TakeoverAfter <= 0 {
		cfg.TakeoverAfter = 20 * time.Second
	}
	clientID := "pgbroker-" + uuid.NewString()
	l := newLease(clientID, st, cfg.TakeoverAfter, log.With(slog.String("component", "lease")))
	workers := river.NewWorkers()
	river.AddWorker(workers, &operationWorker{store: st, catalog: cat, op: ex, cfg: cfg, log: log})
	river.AddWorker(workers, &reaper{store: st, orphans: ex, deployment: cfg.Deployment, grace: cfg.OrphanGrace, log: log.With(slog.String("component", "reaper"))})
	river.AddWorker(workers, &renewer{store: st, certs: ex, log: log.With(slog.String("component", "certificates"))})
	backupLog := log.With(slog.String("component", "backups"))
	river.AddWorker(workers, &backupWorker{slots: cfg.BackupWorkers, store: st, catalog: cat, dumper: ex, storage: dumps, limits: cfg.BatchLimits, log: backupLog})
	river.AddWorker(workers, &scheduleWorker{store: st, catalog: cat, window: cfg.ScheduleWindow, pitr: cfg.PITR, log: backupLog})
	river.AddWorker(workers, &baseBackupWorker{slots: cfg.BackupWorkers, store: st, catalog: cat, taker: ex, limits: cfg.BatchLimits, log: backupLog})
	river.AddWorker(workers, &retentionWorker{store: st, catalog: cat, storage: dumps, log: backupLog})
	periodic := func(every time.Duration, args river.JobArgs) *river.PeriodicJob {
		return river.NewPeriodicJob(river.PeriodicInterval(every),
			func() (river.JobArgs, *river.InsertOpts) { return args, nil },
			&river.PeriodicJobOpts{RunOnStart: true})
	}
	client, err := river.NewClient(riverpgxv5.New(st.Pool()), &river.Config{
		ID:         clientID,
		Middleware: []rivertype.Middleware{&fence{lease: l}},
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: cfg.Workers},
			queueBackups:       {MaxWorkers: cfg.BackupWorkers},
		},
		Workers:              workers,
		JobTimeout:           cfg.AttemptTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		RetryPolicy:          retryPolicy{max: cfg.MaxRetryDelay},
		FetchPollInterval:    200 * time.Millisecond,
		PeriodicJobs: []*river.PeriodicJob{
			periodic(cfg.ReapInterval, ReapArgs{}),
			periodic(cfg.CertRenewInterval, RenewArgs{}),
			periodic(cfg.ScheduleTick, ScheduleArgs{}),
			periodic(cfg.RetentionInterval, RetentionArgs{}),
		},
		Logger: log.With(slog.String("component", "river")),
	})
	if err != nil {
		return nil, fmt.Errorf("create job queue client: %w", err)
	}
	return &Runner{client: client, lease: l}, nil
}

// Enqueue inserts the job of operation opID inside tx (a store.EnqueueFunc).
func (r *Runner) Enqueue(ctx context.Context, tx pgx.Tx, opID string) error {
	if _, err := r.client.InsertTx(ctx, tx, OperationArgs{OperationID: opID}, nil); err != nil {
		return fmt.Errorf("enqueue operation: %w", err)
	}
	return nil
}

// EnqueueBackup inserts the dump job of backup backupID inside tx (a store.EnqueueFunc).
func (r *Runner) EnqueueBackup(ctx context.Context, tx pgx.Tx, backupID string) error {
	if _, err := r.client.InsertTx(ctx, tx, BackupArgs{BackupID: backupID}, nil); err != nil {
		return fmt.Errorf("enqueue backup: %w", err)
	}
	return nil
}

// Start starts the lease and working jobs, until Stop.
func (r *Runner) Start(ctx context.Context) error {
	leaseCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stopLease = stop
	go r.lease.run(leaseCtx)
	return r.client.Start(ctx)
}

// Stop waits for running attempts to finish, up to ctx's deadline, then
// stops the heartbeat.
func (r *Runner) Stop(ctx context.Context) error {
	err := r.client.Stop(ctx)
	if r.stopLease != nil {
		r.stopLease()
	}
	return err
}

// retryPolicy retries soon: 1 s, 2 s, 4 s… capped at max.
type retryPolicy struct{ max time.Duration }

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	d := time.Second << min(job.Attempt, 10)
	if p.max > 0 && d > p.max {
		d = p.max
	}
	return time.Now().Add(d)
}
