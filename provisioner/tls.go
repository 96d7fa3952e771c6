package provisioner

import "context"

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
// (servercert.Issuer.LoadCA): from PEM files when certFile is set, else
// from (or made in) the Nomad Variable pgbroker/<broker name>/ca. Errors
// name the file or the Variable.
func (p *Provisioner) LoadCA(ctx context.Context, certFile, keyFile string) error {
	return p.certs.LoadCA(ctx, certFile, keyFile)
}
