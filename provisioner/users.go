package provisioner

import (
	"context"
)

// InstanceAdmin is the superuser connection factory of the instance (its
// admin password from the node job's Variable, TLS verified against the
// CA): what the front doors' synchronous calls (package instances) use to
// list and change the instance's users and extensions, on the objects
// pgadmin.NamesOf gives. Errors: reading the Variable, the gateway's address.
func (p *Provisioner) InstanceAdmin(ctx context.Context, in Instance) (AdminConn, error) {
	return p.conn.InstanceAdmin(ctx, in)
}

// UserLogIn checks that username logs in to the instance's database with
// password, through its gateway over verified TLS. Errors:
// pgadmin.ErrLoginRefused, the gateway's address, the connection's.
func (p *Provisioner) UserLogIn(ctx context.Context, in Instance, username, password string) error {
	return p.conn.UserLogIn(ctx, in, username, password)
}

// GatewayAddresses returns the distinct addresses the instance's gateways
// are registered at in Nomad, sorted. Errors when none is registered.
func (p *Provisioner) GatewayAddresses(ctx context.Context, in Instance) ([]string, error) {
	return p.conn.GatewayAddresses(ctx, in.ShortID)
}
