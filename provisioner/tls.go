package provisioner

import (
	"context"

	"github.com/pgbroker/pgbroker/servercert"
)

// RenewCertificate re-issues the instance's server certificate when it
// expires within CertRenewBefore, was signed by another CA, or no longer names
// the host credentials give (the gateway moved), then waits until PostgreSQL
// serves it. Reports whether it renewed. Idempotent.
func (p *Provisioner) RenewCertificate(ctx context.Context, in Instance) (bool, error) {
	cert, issued, err := p.certs.Renew(ctx, in.ShortID)
	if err != nil || !issued {
		return false, err
	}
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return true, err
	}
	return true, p.certs.WaitServing(ctx, admin, cert)
}

// LoadCA sets the CA that signs instances' server certificates
// (servercert.Issuer.LoadCA): from PEM files when src.CertFile is set, else
// from the Nomad Variable pgbroker/<broker name>/ca, restored from its
// sealed copy or made at first start. It says where the CA came from.
// Errors name the file or the Variable; servercert.ErrCALost.
func (p *Provisioner) LoadCA(ctx context.Context, src servercert.CASource) (servercert.CAOrigin, error) {
	return p.certs.LoadCA(ctx, src)
}

// ReissueCA replaces the broker's CA with a new one
// (servercert.Issuer.ReissueCA) and returns its certificate (PEM); the
// renewal sweep then re-issues every instance's server certificate.
func (p *Provisioner) ReissueCA(ctx context.Context) (string, error) {
	return p.certs.ReissueCA(ctx)
}
