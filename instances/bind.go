package instances

import (
	"context"

	"github.com/pgbroker/pgbroker/credentials"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

// Bind creates (or, retried, finds) the login role of binding bindingID in
// i's database and returns its credentials (DESIGN.md "Credential format").
// Errors are the provisioner's (Nomad, Variables, PostgreSQL).
func (s *Service) Bind(ctx context.Context, i store.Instance, bindingID string, readOnly bool) (credentials.Credentials, error) {
	return s.p.Bind(ctx, s.target(i), bindingID, readOnly)
}

// Credentials returns the credentials of i's existing binding role role, as
// Bind did.
func (s *Service) Credentials(ctx context.Context, i store.Instance, role string, readOnly bool) (credentials.Credentials, error) {
	return s.p.Credentials(ctx, s.target(i), role, readOnly)
}

// Unbind drops binding role role of i and ends its sessions. Idempotent.
func (s *Service) Unbind(ctx context.Context, i store.Instance, role string) error {
	return s.p.Unbind(ctx, s.target(i), role)
}

// DataSize is the size of i's database in bytes (pg_database_size).
func (s *Service) DataSize(ctx context.Context, i store.Instance) (int64, error) {
	return s.p.DataSize(ctx, s.target(i))
}

// Members describes i's cluster as Patroni sees it, one clause per member:
// "node-0 leader; node-1 sync_standby streaming, lag 0 B".
func (s *Service) Members(ctx context.Context, i store.Instance) (string, error) {
	members, err := s.p.Members(ctx, s.target(i))
	if err != nil {
		return "", err
	}
	return provisioner.DescribeMembers(members), nil
}
