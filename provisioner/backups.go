package provisioner

import (
	"context"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/pki"
)

// S3 is the bucket dump jobs upload to and restore jobs fetch from
// (backup.S3Config).
type S3 = backup.S3Config

// PITRS3 is pgBackRest's repository in an S3 bucket (backup.PITRS3).
type PITRS3 = backup.PITRS3

// newBackups returns the backups of cfg, reaching Nomad through p's adapter
// and asking p for the CA, the gateway's address and pgBackRest's server
// certificate.
func (p *Provisioner) newBackups(cfg Config) *backup.Backups {
	return backup.New(p.nomad, backup.Config{
		Driver: cfg.Driver, Datacenters: cfg.Datacenters, DataRoot: cfg.DataRoot,
		BackupDir: cfg.BackupDir, BackupUser: cfg.BackupUser, BackupS3: cfg.BackupS3, PITRRepo: cfg.PITRRepo, PITRS3: cfg.PITRS3,
		PostgresUID: cfg.PostgresUID, PostgresGID: cfg.PostgresGID,
	}, backup.Hooks{
		CA:                      func() *pki.CA { return p.ca },
		GatewayAddress:          p.gatewayAddress,
		EnsureServerCertificate: p.ensurePgBackRestCertificate,
	}, p.log)
}

// backup is what backups need to know of the instance.
func (in Instance) backup() backup.Instance {
	return backup.Instance{ShortID: in.ShortID, GatewayPort: in.GatewayPort, ReadOnlyPort: in.ReadOnlyPort, NodeID: in.NodeID}
}

// Dump dumps the instance's database into the dump storage
// (backup.Backups.Dump): pg_dump -Fc as the batch job
// backup.DumpJobID(short, backupID). Errors: *JobFailedError when pg_dump
// failed; others are worth retrying.
func (p *Provisioner) Dump(ctx context.Context, in Instance, backupID string, progress Progress) error {
	return p.backups.Dump(ctx, in.backup(), backupID, backup.Progress(progress))
}

// Restore restores the dump of backupID into the instance's database
// (backup.Backups.Restore) as the batch job backup.RestoreJobID(short,
// operationID); from is the dump's instance when another one ("": in
// itself). pg_restore runs the tenant's code in the dump, so it never logs
// in as the superuser: it logs in as pgadmin.RestoreRole, which is open only
// while the job runs. Errors: *JobFailedError when pg_restore failed;
// others are worth retrying.
func (p *Provisioner) Restore(ctx context.Context, in Instance, operationID, backupID, from string, progress Progress) error {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	role := restoreRole{admin: admin, names: DatabaseNames(in.ShortID)}
	return p.backups.Restore(ctx, in.backup(), operationID, backupID, from, role, backup.Progress(progress))
}

// restoreRole opens and closes pgadmin.RestoreRole of the instance.
type restoreRole struct {
	admin AdminConn
	names pgadmin.Names
}

func (r restoreRole) Open(ctx context.Context, password string) error {
	return r.admin.EnsureRestoreRole(ctx, r.names, password)
}

func (r restoreRole) Close(ctx context.Context) error {
	return r.admin.DisableRestoreRole(ctx, r.names)
}

// BaseBackup takes a full pgBackRest base backup of the instance
// (backup.Backups.BaseBackup) and returns its label. Errors:
// *JobFailedError when pgBackRest failed; others are worth retrying.
func (p *Provisioner) BaseBackup(ctx context.Context, in Instance, baseBackupID string) (string, error) {
	return p.backups.BaseBackup(ctx, in.backup(), baseBackupID)
}

// SyncPITRKeys writes rotated pgBackRest S3 keys into the instance's node
// Variable (backup.Backups.SyncPITRKeys): the periodic renewal sweep and its
// run at broker start call it for every instance. Reports whether it wrote;
// false without S3.
func (p *Provisioner) SyncPITRKeys(ctx context.Context, short string) (bool, error) {
	return p.backups.SyncPITRKeys(ctx, short)
}

// ensurePITRKeys writes the S3 keys into the node job's Nomad Variable
// (which must exist) when they are missing or differ, so that the node job
// renders them, and, with any pgBackRest repository, the certificate of the
// nodes' pgBackRest TLS server (for the addresses of the nodes registered
// now; a base backup from a standby makes sure it names the primary's): a
// Business node job renders it, and a job must not wait for a missing item.
// Errors: Nomad's, naming the Variable.
func (p *Provisioner) ensurePITRKeys(ctx context.Context, short string) error {
	if _, err := p.backups.SyncPITRKeys(ctx, short); err != nil {
		return err
	}
	if !p.backups.Repository().On() || p.ca == nil {
		return nil
	}
	return p.ensurePgBackRestCertificate(ctx, short)
}

// ensureStanza creates the instance's pgBackRest stanza on its (leading)
// node when WAL archiving is on for size, so archive_command succeeds from
// the first WAL segment. Without it every archive attempt fails until the
// first weekly base backup creates the stanza, filling the log, and each
// shutdown (a switchover, a plan change) waits for the archiver's failing
// retries. Idempotent. Errors: *ExecError from pgBackRest.
func (p *Provisioner) ensureStanza(ctx context.Context, in Instance, size Size, progress Progress) error {
	if size.PITRDays == 0 || !p.backups.Repository().On() {
		return nil
	}
	progress("creating the pgBackRest stanza")
	return p.backups.CreateStanza(ctx, in.ShortID)
}
