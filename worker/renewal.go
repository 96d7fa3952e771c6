package worker

import (
	"context"
	"log/slog"

	"github.com/riverqueue/river"

	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

// Certificates is what certificate renewal needs of the provisioner.
type Certificates interface {
	// RenewCertificate re-issues the instance's server certificate when due
	// and waits until PostgreSQL serves it; reports whether it did.
	RenewCertificate(ctx context.Context, in provisioner.Instance) (bool, error)
}

// RenewArgs is the periodic River job that renews instances' server
// certificates before they expire (Config.CertRenewInterval). River runs
// periodic jobs on its elected leader only.
type RenewArgs struct{}

// Kind names the job kind in River's table.
func (RenewArgs) Kind() string { return "renew_certificates" }

// InsertOpts: a failed sweep waits for the next one.
func (RenewArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type renewer struct {
	river.WorkerDefaults[RenewArgs]
	store *store.Store
	certs Certificates
	log   *slog.Logger
}

// Work checks the certificate of every provisioned instance and renews those
// due: expiring within the renewal window, signed by another CA, or no longer
// naming the credentials host. PostgreSQL reloads the new one on SIGHUP, so
// connections stay up. An instance that fails is logged and retried at the
// next sweep; the others go on.
func (r *renewer) Work(ctx context.Context, _ *river.Job[RenewArgs]) error {
	insts, err := r.store.LiveInstances(ctx)
	if err != nil {
		return err
	}
	for _, inst := range insts {
		log := r.log.With(slog.String("instance_id", inst.ID))
		renewed, err := r.certs.RenewCertificate(ctx, provisioner.Instance{ShortID: inst.ShortID, GatewayPort: inst.GatewayPort, NodeID: inst.NodeID})
		switch {
		case err != nil:
			log.Warn("renew server certificate", slog.String("error", err.Error()))
		case renewed:
			log.Info("server certificate renewed")
		}
	}
	return nil
}
