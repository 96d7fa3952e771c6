package provisioner

import (
	"context"

	"github.com/pgbroker/pgbroker/naming"
)

// InstanceAdmin is the superuser connection factory of the instance (its
// admin password from the node job's Variable, TLS verified against the
// CA): what the front doors' synchronous calls (package instances) use to
// list and change the instance's users and extensions, on the objects
// DatabaseNames gives. Errors: reading the Variable, the gateway's address.
func (p *Provisioner) InstanceAdmin(ctx context.Context, in Instance) (AdminConn, error) {
	return p.instanceAdmin(ctx, in)
}

// instanceAdmin is the instance's superuser connection factory.
func (p *Provisioner) instanceAdmin(ctx context.Context, in Instance) (AdminConn, error) {
	password, err := p.readSecret(ctx, naming.NodesSecretPath(in.ShortID), "admin_password")
	if err != nil {
		return nil, err
	}
	return p.admin(ctx, in, password)
}
