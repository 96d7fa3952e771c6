package instances

import (
	"context"

	"github.com/pgbroker/pgbroker/pgadmin"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
	"github.com/pgbroker/pgbroker/users"
)

// The database users of a stored instance, for the management API
// (mgmtapi.Users): each call converts the instance with Target and connects
// as its superuser (provisioner.InstanceAdmin). Rules on names and
// passwords are the caller's (users.CheckUsername, users.CheckPassword).

// admin is i's superuser connection factory and its database's names.
func (s *Service) admin(ctx context.Context, i store.Instance) (provisioner.AdminConn, pgadmin.Names, error) {
	t := s.target(i)
	a, err := s.p.InstanceAdmin(ctx, t)
	return a, pgadmin.NamesOf(t.ShortID), err
}

// Users lists the instance's users: its owner and the roles in its owner
// or reader group, by name.
func (s *Service) Users(ctx context.Context, i store.Instance) ([]users.User, error) {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return nil, err
	}
	return a.Users(ctx, n)
}

// User returns one user of Users. Errors: users.ErrUserNotFound.
func (s *Service) User(ctx context.Context, i store.Instance, username string) (users.User, error) {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return users.User{}, err
	}
	return a.User(ctx, n, username)
}

// CreateUser creates a read-write or read-only login role with a
// SCRAM-SHA-256 verifier of password. Errors: users.ErrUserExists.
func (s *Service) CreateUser(ctx context.Context, i store.Instance, username, password string, readOnly bool) error {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return err
	}
	return a.CreateUser(ctx, n, username, password, readOnly)
}

// SetUserPassword changes a user's password.
func (s *Service) SetUserPassword(ctx context.Context, i store.Instance, username, password string) error {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return err
	}
	return a.SetPassword(ctx, n, username, password)
}

// DeleteUser ends the user's sessions, hands what it owns to the owner role
// and drops it.
func (s *Service) DeleteUser(ctx context.Context, i store.Instance, username string) error {
	a, n, err := s.admin(ctx, i)
	if err != nil {
		return err
	}
	return a.DropLoginRole(ctx, n, username)
}
