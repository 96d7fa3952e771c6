package provisioner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/crashpoint"
	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
)

// DumpJobID and RestoreJobID name the batch jobs of one dump and one restore.
func DumpJobID(short, backupID string) string       { return "pg-" + short + "-dump-" + backupID }
func RestoreJobID(short, operationID string) string { return "pg-" + short + "-restore-" + operationID }

// DumpKey is where a dump lives in the backup storage: "<short>/<backup id>.dump",
// relative to Config.BackupDir (the layout dump.nomad.hcl writes).
func DumpKey(short, backupID string) string { return short + "/" + backupID + ".dump" }

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
	return p.runBatch(ctx, in, nomadjobs.Dump, DumpJobID(in.ShortID, backupID), "dump", backupID, "")
}

// Restore runs pg_restore --clean --if-exists --single-transaction of the
// dump of backupID into the instance's database as the batch job
// pg-<short>-restore-<operationID> on the instance's node. from is the
// short id of the instance the dump was made of when another one
// (restore_from; "" for the instance itself): its objects then belong to the
// instance's owner role. A failed restore rolls back and leaves the database
// as it was. Errors: *JobFailedError when pg_restore failed; others are
// worth retrying.
func (p *Provisioner) Restore(ctx context.Context, in Instance, operationID, backupID, from string, progress Progress) error {
	progress("restoring backup " + backupID)
	return p.runBatch(ctx, in, nomadjobs.Restore, RestoreJobID(in.ShortID, operationID), "restore", backupID, from)
}

// runBatch gives job jobID a copy of the admin password in its own Nomad
// Variable, registers it (src with the instance's gateway and the backup),
// waits for it to complete, then purges job and variable.
func (p *Provisioner) runBatch(ctx context.Context, in Instance, src, jobID, task, backupID, from string) error {
	if p.cfg.BackupDir == "" {
		return errors.New("no backup directory is configured")
	}
	password, err := p.readSecret(ctx, nodesSecretPath(in.ShortID), "admin_password")
	if err != nil {
		return err
	}
	secretPath := "nomad/jobs/" + jobID
	items := api.VariableItems{"admin_password": password}
	if s3 := p.cfg.BackupS3; s3 != nil {
		items["s3_access_key_id"] = s3.AccessKeyID
		items["s3_secret_access_key"] = s3.SecretAccessKey
	}
	if _, _, err := p.nomad.Variables().Create(&api.Variable{Path: secretPath, Items: items}, writeOpts(ctx)); err != nil {
		return fmt.Errorf("create secret %s in Nomad: %w", secretPath, err)
	}
	host, err := p.gatewayAddress(ctx, in.ShortID)
	if err != nil {
		return err
	}
	vars := p.commonVars(in.ShortID)
	delete(vars, "host_network")
	vars["backup_id"] = backupID
	vars["backup_dir"] = p.cfg.BackupDir
	vars["node_id"] = in.NodeID
	vars["pg_host"] = host
	vars["pg_port"] = in.GatewayPort
	if task == "dump" && in.ReadOnlyPort > 0 {
		// Business: through the read-only listener, on a standby, so the
		// dump takes nothing from the leader (DESIGN.md: "on Business it
		// runs on a follower"); hot_standby_feedback keeps replay from
		// cancelling it.
		vars["pg_port"] = in.ReadOnlyPort
	}
	if s3 := p.cfg.BackupS3; s3 != nil {
		vars["s3_endpoint"] = s3.Endpoint
		vars["s3_region"] = s3.Region
		vars["s3_bucket"] = s3.Bucket
		vars["s3_object"] = s3.Prefix + DumpKey(in.ShortID, backupID)
	}
	if from != "" && from != in.ShortID {
		vars["source_instance"] = from
		if s3 := p.cfg.BackupS3; s3 != nil {
			vars["s3_object"] = s3.Prefix + DumpKey(from, backupID)
		}
	}
	job, err := p.parseJob(src, jobID, vars)
	if err != nil {
		return err
	}
	if _, err := p.register(ctx, job); err != nil {
		return err
	}
	crashpoint.Hit(task + ":registered")
	waitErr := p.waitComplete(ctx, jobID, task)
	var failed *JobFailedError
	if errors.As(waitErr, &failed) {
		failed.Stderr = p.stderrTail(ctx, failed.AllocID, task)
	}
	if waitErr != nil && failed == nil {
		return waitErr // Nomad unreachable or ctx ended: the next attempt waits again
	}
	if _, _, err := p.nomad.Jobs().Deregister(jobID, true, writeOpts(ctx)); err != nil && !isNotFound(err) {
		return fmt.Errorf("purge job %s from Nomad: %w", jobID, err)
	}
	if err := p.deleteSecret(ctx, secretPath); err != nil {
		return err
	}
	return waitErr
}

// stderrTail returns the last lines of a task's standard error (at most
// 512 bytes, on one line), or "" when Nomad cannot give them.
func (p *Provisioner) stderrTail(ctx context.Context, allocID, task string) string {
	alloc, _, err := p.nomad.Allocations().Info(allocID, queryOpts(ctx))
	if err != nil {
		return ""
	}
	rc, err := p.nomad.AllocFS().Cat(alloc, "alloc/logs/"+task+".stderr.0", queryOpts(ctx))
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	if len(b) > 512 {
		b = b[len(b)-512:]
	}
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "")), " ")
}
