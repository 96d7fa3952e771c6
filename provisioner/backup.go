package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/naming"
	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

// DumpJobID and RestoreJobID name the batch jobs of one dump and one restore.
func DumpJobID(short, backupID string) string       { return "pg-" + short + "-dump-" + backupID }
func RestoreJobID(short, operationID string) string { return "pg-" + short + "-restore-" + operationID }

// Dump runs pg_dump -Fc of the instance's database as the batch job
// pg-<short>-dump-<backupID> on the instance's node and returns once the dump
// is complete at DumpKey in the backup directory. Idempotent: run again
// after a crash it finds the same job, or makes the same file again. The job
// and its secret are removed before it returns. Errors: *JobFailedError when
// pg_dump failed (with the end of its standard error); others are Nomad or
// secret errors worth retrying. With in.ReadOnlyPort set (Business), the
// dump reads a standby through the gateways' read-only listener.
func (p *Provisioner) Dump(ctx context.Context, in Instance, backupID string, progress Progress) error {
	progress("dumping the database")
	return p.runBatch(ctx, in, p.backupJob(in, nomadjobs.ModeDump, DumpJobID(in.ShortID, backupID), backupID, ""))
}

// Restore runs pg_restore --clean --if-exists --single-transaction of the
// dump of backupID into the instance's database as the batch job
// pg-<short>-restore-<operationID> on the instance's node. from is the
// short id of the instance the dump was made of when another one
// (restore_from; "" for the instance itself): its grants are then left out.
// pg_restore runs the tenant's code in the dump, so it never logs in as the
// superuser: it gets the password of pgadmin.RestoreRole, which the broker
// opens (EnsureRestoreRole) before the job and closes (DisableRestoreRole)
// once the job has ended, whatever its outcome. A failed restore rolls back
// and leaves the database as it was. Errors: *JobFailedError when
// pg_restore failed; others are worth retrying.
func (p *Provisioner) Restore(ctx context.Context, in Instance, operationID, backupID, from string, progress Progress) error {
	progress("restoring backup " + backupID)
	jobID := RestoreJobID(in.ShortID, operationID)
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	password, err := p.restorePassword(ctx, jobID)
	if err != nil {
		return err
	}
	names := DatabaseNames(in.ShortID)
	if err := admin.EnsureRestoreRole(ctx, names, password); err != nil {
		return fmt.Errorf("open the restore role: %w", err)
	}
	b := p.backupJob(in, nomadjobs.ModeRestore, jobID, backupID, from)
	b.withoutAdmin = true
	b.secrets[restorePasswordItem] = password
	b.ended = func(ctx context.Context) error {
		if err := admin.DisableRestoreRole(ctx, names); err != nil {
			return fmt.Errorf("close the restore role: %w", err)
		}
		return nil
	}
	return p.runBatch(ctx, in, b)
}

// restorePasswordItem is the item of a restore job's Nomad Variable holding
// the password of pgadmin.RestoreRole (nomad-jobs/backup.nomad.hcl, mode
// restore).
const restorePasswordItem = "restore_password"

// restorePassword returns the password the restore job jobID logs in with:
// the one its Nomad Variable holds when an earlier attempt left it (the job
// may be running with it), else a fresh one of 32 characters.
func (p *Provisioner) restorePassword(ctx context.Context, jobID string) (string, error) {
	items, err := p.ensureSecret(ctx, "nomad/jobs/"+jobID, restorePasswordItem)
	if err != nil {
		return "", err
	}
	if password := items[restorePasswordItem]; password != "" {
		return password, nil
	}
	return randomString(32), nil
}

// backupJob describes the job of backup.nomad.hcl in mode (nomadjobs.ModeDump
// or ModeRestore, which names its task too) for backupID: through the
// instance's gateway, with the backup storage's S3 credentials when
// configured. from is a restore's source instance ("": in itself).
func (p *Provisioner) backupJob(in Instance, mode, jobID, backupID, from string) batchJob {
	b := batchJob{src: nomadjobs.Backup, jobID: jobID, task: mode, secrets: api.VariableItems{}}
	if s3 := p.cfg.BackupS3; s3 != nil {
		b.secrets["s3_access_key_id"] = s3.AccessKeyID
		b.secrets["s3_secret_access_key"] = s3.SecretAccessKey
	}
	b.vars = func(ctx context.Context) (map[string]any, error) {
		if p.cfg.BackupDir == "" {
			return nil, errors.New("no backup directory is configured")
		}
		host, err := p.gatewayAddress(ctx, in.ShortID)
		if err != nil {
			return nil, err
		}
		vars := p.commonVars(in.ShortID)
		delete(vars, "host_network")
		vars["mode"] = mode
		vars["backup_id"] = backupID
		vars["backup_dir"] = p.cfg.BackupDir
		vars["node_id"] = in.NodeID
		vars["pg_host"] = host
		vars["pg_port"] = in.GatewayPort
		if mode == nomadjobs.ModeDump && in.ReadOnlyPort > 0 {
			// Business: through the read-only listener, on a standby, so the
			// dump takes nothing from the leader (DESIGN.md: "on Business it
			// runs on a follower"); hot_standby_feedback keeps replay from
			// cancelling it. pg_dump itself runs on a standby's client too.
			vars["pg_port"] = in.ReadOnlyPort
			standby, err := p.standbyClient(ctx, in.ShortID)
			if err != nil {
				return nil, err
			}
			if standby != "" {
				vars["node_id"] = standby
			}
		}
		if s3 := p.cfg.BackupS3; s3 != nil {
			vars["s3_endpoint"] = s3.Endpoint
			vars["s3_region"] = s3.Region
			vars["s3_bucket"] = s3.Bucket
			vars["s3_object"] = s3.Prefix + naming.DumpKey(in.ShortID, backupID)
			if mode == nomadjobs.ModeDump && s3.PartSizeMiB > 0 {
				vars["s3_part_size_mib"] = s3.PartSizeMiB
			}
		}
		if from != "" && from != in.ShortID {
			vars["source_instance"] = from
			if s3 := p.cfg.BackupS3; s3 != nil {
				vars["s3_object"] = s3.Prefix + naming.DumpKey(from, backupID)
			}
		}
		return vars, nil
	}
	return b
}

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

// runBatch gives job b a copy of the instance's admin password (unless
// b.withoutAdmin) and b.secrets in its own Nomad Variable, registers it
// unless a job of that id is registered already (a run started before a
// broker restart is waited for, never doubled), waits for it to complete,
// reads its output, runs b.ended, then purges job and variable. Errors:
// *JobFailedError when the job failed (with the end of its standard error;
// job and variable purged, so the next attempt runs it again); others are
// worth retrying.
func (p *Provisioner) runBatch(ctx context.Context, in Instance, b batchJob) error {
	secretPath := "nomad/jobs/" + b.jobID
	items := api.VariableItems{}
	if !b.withoutAdmin {
		password, err := p.readSecret(ctx, nodesSecretPath(in.ShortID), "admin_password")
		if err != nil {
			return err
		}
		items["admin_password"] = password
	}
	for k, v := range b.secrets {
		items[k] = v
	}
	if err := p.nomad.PutVariable(ctx, secretPath, items); err != nil {
		return err
	}
	cur, err := p.nomad.Job(ctx, b.jobID)
	if err != nil && !isNotFound(err) {
		return err
	}
	if err != nil || (cur.Stop != nil && *cur.Stop) {
		if err := p.registerBatch(ctx, b); err != nil {
			// No job of ours reads the secret: do not leave it behind (seen:
			// a base backup of an instance deprovisioned meanwhile left its
			// Variable, issue 18's leftover check). A job registered despite
			// the error waits for it; the next attempt writes it again.
			if delErr := p.deleteSecret(ctx, secretPath); delErr != nil {
				p.log.Warn("delete the secret of a batch job that was not registered", "job", b.jobID, "error", delErr)
			}
			return err
		}
	}
	crashpoint.Hit(b.task + ":registered")
	allocID, waitErr := p.waitComplete(ctx, b.jobID, b.task)
	var failed *JobFailedError
	if errors.As(waitErr, &failed) {
		failed.Stderr = p.stderrTail(ctx, failed.AllocID, b.task)
	}
	if waitErr != nil && failed == nil {
		return waitErr // Nomad unreachable or ctx ended: the next attempt waits again
	}
	if waitErr == nil && b.output != nil {
		if err := b.output(ctx, allocID); err != nil {
			waitErr = fmt.Errorf("read the output of job %s: %w", b.jobID, err)
		}
	}
	if b.ended != nil {
		if err := b.ended(ctx); err != nil {
			return err
		}
	}
	if err := p.nomad.Purge(ctx, b.jobID); err != nil {
		return err
	}
	if err := p.deleteSecret(ctx, secretPath); err != nil {
		return err
	}
	return waitErr
}

// registerBatch registers batch job b, with the variables b.vars gives.
func (p *Provisioner) registerBatch(ctx context.Context, b batchJob) error {
	vars, err := b.vars(ctx)
	if err != nil {
		return err
	}
	job, err := p.parseJob(b.src, b.jobID, vars)
	if err != nil {
		return err
	}
	_, err = p.register(ctx, job)
	return err
}

// taskLog returns up to the last limit bytes of stream ("stdout" or
// "stderr") of task in allocation allocID, as the client keeps it
// (alloc/logs/<task>.<stream>.0). Errors when Nomad cannot give it (the
// allocation was garbage collected).
func (p *Provisioner) taskLog(ctx context.Context, allocID, task, stream string, limit int) ([]byte, error) {
	return p.nomad.TaskLog(ctx, allocID, task, stream, limit)
}

// stderrTail returns the last lines of a task's standard error (at most
// 512 bytes, on one line), or "" when Nomad cannot give them.
func (p *Provisioner) stderrTail(ctx context.Context, allocID, task string) string {
	b, err := p.taskLog(ctx, allocID, task, "stderr", 512)
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "")), " ")
}
