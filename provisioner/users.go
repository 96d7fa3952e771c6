package provisioner

import (
	"context"

	"github.com/pgbroker/pgbroker/extensions"
	"github.com/pgbroker/pgbroker/users"
)

// The management API's side of the provisioner: users and extensions of an
// instance's database, through its superuser connection (pgadmin). Rules on
// names and passwords are the caller's (users.CheckUsername, CheckPassword).

// Users lists the instance's users (pgadmin.Admin.Users).
func (p *Provisioner) Users(ctx context.Context, in Instance) ([]users.User, error) {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return nil, err
	}
	return admin.Users(ctx, DatabaseNames(in.ShortID))
}

// User returns one user. Errors: users.ErrUserNotFound.
func (p *Provisioner) User(ctx context.Context, in Instance, username string) (users.User, error) {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return users.User{}, err
	}
	return admin.User(ctx, DatabaseNames(in.ShortID), username)
}

// CreateUser creates a read-write or read-only user. Errors: users.ErrUserExists.
func (p *Provisioner) CreateUser(ctx context.Context, in Instance, username, password string, readOnly bool) error {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	return admin.CreateUser(ctx, DatabaseNames(in.ShortID), username, password, readOnly)
}

// SetUserPassword changes a user's password.
func (p *Provisioner) SetUserPassword(ctx context.Context, in Instance, username, password string) error {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	return admin.SetPassword(ctx, DatabaseNames(in.ShortID), username, password)
}

// DeleteUser ends the user's sessions, hands what it owns to the owner role
// and drops it (as unbind does).
func (p *Provisioner) DeleteUser(ctx context.Context, in Instance, username string) error {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	return admin.DropLoginRole(ctx, DatabaseNames(in.ShortID), username)
}

// Extensions lists the extensions created in the instance's database.
func (p *Provisioner) Extensions(ctx context.Context, in Instance) ([]extensions.InstalledExtension, error) {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return nil, err
	}
	return admin.Extensions(ctx, DatabaseNames(in.ShortID))
}

// EnableExtensions creates extensions that need no restart.
func (p *Provisioner) EnableExtensions(ctx context.Context, in Instance, names []string) error {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	return admin.EnableExtensions(ctx, DatabaseNames(in.ShortID), names)
}

// DisableExtensions drops extensions. Errors wrap extensions.ErrExtensionInUse.
func (p *Provisioner) DisableExtensions(ctx context.Context, in Instance, names []string) error {
	admin, err := p.instanceAdmin(ctx, in)
	if err != nil {
		return err
	}
	return admin.DisableExtensions(ctx, DatabaseNames(in.ShortID), names)
}

// instanceAdmin is the instance's superuser connection factory.
func (p *Provisioner) instanceAdmin(ctx context.Context, in Instance) (adminConn, error) {
	password, err := p.readSecret(ctx, nodesSecretPath(in.ShortID), "admin_password")
	if err != nil {
		return nil, err
	}
	return p.admin(ctx, in, password)
}
