package instances

import (
	"context"

	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/users"
)

// The database users of a stored instance, for the management API
// (mgmtapi.Users): each call converts the instance with Target and asks the
// provisioner, which connects as the instance's superuser. Rules on names
// and passwords are the caller's (users.CheckUsername, users.CheckPassword).

// Users lists the instance's users: its owner and the roles in its owner
// or reader group, by name.
func (s *Service) Users(ctx context.Context, i store.Instance) ([]users.User, error) {
	return s.p.Users(ctx, s.target(i))
}

// User returns one user of Users. Errors: users.ErrUserNotFound.
func (s *Service) User(ctx context.Context, i store.Instance, username string) (users.User, error) {
	return s.p.User(ctx, s.target(i), username)
}

// CreateUser creates a read-write or read-only login role with a
// SCRAM-SHA-256 verifier of password. Errors: users.ErrUserExists.
func (s *Service) CreateUser(ctx context.Context, i store.Instance, username, password string, readOnly bool) error {
	return s.p.CreateUser(ctx, s.target(i), username, password, readOnly)
}

// SetUserPassword changes a user's password.
func (s *Service) SetUserPassword(ctx context.Context, i store.Instance, username, password string) error {
	return s.p.SetUserPassword(ctx, s.target(i), username, password)
}

// DeleteUser ends the user's sessions, hands what it owns to the owner role
// and drops it.
func (s *Service) DeleteUser(ctx context.Context, i store.Instance, username string) error {
	return s.p.DeleteUser(ctx, s.target(i), username)
}
