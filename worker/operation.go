package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/instances"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/pgversion"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

type operationWorker struct {
	river.WorkerDefaults[OperationArgs]
	store   *store.Store
	catalog *catalog.Catalog
	op      Operator
	cfg     Config
	log     *slog.Logger
}

// Work carries out one attempt of an operation. A nil return ends the job
// (the operation is recorded as succeeded or failed); an error schedules
// another attempt.
func (w *operationWorker) Work(ctx context.Context, job *river.Job[OperationArgs]) error {
	op, err := w.store.Instances().GetOperation(ctx, job.Args.OperationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the enqueueing transaction rolled back: nothing to do
	}
	if err != nil {
		return err
	}
	if op.State != store.InProgress {
		return nil
	}
	log := w.log.With(slog.String("instance_id", op.InstanceID), slog.String("operation", op.ID), slog.String("kind", string(op.Kind)))
	if deadline := w.deadline(op); time.Since(op.CreatedAt) > deadline {
		// An operation never ends while its batch job runs.
		if restoresDump(op) {
			if err := stopBatch(ctx, w.op, backup.RestoreJobID(naming.ShortID(op.InstanceID), op.ID)); err != nil {
				log.Warn("stop the restore job before recording the operation failed", slog.String("error", err.Error()))
				return err
			}
		}
		msg := fmt.Sprintf("%s did not finish within %s; last step: %s", op.Kind, deadline, op.Description)
		log.Error("operation failed", slog.String("reason", msg))
		return w.store.Instances().FinishOperation(ctx, op.ID, store.Failed, msg)
	}
	inst, err := w.store.Instances().GetInstance(ctx, op.InstanceID)
	if err != nil {
		return err
	}
	_, plan, ok := w.catalog.Plan(op.PlanID)
	if !ok {
		return w.store.Instances().FinishOperation(ctx, op.ID, store.Failed, fmt.Sprintf("plan %s is no longer in the catalog", op.PlanID))
	}
	// The step an earlier attempt recorded, without the reason it gave
	// for retrying (else each attempt would nest one more).
	step := stepOf(op.Description)
	progress := func(s string) {
		step = s
		log.Info("operation progress", slog.String("step", s))
		if err := w.store.Instances().SetProgress(ctx, op.ID, s); err != nil {
			log.Warn("record progress", slog.String("error", err.Error()))
		}
	}
	log.Info("operation attempt", slog.Int("attempt", job.Attempt))
	done, err := w.carryOut(ctx, op, inst, plan, progress)
	var final *failure
	if errors.As(err, &final) {
		log.Error("operation failed", slog.String("reason", final.msg))
		return w.store.Instances().FinishOperation(ctx, op.ID, store.Failed, final.msg)
	}
	if err != nil {
		log.Warn("operation attempt failed", slog.String("step", step), slog.String("error", err.Error()))
		_ = w.store.Instances().SetProgress(context.WithoutCancel(ctx), op.ID, retrying(step, err))
		return err
	}
	crashpoint.Hit("operation:done")
	log.Info("operation succeeded")
	return w.store.Instances().FinishOperation(ctx, op.ID, store.Succeeded, done)
}

// carryOut runs the operation's steps and returns the success description.
func (w *operationWorker) carryOut(ctx context.Context, op store.Operation, inst store.Instance, plan catalog.Plan, progress provisioner.Progress) (string, error) {
	target := instances.Target(inst, plan)
	size := instances.SizeOf(plan)
	switch op.Kind {
	case store.KindProvision:
		// An attempt that got as far as registering a point-in-time restore
		// (restore_from) had provisioned and configured already; doing it
		// again would replace the restoring node job with a plain one and
		// wait for a password the restored cluster does not know yet.
		restoring, first := false, size
		if rf := restoreFromParameter(op); rf != nil && rf.BackupID == "" {
			var err error
			if restoring, err = w.op.RestoreRegistered(ctx, target, op.ID); err != nil {
				return "", err
			}
			// A copy of a point in time becomes a cluster once restored
			// (RestoreFromStanza): pgBackRest restores one node.
			first.Nodes = 1
		}
		if !restoring {
			if err := w.provisionNew(ctx, inst, &target, first, progress); err != nil {
				return "", err
			}
		}
		if done, err := w.restoreFrom(ctx, op, target, size, progress); err != nil || done != "" {
			return done, err
		}
		return fmt.Sprintf("PostgreSQL is ready on plan %s", plan.ID) + describeSettings(target), nil
	case store.KindUpdate:
		want, err := withUpdateSettings(target, op.Parameters)
		if err != nil {
			return "", err
		}
		if majorUpgrade(target.PostgresVersion, want.PostgresVersion) {
			return w.upgradeMajor(ctx, op, target, want, size, progress)
		}
		from := size
		if _, cur, ok := w.catalog.Plan(inst.PlanID); ok {
			from = instances.SizeOf(cur)
		}
		placed, err := w.op.ChangePlan(ctx, want, from, size, progress)
		if placed.NodeID != "" && placed.NodeID != inst.NodeID {
			if serr := w.store.Instances().SetNodeID(ctx, inst.ID, placed.NodeID); serr != nil {
				return "", serr
			}
			want.NodeID = placed.NodeID
		}
		if err != nil {
			return "", err
		}
		// Where each node's data now lives (none on a single node): the
		// reconcile loop registers lost node jobs back on it.
		if err := w.store.Instances().SetNodeClients(ctx, inst.ID, placed.NodeClients); err != nil {
			return "", err
		}
		if err := w.op.Configure(ctx, target, want, progress); err != nil {
			return "", err
		}
		if want.PostgresVersion != target.PostgresVersion {
			return fmt.Sprintf("now on PostgreSQL %s, plan %s", want.PostgresVersion, plan.ID) + describeSettings(want), nil
		}
		return fmt.Sprintf("now on plan %s", plan.ID) + describeSettings(want), nil
	case store.KindDeprovision:
		if err := w.op.Deprovision(ctx, target, progress); err != nil {
			return "", err
		}
		return "deprovisioned", nil
	case store.KindRestore:
		return w.restore(ctx, op, target, progress)
	case store.KindPITR:
		p, err := operation.Decode[operation.PITR](op.Parameters)
		if err != nil || p.TargetTime.IsZero() {
			return "", &failure{"the point-in-time restore names no target_time"}
		}
		if err := w.op.RestoreToTime(ctx, target, size, op.ID, p.TargetTime, progress); err != nil {
			return "", err
		}
		return "restored to " + p.TargetTime.UTC().Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("unknown operation kind %q", op.Kind)
}

// majorUpgrade reports whether an update from PostgreSQL version from to
// to ("15.20" to "18.6") changes the major: a pg_upgrade, not a restart on
// new binaries.
func majorUpgrade(from, to string) bool {
	a, err1 := pgversion.Parse(from)
	b, err2 := pgversion.Parse(to)
	return err1 == nil && err2 == nil && a.Major != b.Major
}

// upgradeMajor carries out a major upgrade (provisioner UpgradeMajor) of
// the single-node instance target to want's version. pg_upgrade's refusal
// or failure ends the operation as failed with its reason (the instance
// runs its old version, as before).
func (w *operationWorker) upgradeMajor(ctx context.Context, op store.Operation, target, want provisioner.Instance, size provisioner.Size, progress provisioner.Progress) (string, error) {
	err := w.op.UpgradeMajor(ctx, target, want, size, op.ID, progress)
	var refused *provisioner.UpgradeRefusedError
	if errors.As(err, &refused) {
		if refused.Checked {
			return "", &failure{fmt.Sprintf("pg_upgrade --check refused the upgrade to PostgreSQL %s; nothing was stopped, the instance runs PostgreSQL %s as before: %s",
				want.PostgresVersion, target.PostgresVersion, refused.Reason)}
		}
		return "", &failure{fmt.Sprintf("the upgrade to PostgreSQL %s failed; the instance runs PostgreSQL %s again, its data as before the upgrade: %s",
			want.PostgresVersion, target.PostgresVersion, refused.Reason)}
	}
	if err != nil {
		return "", err
	}
	done := fmt.Sprintf("now on PostgreSQL %s (upgraded from %s with pg_upgrade)", want.PostgresVersion, target.PostgresVersion)
	if size.PITRDays > 0 {
		if pgversion.Archived(want.PostgresVersion) {
			done += "; the point-in-time recovery window restarts at the upgrade (after the next base backup)"
		} else {
			done += fmt.Sprintf("; point-in-time recovery is off on PostgreSQL %s until the clients have a pgBackRest that knows it (daily dumps continue; dumps taken before the upgrade stay restorable)", want.PostgresVersion)
		}
	}
	return done + describeSettings(want), nil
}

// withUpdateSettings applies an update's parameters force_tls and extensions
// (as validated by the broker) and its upgrade's PostgreSQL version to in.
func withUpdateSettings(in provisioner.Instance, params json.RawMessage) (provisioner.Instance, error) {
	p, err := operation.Decode[operation.Update](params)
	if err != nil {
		return in, err
	}
	if p.ForceTLS != nil {
		in.ForceTLS = *p.ForceTLS
	}
	if p.Extensions != nil {
		exts := slices.Clone(*p.Extensions)
		slices.Sort(exts)
		in.Extensions = slices.Compact(exts)
	}
	if p.PostgresVersion != nil {
		in.PostgresVersion = *p.PostgresVersion // an upgrade: the node job runs the new binaries
	}
	return in, nil
}

// describeSettings ends a success description with the instance's settings.
func describeSettings(in provisioner.Instance) string {
	s := ""
	if in.ForceTLS {
		s += "; TLS required"
	}
	if len(in.Extensions) > 0 {
		s += "; extensions: " + strings.Join(in.Extensions, ", ")
	}
	return s
}

// failure ends an operation as failed with msg, a sentence for the user:
// trying again would fail the same way.
type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

// restore restores the dump named by the operation's "backup_id" parameter.
func (w *operationWorker) restore(ctx context.Context, op store.Operation, target provisioner.Instance, progress provisioner.Progress) (string, error) {
	p, err := operation.Decode[operation.Restore](op.Parameters)
	if err != nil || p.BackupID == "" {
		return "", &failure{"the restore names no backup"}
	}
	b, err := w.store.Backups().GetBackup(ctx, p.BackupID)
	if errors.Is(err, store.ErrNotFound) {
		return "", &failure{fmt.Sprintf("backup %s no longer exists (retention deleted it)", p.BackupID)}
	}
	if err != nil {
		return "", err
	}
	if b.InstanceID != op.InstanceID || b.Status != store.BackupSucceeded {
		return "", &failure{fmt.Sprintf("backup %s is not a succeeded backup of this instance", p.BackupID)}
	}
	err = w.op.Restore(ctx, target, op.ID, b.ID, "", progress)
	var failed *provisioner.JobFailedError
	if errors.As(err, &failed) {
		return "", &failure{"pg_restore failed, the database is unchanged: " + failed.Error()}
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("restored backup %s", b.ID), nil
}

// provisionNew provisions inst on size and applies target's settings,
// recording where its data lives (target.NodeID) once placed.
func (w *operationWorker) provisionNew(ctx context.Context, inst store.Instance, target *provisioner.Instance, size provisioner.Size, progress provisioner.Progress) error {
	placed, err := w.op.Provision(ctx, *target, size, progress)
	if placed.NodeID != "" && inst.NodeID == "" {
		if serr := w.store.Instances().SetNodeID(ctx, inst.ID, placed.NodeID); serr != nil {
			return serr
		}
		target.NodeID = placed.NodeID
	}
	if len(placed.NodeClients) > 0 {
		if serr := w.store.Instances().SetNodeClients(ctx, inst.ID, placed.NodeClients); serr != nil {
			return serr
		}
	}
	if err != nil {
		return err
	}
	// Configure moves the instance from the settings of a fresh node (no
	// Force TLS, no extensions) to those of target.
	fresh := *target
	fresh.ForceTLS, fresh.Extensions = false, nil
	return w.op.Configure(ctx, fresh, *target, progress)
}

// restoreFromParameter returns the provision's restore_from, as validated
// by the broker (broker/restorefrom.go); nil when none.
// restoresDump reports whether operation op runs a restore batch job
// (backup.RestoreJobID(short, op.ID)): an in-place restore of a dump, or a
// provision with restore_from.backup_id.
func restoresDump(op store.Operation) bool {
	if op.Kind == store.KindRestore {
		return true
	}
	rf := restoreFromParameter(op)
	return op.Kind == store.KindProvision && rf != nil && rf.BackupID != ""
}

// deadline is how long after it was asked for operation op fails:
// Config.Deadline, or the time limit of its restore job on the plan's disk
// (Config.BatchLimits) when that is longer.
func (w *operationWorker) deadline(op store.Operation) time.Duration {
	if !restoresDump(op) {
		return w.cfg.Deadline
	}
	_, plan, _ := w.catalog.Plan(op.PlanID)
	return max(w.cfg.Deadline, w.cfg.BatchLimits.For(plan.DiskMiB))
}

func restoreFromParameter(op store.Operation) *operation.RestoreFrom {
	p, err := operation.Decode[operation.Provision](op.Parameters)
	if err != nil {
		return nil
	}
	return p.RestoreFrom
}

// restoreFrom restores into the new instance what a provision's
// restore_from parameter names: a dump (backup_id) or the source instance's
// stanza at a point in time (point_in_time); done is "" when there is none.
func (w *operationWorker) restoreFrom(ctx context.Context, op store.Operation, target provisioner.Instance, size provisioner.Size, progress provisioner.Progress) (string, error) {
	rf := restoreFromParameter(op)
	if rf == nil {
		return "", nil
	}
	if rf.BackupID == "" && rf.PointInTime != "" {
		at, err := rf.At()
		if err != nil { // the broker admitted RFC 3339 only
			return "", &failure{fmt.Sprintf("restore_from.point_in_time %q is not an RFC 3339 time", rf.PointInTime)}
		}
		src, err := w.store.Instances().GetInstance(ctx, rf.InstanceID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && src.Gone()) {
			return "", &failure{fmt.Sprintf("restore_from.instance_id %s was deprovisioned, and its WAL archive with it", rf.InstanceID)}
		}
		if err != nil {
			return "", err
		}
		err = w.op.RestoreFromStanza(ctx, target, size, src.ShortID, op.ID, at, progress)
		var failed *provisioner.ExecError
		if errors.As(err, &failed) {
			return "", &failure{"restoring restore_from.point_in_time failed: " + failed.Error()}
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("PostgreSQL is ready on plan %s with the data of instance %s at %s", op.PlanID, rf.InstanceID, at.Format(time.RFC3339Nano)), nil
	}
	b, err := w.store.Backups().GetBackup(ctx, rf.BackupID)
	if errors.Is(err, store.ErrNotFound) {
		return "", &failure{fmt.Sprintf("restore_from.backup_id %s no longer exists (retention deleted it): deprovision and provision from another backup", rf.BackupID)}
	}
	if err != nil {
		return "", err
	}
	if b.InstanceID != rf.InstanceID || b.Status != store.BackupSucceeded {
		return "", &failure{fmt.Sprintf("restore_from.backup_id %s is not a succeeded backup of instance %s", rf.BackupID, rf.InstanceID)}
	}
	err = w.op.Restore(ctx, target, op.ID, b.ID, naming.ShortID(rf.InstanceID), progress)
	var failed *provisioner.JobFailedError
	if errors.As(err, &failed) {
		return "", &failure{"restoring restore_from.backup_id " + b.ID + " failed: " + failed.Error()}
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("PostgreSQL is ready on plan %s with the data of backup %s of instance %s", op.PlanID, b.ID, rf.InstanceID), nil
}

// retrySuffix starts what an attempt that failed adds to its step in
// last_operation's description: "<step> (will retry: <error>)".
const retrySuffix = " (will retry: "

// retrying is the description of step after an attempt failed with err.
func retrying(step string, err error) string { return step + retrySuffix + err.Error() + ")" }

// stepOf is the step a description names, without the reason an attempt
// gave for retrying.
func stepOf(description string) string {
	step, _, _ := strings.Cut(description, retrySuffix)
	return step
}
