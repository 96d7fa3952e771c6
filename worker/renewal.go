package worker

import (
	"context"
	"log/slog"

	"github.com/riverqueue/river"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/instances"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

// Renewals is what the renewal sweep needs of the provisioner.
type Renewals interface {
	// RenewCertificate re-issues the instance's server certificate when due
	// and waits until PostgreSQL serves it; reports whether it did.
	RenewCertificate(ctx context.Context, in provisioner.Instance) (bool, error)
	// SyncPITRKeys writes the configured pgBackRest S3 keys into the
	// instance's node job Variable when they differ (a rotation); reports
	// whether it did.
	SyncPITRKeys(ctx context.Context, short string) (bool, error)
}

// RenewArgs is the periodic River job that renews instances' server
// certificates before they expire and brings rotated pgBackRest S3 keys to
// them (Config.CertRenewInterval, and once at start). River runs periodic
// jobs on its elected leader only.
type RenewArgs struct{}

// Kind names the job kind in River's table.
func (RenewArgs) Kind() string { return "renew_certificates" }

// InsertOpts: a failed sweep waits for the next one.
func (RenewArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type renewer struct {
	river.WorkerDefaults[RenewArgs]
	store *store.Store
	certs Renewals
	log   *slog.Logger
}

// Work checks the certificate of every provisioned instance and renews those
// due: expiring within the renewal window, signed by another CA, or no longer
// naming the credentials host; and it writes the current S3 keys of the
// pgBackRest repository where they differ. PostgreSQL reloads the new one on SIGHUP, so
// connections stay up. An instance that fails is logged and retried at the
// next sweep; the others go on.
func (r *renewer) Work(ctx context.Context, _ *river.Job[RenewArgs]) error {
	insts, err := r.store.Instances().LiveInstances(ctx)
	if err != nil {
		return err
	}
	for _, inst := range insts {
		log := r.log.With(slog.String("instance_id", inst.ID))
		renewed, err := r.certs.RenewCertificate(ctx, instances.Target(inst, catalog.Plan{})) // the certificate names hosts, not ports: the plan does not matter
		switch {
		case err != nil:
			log.Warn("renew server certificate", slog.String("error", err.Error()))
		case renewed:
			log.Info("server certificate renewed")
		}
		synced, err := r.certs.SyncPITRKeys(ctx, inst.ShortID)
		switch {
		case err != nil:
			log.Warn("write the pgBackRest S3 keys", slog.String("error", err.Error()))
		case synced:
			log.Info("pgBackRest S3 keys rotated")
		}
	}
	return nil
}
