package provisioner

import (
	"context"
	"fmt"

	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/credentials"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// Bind creates (or, when retried, finds and refreshes) the login role of
// binding bindingID and returns its credentials: read-write, or read-only
// when readOnly. Its password is kept in a Nomad Variable, never in the state
// database. Idempotent.
func (p *Provisioner) Bind(ctx context.Context, in Instance, bindingID string, readOnly bool) (credentials.Credentials, error) {
	role := naming.BindingRole(bindingID)
	items, err := p.conn.EnsureSecret(ctx, bindingSecretPrefix(in.ShortID)+role, "password")
	if err != nil {
		return credentials.Credentials{}, err
	}
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return credentials.Credentials{}, err
	}
	if err := admin.EnsureLoginRole(ctx, pgadmin.NamesOf(in.ShortID), role, items["password"], readOnly); err != nil {
		return credentials.Credentials{}, fmt.Errorf("create role for binding: %w", err)
	}
	crashpoint.Hit("bind:role")
	return p.credentials(ctx, in, role, items["password"], readOnly)
}

// Credentials returns the credentials of an existing binding role.
func (p *Provisioner) Credentials(ctx context.Context, in Instance, role string, readOnly bool) (credentials.Credentials, error) {
	password, err := p.conn.ReadSecret(ctx, bindingSecretPrefix(in.ShortID)+role, "password")
	if err != nil {
		return credentials.Credentials{}, err
	}
	return p.credentials(ctx, in, role, password, readOnly)
}

// Unbind drops the binding's role (what it owns goes to the owner role) and
// deletes its secret. Idempotent.
func (p *Provisioner) Unbind(ctx context.Context, in Instance, role string) error {
	admin, err := p.conn.InstanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	if err := admin.DropLoginRole(ctx, pgadmin.NamesOf(in.ShortID), role); err != nil {
		return fmt.Errorf("drop role of binding: %w", err)
	}
	crashpoint.Hit("unbind:role")
	return p.nomad.DeleteVariable(ctx, bindingSecretPrefix(in.ShortID)+role)
}

func (p *Provisioner) credentials(ctx context.Context, in Instance, role, password string, readOnly bool) (credentials.Credentials, error) {
	hosts := []string{p.cfg.PublicHost}
	if p.cfg.PublicHost == "" {
		var err error
		if hosts, err = p.conn.GatewayAddresses(ctx, in.ShortID); err != nil {
			return credentials.Credentials{}, err
		}
	}
	// Every server certificate names these hosts (servercert.Issuer.Hosts), so
	// clients using the verify-full forms can check both the chain and the name.
	e := credentials.Endpoint{Hosts: hosts, Port: in.GatewayPort, ReadOnlyPort: in.ReadOnlyPort,
		SSLMode: p.cfg.BindingSSLMode, CACertificate: p.certs.CACertificate()}
	return credentials.New(e, pgadmin.NamesOf(in.ShortID).Database, role, password, readOnly), nil
}
