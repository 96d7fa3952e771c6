package backup

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	nomadjobs "github.com/pgbroker/pgbroker/nomad-jobs"
	"github.com/pgbroker/pgbroker/users"
)

// Dump runs pg_dump -Fc of the instance's database as the batch job
// DumpJobID(short, backupID) on the instance's node and returns once the
// dump is complete at naming.DumpKey in the dump storage. Idempotent: run
// again after a crash it finds the same job, or makes the same file again.
// The job and its secret are removed before it returns. Errors:
// *nomad.JobFailedError when pg_dump failed (with the end of its standard
// error); others are Nomad or secret errors worth retrying. With
// in.ReadOnlyPort set (Business), the dump reads a standby through the
// gateways' read-only listener.
func (b *Backups) Dump(ctx context.Context, in Instance, backupID string, progress Progress) error {
	progress("dumping the database")
	return b.runBatch(ctx, in.ShortID, b.backupJob(in, nomadjobs.ModeDump, DumpJobID(in.ShortID, backupID), backupID, ""))
}

// RestoreRole is the login a restore job's pg_restore uses
// (pgadmin.RestoreRole): never the superuser, since pg_restore runs the
// tenant's code in the dump.
type RestoreRole interface {
	// Open lets the role log in with password.
	Open(ctx context.Context, password string) error
	// Close stops it logging in.
	Close(ctx context.Context) error
}

// Restore runs pg_restore --clean --if-exists --single-transaction of the
// dump of backupID into the instance's database as the batch job
// RestoreJobID(short, operationID) on the instance's node. from is the
// short id of the instance the dump was made of when another one
// (restore_from; "" for the instance itself): its grants are then left out.
// role is opened with the job's password before the job and closed once the
// job has ended, whatever its outcome. A failed restore rolls back and
// leaves the database as it was. Errors: *nomad.JobFailedError when
// pg_restore failed; others are worth retrying.
func (b *Backups) Restore(ctx context.Context, in Instance, operationID, backupID, from string, role RestoreRole, progress Progress) error {
	progress("restoring backup " + backupID)
	jobID := RestoreJobID(in.ShortID, operationID)
	password, err := b.restorePassword(ctx, jobID)
	if err != nil {
		return err
	}
	if err := role.Open(ctx, password); err != nil {
		return fmt.Errorf("open the restore role: %w", err)
	}
	j := b.backupJob(in, nomadjobs.ModeRestore, jobID, backupID, from)
	j.withoutAdmin = true
	j.secrets[restorePasswordItem] = password
	j.ended = func(ctx context.Context) error {
		if err := role.Close(ctx); err != nil {
			return fmt.Errorf("close the restore role: %w", err)
		}
		return nil
	}
	return b.runBatch(ctx, in.ShortID, j)
}

// restorePasswordItem is the item of a restore job's Nomad Variable holding
// the password of pgadmin.RestoreRole (nomad-jobs/backup.nomad.hcl, mode
// restore).
const restorePasswordItem = "restore_password"

// restorePassword returns the password the restore job jobID logs in with:
// the one its Nomad Variable holds when an earlier attempt left it (the job
// may be running with it), else a fresh one of 32 characters.
func (b *Backups) restorePassword(ctx context.Context, jobID string) (string, error) {
	items, err := b.nomad.EnsureVariable(ctx, jobSecretPath(jobID), map[string]string{restorePasswordItem: users.NewPassword(32)})
	if err != nil {
		return "", err
	}
	if password := items[restorePasswordItem]; password != "" {
		return password, nil
	}
	return users.NewPassword(32), nil
}

// backupJob describes the job of backup.nomad.hcl in mode (nomadjobs.ModeDump
// or ModeRestore, which names its task too) for backupID: through the
// instance's gateway, with the dump storage's S3 keys when configured.
// from is a restore's source instance ("": in itself).
func (b *Backups) backupJob(in Instance, mode, jobID, backupID, from string) batchJob {
	j := batchJob{src: nomadjobs.Backup, jobID: jobID, task: mode, secrets: api.VariableItems{}}
	if s3 := b.cfg.BackupS3; s3 != nil {
		j.secrets["s3_access_key_id"] = s3.AccessKeyID
		j.secrets["s3_secret_access_key"] = s3.SecretAccessKey
	}
	j.vars = func(ctx context.Context) (map[string]any, error) {
		if b.cfg.BackupDir == "" {
			return nil, errors.New("no backup directory is configured")
		}
		host, err := b.hooks.GatewayAddress(ctx, in.ShortID)
		if err != nil {
			return nil, err
		}
		vars := batchVars(b.cfg, in.ShortID)
		vars["mode"], vars["backup_id"], vars["backup_dir"] = mode, backupID, b.cfg.BackupDir
		vars["node_id"], vars["pg_host"], vars["pg_port"] = in.NodeID, host, in.GatewayPort
		ca := b.hooks.CA()
		if ca == nil {
			return nil, errors.New("the broker's CA is not loaded: a backup job could not verify the server")
		}
		vars["broker_ca"] = string(ca.CertPEM)
		if b.cfg.BackupUser != "" {
			vars["user"] = b.cfg.BackupUser
		}
		if dir, ok := b.cfg.PostgresBinDirs[in.PostgresVersion]; ok {
			vars["postgres_bin_dir"] = dir // else the job file's default
		}
		if mode == nomadjobs.ModeDump && in.ReadOnlyPort > 0 {
			if err := b.onStandby(ctx, in, vars); err != nil {
				return nil, err
			}
		}
		source := in.ShortID
		if from != "" && from != in.ShortID {
			vars["source_instance"], source = from, from
		}
		b.cfg.BackupS3.setDumpVars(vars, mode, naming.DumpKey(source, backupID))
		return vars, nil
	}
	return j
}

// onStandby points a Business dump at a standby: through the read-only
// listener, so the dump takes nothing from the leader (on Business it runs
// on a follower); hot_standby_feedback keeps replay from cancelling it.
// pg_dump itself runs on a standby's client too, when one runs.
func (b *Backups) onStandby(ctx context.Context, in Instance, vars map[string]any) error {
	vars["pg_port"] = in.ReadOnlyPort
	standby, err := b.standbyClient(ctx, in.ShortID)
	if err != nil {
		return err
	}
	if standby != "" {
		vars["node_id"] = standby
	}
	return nil
}
