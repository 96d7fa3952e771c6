package backup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
)

// batchJob is one batch job of an instance that runBatch runs.
type batchJob struct {
	src   string // the embedded job file
	jobID string // pg-<short>-<kind>-<id>
	task  string // the job's only task
	// secrets go into the job's Nomad Variable, next to admin_password
	// unless withoutAdmin.
	secrets      api.VariableItems
	withoutAdmin bool
	// vars gives the job file's variables; asked only when the job is not
	// registered yet.
	vars func(ctx context.Context) (map[string]any, error)
	// output, when set, reads what the completed allocation allocID left
	// (its logs) before the job is purged.
	output func(ctx context.Context, allocID string) error
	// ended, when set, runs once the job has completed or failed, before it
	// is purged; its error leaves the job for the next attempt.
	ended func(ctx context.Context) error
}

// runBatch gives job j a copy of the instance's admin password (unless
// j.withoutAdmin) and j.secrets in its own Nomad Variable, registers it
// unless a job of that id is registered already (a run started before a
// broker restart is waited for, never doubled), waits for it to complete,
// reads its output, runs j.ended, then purges job and variable. Errors:
// *nomad.JobFailedError when the job failed (with the end of its standard
// error; job and variable purged, so the next attempt runs it again);
// others are worth retrying.
func (b *Backups) runBatch(ctx context.Context, short string, j batchJob) error {
	if err := b.startBatch(ctx, short, j); err != nil {
		return err
	}
	crashpoint.Hit(j.task + ":registered")
	allocID, waitErr := b.nomad.WaitComplete(ctx, j.jobID, j.task)
	var failed *nomad.JobFailedError
	if errors.As(waitErr, &failed) {
		failed.Stderr = b.stderrTail(ctx, failed.AllocID, j.task)
	}
	if waitErr != nil && failed == nil {
		return waitErr // Nomad unreachable or ctx ended: the next attempt waits again
	}
	if waitErr == nil && j.output != nil {
		if err := j.output(ctx, allocID); err != nil {
			waitErr = fmt.Errorf("read the output of job %s: %w", j.jobID, err)
		}
	}
	if j.ended != nil {
		if err := j.ended(ctx); err != nil {
			return err
		}
	}
	if err := b.nomad.Purge(ctx, j.jobID); err != nil {
		return err
	}
	if err := b.nomad.DeleteVariable(ctx, jobSecretPath(j.jobID)); err != nil {
		return err
	}
	return waitErr
}

// startBatch writes job j's Variable and registers j unless a job of that
// id is registered and not stopped.
func (b *Backups) startBatch(ctx context.Context, short string, j batchJob) error {
	items := api.VariableItems{}
	if !j.withoutAdmin {
		password, err := b.adminPassword(ctx, short)
		if err != nil {
			return err
		}
		items["admin_password"] = password
	}
	maps.Copy(items, j.secrets)
	if err := b.nomad.PutVariable(ctx, jobSecretPath(j.jobID), items); err != nil {
		return err
	}
	cur, err := b.nomad.Job(ctx, j.jobID)
	if err != nil && !nomad.IsNotFound(err) {
		return err
	}
	if err == nil && (cur.Stop == nil || !*cur.Stop) {
		return nil // registered before a restart: wait for it
	}
	if err := b.registerBatch(ctx, j); err != nil {
		// No job of ours reads the secret: do not leave it behind (seen:
		// a base backup of an instance deprovisioned meanwhile left its
		// Variable). A job registered despite the error waits for it; the
		// next attempt writes it again.
		if delErr := b.nomad.DeleteVariable(ctx, jobSecretPath(j.jobID)); delErr != nil {
			b.log.Warn("delete the secret of a batch job that was not registered", "job", j.jobID, "error", delErr)
		}
		return err
	}
	return nil
}

// adminPassword reads the instance's admin password from its node job's
// Variable.
func (b *Backups) adminPassword(ctx context.Context, short string) (string, error) {
	items, err := b.nomad.Variable(ctx, naming.NodesSecretPath(short))
	if err != nil {
		return "", err
	}
	password, ok := items["admin_password"]
	if !ok {
		return "", fmt.Errorf("secret %s has no item admin_password", naming.NodesSecretPath(short))
	}
	return password, nil
}

// registerBatch registers batch job j, with the variables j.vars gives.
func (b *Backups) registerBatch(ctx context.Context, j batchJob) error {
	vars, err := j.vars(ctx)
	if err != nil {
		return err
	}
	job, err := b.nomad.Parse(j.src, j.jobID, vars)
	if err != nil {
		return err
	}
	_, err = b.nomad.Register(ctx, job)
	return err
}

// stderrTail returns the last lines of a task's standard error (at most
// 512 bytes, on one line), or "" when Nomad cannot give them.
func (b *Backups) stderrTail(ctx context.Context, allocID, task string) string {
	out, err := b.nomad.TaskLog(ctx, allocID, task, "stderr", 512)
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(out), "")), " ")
}
