package provisioner

import (
	"context"
	"log/slog"

	"github.com/pgbroker/pgbroker/adminconn"
	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/servercert"
)

// S3 is the bucket dump jobs upload to and restore jobs fetch from
// (backup.S3Config).
type S3 = backup.S3Config

// PITRS3 is pgBackRest's repository in an S3 bucket (backup.PITRS3).
type PITRS3 = backup.PITRS3

// newBackups returns the backups of cfg, reaching Nomad through n and
// asking certs for the CA and pgBackRest's server certificate, conn for the
// gateway's address.
func newBackups(n backup.Nomad, cfg Config, certs *servercert.Issuer, conn *adminconn.Connector, log *slog.Logger) *backup.Backups {
	return backup.New(n, backup.Config{
		Driver: cfg.Driver, Datacenters: cfg.Datacenters, DataRoot: cfg.DataRoot,
		BackupDir: cfg.BackupDir, BackupUser: cfg.BackupUser, BackupS3: cfg.BackupS3, PITRRepo: cfg.PITRRepo, PITRS3: cfg.PITRS3,
		PostgresUID: cfg.PostgresUID, PostgresGID: cfg.PostgresGID, PostgresBinDirs: cfg.PostgresBinDirs,
	}, backup.Hooks{
		CA:                      certs.CA,
		GatewayAddress:          conn.GatewayAddress,
		EnsureServerCertificate: certs.EnsurePgBackRest,
		NodeTLS:                 certs.AdminTLS,
	}, log)
}

// backupOf is what backups need to know of the instance.
func backupOf(in Instance) backup.Instance {
	return backup.Instance{ShortID: in.ShortID, GatewayPort: in.GatewayPort, ReadOnlyPort: in.ReadOnlyPort, NodeID: in.NodeID,
		PostgresVersion: in.PostgresVersion}
}

// Dump dumps the instance's database into the dump storage
// (backup.Backups.Dump): pg_dump -Fc as the batch job
// backup.DumpJobID(short, backupID). Errors: *JobFailedError when pg_dump
// failed; others are worth retrying.
func (p *Provisioner) Dump(ctx context.Context, in Instance, backupID string, progress Progress) error {
	return p.backups.Dump(ctx, backupOf(in), backupID, backup.Progress(progress))
}

// StopBatch stops a dump, restore or base backup job and waits until it
// has stopped (backup.Backups.StopBatch).
func (p *Provisioner) StopBatch(ctx context.Context, jobID string) error {
	return p.backups.StopBatch(ctx, jobID)
}

// Restore restores the dump of backupID into the instance's database
// (backup.Backups.Restore) as the batch job backup.RestoreJobID(short,
// operationID); from is the dump's instance when another one ("": in
// itself). pg_restore runs the tenant's code in the dump, so it never logs
// in as the superuser: it logs in as pgadmin.RestoreRole, which is open only
// while the job runs. Errors: *JobFailedError when pg_restore failed;
// others are worth retrying.
func (p *Provisioner) Restore(ctx context.Context, in Instance, operationID, backupID, from string, progress Progress) error {
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	role := restoreRole{admin: admin, names: pgadmin.NamesOf(in.ShortID)}
	return p.backups.Restore(ctx, backupOf(in), operationID, backupID, from, role, backup.Progress(progress))
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
	return p.backups.BaseBackup(ctx, backupOf(in), baseBackupID)
}

// SyncPITRKeys writes rotated pgBackRest S3 keys into the instance's node
// Variable (backup.Backups.SyncPITRKeys): the periodic renewal sweep and its
// run at broker start call it for every instance. Reports whether it wrote;
// false without S3.
func (p *Provisioner) SyncPITRKeys(ctx context.Context, short string) (bool, error) {
	return p.backups.SyncPITRKeys(ctx, short)
}
